"""ASGI entry point (``collect web``), with request bodies bounded before Django sees them.

Why ASGI: the server (uvicorn, under gunicorn) reads every connection on an
event loop, so a client that sends its headers or its body slowly holds a
socket, not a worker; Django runs a view only once its request is complete.

Why a handler of our own: Django's ``ASGIHandler.read_body`` reads the whole
body before the view runs, into a ``SpooledTemporaryFile`` sized by
``FILE_UPLOAD_MAX_MEMORY_SIZE``, which we set to 0 so uploads go to disk; but a
``SpooledTemporaryFile`` of size 0 never rolls over, so it would hold a 1 GiB
upload in memory. Here the body is capped per path while it arrives:

- the import uploads (``IMPORT_PATHS``) may send ``COLLECT_UPLOAD_MAX_BYTES``
  (plus the multipart envelope); they are spooled to ``FILE_UPLOAD_TEMP_DIR``
  after the first 64 KiB;
- every other request may send ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes, kept in
  memory: nothing of it ever reaches the disk.

A declared ``Content-Length`` over the cap is a 413 before a byte of the body is
read; a chunked body is counted and refused with a 413 the moment it passes the
cap (RFC 9110, section 15.5.14).

Why the views run in a pool of long-lived threads: Django's ASGI handler runs
each request's sync middleware and view in a new thread (a
``ThreadSensitiveContext`` per request), so every request opened a new database
connection and crossed between the event loop and threads at each sync/async
boundary of the middleware list. Here the whole sync stack (middleware, view)
runs in one call on one of ``COLLECT_WEB_THREADS`` threads that live as long as
the process, each keeping its database connection (``CONN_MAX_AGE``, which
``collect web`` sets for its processes), as a threaded WSGI server does. Body
reading and response sending stay on the event loop, so slow clients still
hold no thread; a download's file is read on the pool a block at a time.

Why reads take turns: a view is Python, so the threads of one process share one
core (the GIL). Sixteen polls at once cost more CPU each (switching) and a pause
or stop sent meanwhile shared the core with all of them. At most
``COLLECT_WEB_READ_THREADS`` requests of a safe method (GET, HEAD: RFC 9110,
section 9.2.1) run at once per process; the others wait on the event loop, holding
no thread, and a request that changes something (a POST, or the seed's GET of
``/stop_task/<id>`` or ``/export_data/?…``) takes a free thread at once. Under 20
pollers this cut the time a pause or stop waited for its answer by half or more
(docs/performance.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import os
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from html import escape
from typing import Any

import django
from django.conf import settings
from django.core.exceptions import RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler
from django.db import close_old_connections, connections
from django.http import HttpRequest, HttpResponseBase

from jobs.formatting import exact_size

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collect.settings")
# The view threads live as long as the process: each keeps its database connection
# this many seconds between requests instead of opening one per request.
os.environ.setdefault("COLLECT_DB_CONN_MAX_AGE", "60")

# The paths whose body is a file to import; every other body is small.
IMPORT_PATHS = ("/import_teams/", "/api/imports/teams/")
# Room for the multipart envelope (boundaries, headers, form fields) around a
# file that is exactly at the upload limit (as in teams/uploads.py).
ENVELOPE_BYTES = 64 * 1024
# An upload is kept in memory up to this size, then spooled to disk.
UPLOAD_SPOOL_MEMORY_BYTES = 64 * 1024
# Requests that only read (RFC 9110, section 9.2.1): these share the read slots.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# ... except where the seed's scripts act with a GET and an API token:
# /stop_task/<id> stops a job, /export_data/?… starts an export.
SEED_ACTION_PATHS = ("/stop_task/",)
SEED_ACTION_EXACT = frozenset({"/export_data/"})


def only_reads(method: str, path: str) -> bool:
    """Whether a request of ``method`` for ``path`` changes nothing (it then takes a read slot)."""
    if method not in SAFE_METHODS:
        return False
    return not (path.startswith(SEED_ACTION_PATHS) or path in SEED_ACTION_EXACT)


Scope = dict[str, Any]
Message = dict[str, Any]


def body_limit(path: str) -> int:
    """The largest body, in bytes, that a request to ``path`` may send."""
    if path in IMPORT_PATHS:
        return int(settings.COLLECT_UPLOAD_MAX_BYTES) + ENVELOPE_BYTES
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return sys.maxsize if limit is None else int(limit)  # None: Django's "no limit"


def declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length`` header as a number, or None when absent or unreadable."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def too_large_message(path: str, limit: int) -> str:
    """What a client that sent too much reads."""
    if path in IMPORT_PATHS:
        upload = int(settings.COLLECT_UPLOAD_MAX_BYTES)
        return (
            f"The file is too large: at most {exact_size(upload)} can be "
            "uploaded. Split it into smaller files and import them one after the other."
        )
    return (
        f"The request is too large: at most {exact_size(limit)} can be sent "
        "here. To import a file, upload it on the import page."
    )


TOO_LARGE_PAGE = (
    '<!doctype html><html lang="en"><meta charset="utf-8"><title>Too large · Collect</title>'
    '<h1>Too large</h1><p>{message}</p><p><a href="{path}">Back to the form</a></p>'
    "</html>"
)


def wants_html(scope: Scope) -> bool:
    """A browser (``Accept: text/html``, no token) gets a page; scripts get JSON."""
    headers = dict(scope.get("headers", []))
    accept = headers.get(b"accept", b"").decode("latin-1")
    return "text/html" in accept and b"authorization" not in headers


def _close_unsent(future: Future[HttpResponseBase]) -> None:
    """Close the response of a view whose client left before it was sent."""
    if not future.cancelled() and future.exception() is None:
        future.result().close()


class _CountingReceive:
    """Wraps ASGI ``receive``: counts body bytes and ends the request past the limit."""

    def __init__(self, receive: Any, limit: int, spool_bytes: int) -> None:
        self.receive = receive
        self.limit = limit
        self.spool_bytes = spool_bytes
        self.seen = 0
        self.overflowed = False

    async def __call__(self) -> Message:
        message: Message = await self.receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                # Django gives up reading on a disconnect, writing nothing more.
                self.overflowed = True
                return {"type": "http.disconnect"}
        return message


class BoundedASGIHandler(ASGIHandler):
    """Django's ASGI handler with per-path body caps, an upload spooled to disk, and
    the views run on a pool of ``threads`` long-lived threads, at most
    ``read_threads`` of them (at least 1; all when None) running safe-method
    requests at once (see the module's text).
    """

    def __init__(self, threads: int = 16, read_threads: int | None = None) -> None:
        base.BaseHandler.__init__(self)
        # The middleware chain in sync mode: one call runs all of it and the view.
        self.load_middleware(is_async=False)
        self.threads = threads
        self.read_threads = threads if read_threads is None else max(1, min(read_threads, threads))
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="view")
        # One semaphore per event loop (a process has one; tests may run several).
        self._read_slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            # Nothing to start or stop; answering keeps the server from guessing.
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await asyncio.get_running_loop().run_in_executor(None, self.close_threads)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            raise ValueError(f"Collect serves HTTP only, not {scope['type']}")
        # No ThreadSensitiveContext: what Django still runs through sync_to_async
        # (the request_started/finished signals, closing the response: short
        # calls) goes to one thread of the process instead of a new thread per
        # request. File downloads are read on the pool (run_get_response).
        await self.handle(scope, receive, send)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        """Run the middleware and the view for ``request`` on a pool thread (same response).

        A safe-method request first waits for one of the read slots, on the event
        loop; its slot is freed when its view's thread is done. When the client
        goes away first (Django then cancels this call), a request still waiting
        never runs, and a view still running finishes on its thread and its
        response is closed there.
        """
        call = functools.partial(contextvars.copy_context().run, self._respond_in_thread, request)
        if not only_reads(request.method or "GET", request.path):
            future = self.pool.submit(call)
        else:
            slots = self.read_slots()
            await slots.acquire()  # a client that leaves while waiting takes no slot
            try:
                future = self.pool.submit(call)
            except BaseException:
                slots.release()
                raise
            # Freed when the view's thread is done, even if the client left before.
            loop = asyncio.get_running_loop()
            future.add_done_callback(lambda _: loop.call_soon_threadsafe(slots.release))
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.add_done_callback(_close_unsent)
            raise

    def read_slots(self) -> asyncio.Semaphore:
        """The running loop's semaphore of ``read_threads`` slots for safe-method requests."""
        loop = asyncio.get_running_loop()
        if self._read_slots is None or self._read_slots[0] is not loop:
            self._read_slots = (loop, asyncio.Semaphore(self.read_threads))
        return self._read_slots[1]

    async def run_get_response(self, request: HttpRequest) -> HttpResponseBase:
        """The response, with a sync streaming body (a file download) read on the pool.

        Django's ASGI handler reads a sync iterator whole, with ``list()``, before
        sending a byte (its "must consume synchronous iterators" warning): a
        400 MB download took 400 MB of memory, and it did so on the thread that
        also runs every request's start and end signals, stalling the process.
        Here the body is pulled one block (64 KiB, Django's ``chunk_size``) at a
        time, each on a pool thread, and sent before the next is read.
        """
        response = await super().run_get_response(request)
        if getattr(response, "streaming", False) and not response.is_async:  # type: ignore[attr-defined]
            response.streaming_content = self._pulled(response.streaming_content)  # type: ignore[attr-defined]
        return response

    def _pulled(self, parts: Iterator[bytes]) -> AsyncIterator[bytes]:
        """``parts`` as an async iterator whose every ``next()`` runs on a pool thread."""
        end = object()

        async def pull() -> AsyncIterator[bytes]:
            loop = asyncio.get_running_loop()
            while (part := await loop.run_in_executor(self.pool, next, parts, end)) is not end:
                yield part  # type: ignore[misc]

        return pull()

    def close_threads(self, timeout: float = 5.0) -> None:
        """Close every view thread's database connections, then let the threads end.

        Called when the server stops (ASGI lifespan shutdown), so that the database
        sees each connection closed rather than dropped. One task per thread of the
        pool meets the others at a barrier (so each runs on its own thread), then
        closes that thread's connections; a thread still busy after ``timeout``
        seconds keeps its connection until the process ends.
        """
        barrier = threading.Barrier(self.threads)

        def close_mine() -> None:
            with contextlib.suppress(threading.BrokenBarrierError):  # one busy: close anyway
                barrier.wait(timeout)
            connections.close_all()

        wait([self.pool.submit(close_mine) for _ in range(self.threads)], timeout=timeout + 1)
        self.pool.shutdown(wait=False)

    def _respond_in_thread(self, request: HttpRequest) -> HttpResponseBase:
        # As Django's request_started/request_finished receivers do, but in the thread
        # that uses the connection: drop one that is broken or older than CONN_MAX_AGE.
        close_old_connections()
        try:
            return self.get_response(request)
        finally:
            close_old_connections()

    async def handle(self, scope: Scope, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        limit = body_limit(path)
        declared = declared_length(scope)
        if declared is not None and declared > limit:
            await self.refuse(scope, send, too_large_message(path, limit))
            return
        spool = UPLOAD_SPOOL_MEMORY_BYTES if path in IMPORT_PATHS else limit
        counted = _CountingReceive(receive, limit, spool)
        await super().handle(scope, counted, send)
        if counted.overflowed:
            await self.refuse(scope, send, too_large_message(path, limit))

    async def read_body(self, receive: Any) -> Any:
        """The body as a file: in memory up to ``receive.spool_bytes``, then on disk."""
        spool = getattr(receive, "spool_bytes", UPLOAD_SPOOL_MEMORY_BYTES)
        body_file = tempfile.SpooledTemporaryFile(  # noqa: SIM115 (Django closes it)
            max_size=spool, mode="w+b", dir=settings.FILE_UPLOAD_TEMP_DIR
        )
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                body_file.close()
                raise RequestAborted()
            if "body" in message:
                body_file.write(message["body"])
            if not message.get("more_body", False):
                break
        body_file.seek(0)
        return body_file

    async def refuse(self, scope: Scope, send: Any, message: str) -> None:
        """Answer 413 (a page for a browser, JSON otherwise) and close the connection."""
        if wants_html(scope):
            path = escape(scope.get("path", "/"))
            body = TOO_LARGE_PAGE.format(message=escape(message), path=path).encode()
            content_type = b"text/html; charset=utf-8"
        else:
            body = json.dumps({"detail": message}, ensure_ascii=False).encode()
            content_type = b"application/json; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def get_asgi_application() -> BoundedASGIHandler:
    """Set Django up and return the handler (as ``django.core.asgi.get_asgi_application``)."""
    django.setup(set_prefix=False)
    return BoundedASGIHandler(
        threads=int(settings.COLLECT_WEB_THREADS),
        read_threads=int(settings.COLLECT_WEB_READ_THREADS),
    )


application = get_asgi_application()
