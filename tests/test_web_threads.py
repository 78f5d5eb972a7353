"""The ASGI handler runs views on long-lived threads that keep their database connection.

Django's own handler ran each request on a new thread, and so opened a new
database connection per request (a backend fork on PostgreSQL). These tests call
``collect.asgi.BoundedASGIHandler`` in-process over ASGI, on the real database.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.db import connections
from django.db.backends.signals import connection_created
from django.http import FileResponse, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from collect.asgi import BoundedASGIHandler
from collect.tokens import token_create

pytestmark = [pytest.mark.servers, pytest.mark.django_db(transaction=True)]


def scope(url: str, token: str, method: str = "GET") -> dict[str, Any]:
    path, _, query = url.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver")]
        + ([(b"authorization", f"Token {token}".encode())] if token else []),
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }


async def fetch(
    handler: BoundedASGIHandler, path: str, token: str, method: str = "GET"
) -> tuple[int, list[bytes]]:
    """(status, the body's messages) of a request (a GET by default) for ``path``."""
    talk = ApplicationCommunicator(handler, scope(path, token, method))
    await talk.send_input({"type": "http.request", "body": b""})
    start = await talk.receive_output(30)
    messages = []
    while True:
        message = await talk.receive_output(30)
        messages.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    await talk.wait(30)
    return start["status"], messages


async def get(handler: BoundedASGIHandler, path: str, token: str) -> tuple[int, Any]:
    status, messages = await fetch(handler, path, token)
    return status, json.loads(b"".join(messages))


def run(coroutine: Any) -> Any:
    """Run ``coroutine`` to its end on an event loop of its own thread.

    (Not ``async_to_sync``: after the browser tests, this thread has a loop.)
    """
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result(timeout=60)


@pytest.fixture
def kept_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``collect web`` sets for its processes (collect/asgi.py)."""
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 60)


@pytest.fixture
def token(django_user_model: Any) -> str:
    """An API token of a user with no jobs."""
    user = django_user_model.objects.create_user("ana", password="x" * 12)
    return token_create(user=user)[0]


@pytest.fixture
def opened() -> Iterator[list[tuple[int, Any]]]:
    """(thread id, connection) of each database connection opened during the test."""
    seen: list[tuple[int, Any]] = []

    def note(connection: Any, **kwargs: Any) -> None:
        seen.append((threading.get_ident(), connection))

    connection_created.connect(note)
    yield seen
    connection_created.disconnect(note)


def test_requests_reuse_the_view_threads_and_their_connections(
    token: str, opened: list[tuple[int, Any]], kept_connections: None
) -> None:
    handler = BoundedASGIHandler(threads=2)

    async def many() -> list[tuple[int, Any]]:
        answers = [await get(handler, "/api/tasks/", token) for _ in range(5)]
        answers += await asyncio.gather(*(get(handler, "/api/tasks/", token) for _ in range(10)))
        return answers

    try:
        answers = run(many())
    finally:
        handler.close_threads()
    assert [status for status, _ in answers] == [200] * 15
    assert all(body["count"] == 0 for _, body in answers)
    # 15 requests, 2 threads: at most one connection each (Django's handler: 15).
    threads = [thread for thread, _ in opened]
    assert 1 <= len(threads) <= 2
    assert len(set(threads)) == len(threads)


def test_a_failing_view_leaves_its_thread_a_working_connection(
    token: str, kept_connections: None
) -> None:
    """A 404 and an error in one request do not break the next on the same thread."""
    handler = BoundedASGIHandler(threads=1)
    try:
        missing = run(get(handler, f"/api/tasks/{'0' * 32}/", token))
        refused = run(get(handler, "/api/tasks/?state=nope", token))
        fine = run(get(handler, "/api/tasks/", token))
    finally:
        handler.close_threads()
    assert missing[0] == 404
    assert refused[0] == 400 and "Unknown state" in refused[1]["state"][0]
    assert fine == (200, {"count": 0, "next": None, "previous": None, "results": []})


def test_close_threads_closes_each_threads_connection(
    token: str, opened: list[tuple[int, Any]], kept_connections: None
) -> None:
    handler = BoundedASGIHandler(threads=3)

    async def some() -> None:
        await asyncio.gather(*(get(handler, "/api/tasks/", token) for _ in range(6)))

    try:
        run(some())
    finally:
        handler.close_threads()
    assert opened
    assert all(c.connection is None for _, c in opened)  # closed by their own threads


# A download whose storage answers slowly: ``read()`` waits for ``RELEASE``.
RELEASE = threading.Event()
BLOCK = 64 * 1024


class SlowFile:
    """A file of ``blocks`` blocks of 64 KiB whose first read waits for ``RELEASE``."""

    def __init__(self, blocks: int) -> None:
        self.left = blocks
        self.reads = 0
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        RELEASE.wait(30)
        self.reads += 1
        if not self.left:
            return b""
        self.left -= 1
        return bytes([self.left % 256]) * BLOCK

    def close(self) -> None:
        self.closed = True


FILES: list[SlowFile] = []


def slow_download(request: Any) -> FileResponse:
    FILES.append(SlowFile(blocks=40))
    return FileResponse(FILES[-1], content_type="application/octet-stream")


def ping(request: Any) -> HttpResponse:
    PINGED.append(request.method)
    return HttpResponse(b"pong")


# A view that holds its thread until ``HOLD`` is set; ``HELD`` says it has started.
HOLD = threading.Event()
HELD = threading.Event()
PINGED: list[str] = []


def hold(request: Any) -> HttpResponse:
    HELD.set()
    HOLD.wait(30)
    return HttpResponse(b"held")


urlpatterns = [
    path("slow/", slow_download),
    path("ping/", csrf_exempt(ping)),
    path("hold/", hold),
    path("stop_task/<str:task_id>", csrf_exempt(lambda request, task_id: ping(request))),
]


@pytest.fixture
def slow_urls(settings: Any) -> Any:
    settings.ROOT_URLCONF = __name__
    RELEASE.clear()
    FILES.clear()
    HOLD.clear()
    HELD.clear()
    PINGED.clear()
    yield
    RELEASE.set()
    HOLD.set()


def test_a_download_is_read_block_by_block_without_stalling_other_requests(
    slow_urls: None,
) -> None:
    """Django read a sync download whole (``list()``) on the thread that also runs every
    request's signals: one slow download stalled the process, and held the file in memory."""
    handler = BoundedASGIHandler(threads=4)

    async def scenario() -> tuple[tuple[int, list[bytes]], tuple[int, list[bytes]], int]:
        download = asyncio.ensure_future(fetch(handler, "/slow/", ""))
        await asyncio.sleep(0.3)  # the view has answered; its first read waits
        pinged = await asyncio.wait_for(fetch(handler, "/ping/", ""), 10)
        reads_while_waiting = FILES[0].reads
        RELEASE.set()
        return await download, pinged, reads_while_waiting

    try:
        (status, messages), pinged, reads_while_waiting = run(scenario())
    finally:
        RELEASE.set()
        handler.close_threads()
    assert pinged == (200, [b"pong"])
    assert reads_while_waiting == 0  # the ping went by while the download waited
    assert status == 200
    body = b"".join(messages)
    assert body == b"".join(bytes([n % 256]) * BLOCK for n in reversed(range(40)))
    # One block per message: read and sent one at a time, not gathered first.
    assert [len(m) for m in messages[:-1]] == [BLOCK] * 40 and messages[-1] == b""
    assert FILES[0].closed


def test_reads_wait_for_a_read_thread_and_writes_go_by(slow_urls: None) -> None:
    """Reads (GET) run on at most ``read_threads`` threads; a POST (a pause, a stop)
    and the seed's ``GET /stop_task/<id>`` do not queue behind them. A read whose
    client leaves while it waits takes no thread, and every slot comes back."""
    handler = BoundedASGIHandler(threads=3, read_threads=1)

    async def scenario() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        held = asyncio.ensure_future(fetch(handler, "/hold/", ""))
        await asyncio.get_running_loop().run_in_executor(None, HELD.wait, 10)
        waiting = asyncio.ensure_future(fetch(handler, "/ping/", ""))
        leaving = ApplicationCommunicator(handler, scope("/ping/", ""))
        await leaving.send_input({"type": "http.request", "body": b""})
        await asyncio.sleep(0.3)
        seen["reads run while the read thread is held"] = list(PINGED)
        await leaving.send_input({"type": "http.disconnect"})  # its client goes away
        await leaving.wait(10)
        seen["post"] = await asyncio.wait_for(fetch(handler, "/ping/", "", "POST"), 10)
        # The seed's scripts stop a job with a GET: it goes by as well.
        seen["seed stop"] = await asyncio.wait_for(fetch(handler, "/stop_task/x", ""), 10)
        seen["held still running"] = not held.done()
        HOLD.set()
        seen["held"] = await asyncio.wait_for(held, 10)
        seen["waiting"] = await asyncio.wait_for(waiting, 10)
        # One slot, so these would hang if a slot had been kept by the one that left.
        seen["after"] = [await asyncio.wait_for(fetch(handler, "/ping/", ""), 10) for _ in range(3)]
        return seen

    try:
        seen = run(scenario())
    finally:
        HOLD.set()
        handler.close_threads()
    assert seen["reads run while the read thread is held"] == []
    assert seen["post"] == seen["seed stop"] == (200, [b"pong"])
    assert seen["held still running"]
    assert seen["held"] == (200, [b"held"])
    assert seen["waiting"] == (200, [b"pong"])
    assert seen["after"] == [(200, [b"pong"])] * 3
    assert PINGED == ["POST", "GET", "GET", "GET", "GET", "GET"]  # the one that left never ran
