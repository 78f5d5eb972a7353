"""Request bodies are bounded by the real ``collect web`` before anything reaches the disk.

Every request but the import upload may send ``DATA_UPLOAD_MAX_MEMORY_SIZE``
(2.5 MiB); the upload may send ``COLLECT_UPLOAD_MAX_BYTES``. A declared
Content-Length over the cap is refused before the body is read; a chunked body
is refused as it passes the cap. The upload folder (``FILE_UPLOAD_TEMP_DIR``)
must be unchanged by a refused request.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.test_export_helpers import free_port
from tests.test_web_restart import Web

UPLOAD_LIMIT = 1024 * 1024  # for this test's server
TOO_LARGE = (
    "The request is too large: at most 2.5 MiB (2,621,440 bytes) can be sent here. "
    "To import a file, upload it on the import page."
)
UPLOAD_TOO_LARGE = (
    "The file is too large: at most 1 MiB (1,048,576 bytes) can be uploaded. "
    "Split it into smaller files and import them one after the other."
)


@pytest.fixture
def web(transactional_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Web]:
    monkeypatch.setenv("COLLECT_UPLOAD_MAX_BYTES", str(UPLOAD_LIMIT))
    server = Web(free_port(), tmp_path / "web.log").start()
    yield server
    server.close()
    assert "Traceback" not in server.log()


def spooled(web: Web) -> set[str]:
    """The upload folder's files, and the files there the web processes hold open.

    A spooled body is an unnamed file (O_TMPFILE on Linux): it shows up only
    among the processes' open files, as ``<folder>/#<inode> (deleted)``.
    """
    folder = settings.FILE_UPLOAD_TEMP_DIR
    found = {os.path.join(folder, name) for name in os.listdir(folder)}
    assert web.proc is not None
    pids = subprocess.run(
        ["pgrep", "-g", str(web.proc.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith(folder + os.sep):
                        found.add(target)
    return found


def send(port: int, head: str, chunks: Iterable[bytes] = ()) -> tuple[int, dict[str, str]]:
    """Send a raw request (the body may stop early when the server answers); read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-body: the answer is already there
        answer = b""
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            answer += data
    head_bytes, _, body = answer.partition(b"\r\n\r\n")
    status = int(head_bytes.split(b" ", 2)[1])
    return status, json.loads(body) if body else {}


def test_a_huge_declared_body_is_refused_before_it_is_read(web: Web) -> None:
    before = spooled(web)
    started = time.monotonic()
    status, body = send(
        web.port,
        "POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        "Content-Length: 2147483648\r\nConnection: close\r\n\r\n",
    )
    assert status == 413
    assert body == {"detail": TOO_LARGE}
    assert time.monotonic() - started < 10  # liveness: not after reading 2 GiB
    assert spooled(web) == before


def test_a_chunked_body_is_refused_as_it_passes_the_cap_and_never_spooled(web: Web) -> None:
    before = spooled(web)
    chunk = b"a" * 65536
    chunks = (b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(160))  # 10 MiB
    status, body = send(
        web.port,
        "POST /api/exports/responses/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n",
        chunks,
    )
    assert status == 413
    assert body == {"detail": TOO_LARGE}
    assert spooled(web) == before


def test_an_upload_over_the_limit_is_refused_before_it_is_read(web: Web) -> None:
    before = spooled(web)
    status, body = send(
        web.port,
        "POST /api/imports/teams/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {UPLOAD_LIMIT * 3}\r\nConnection: close\r\n\r\n",
    )
    assert status == 413
    assert body == {"detail": UPLOAD_TOO_LARGE}
    assert spooled(web) == before


def test_an_upload_streams_to_disk_while_it_arrives(web: Web) -> None:
    """A big-enough upload is on disk, not in memory, before its last byte has come."""
    before = spooled(web)
    with socket.create_connection(("127.0.0.1", web.port), timeout=30) as sock:
        sock.sendall(
            b"POST /api/imports/teams/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: 900000\r\n\r\n" + b"a" * 300_000
        )
        deadline = time.monotonic() + 20
        while spooled(web) == before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert spooled(web) - before, "the upload was not spooled to the upload folder"
    # The client went away: the half upload is removed.
    deadline = time.monotonic() + 20
    while spooled(web) != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert spooled(web) == before


def test_a_browser_gets_the_refusal_as_a_page(web: Web) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=30)
    conn.putrequest("POST", "/import_teams/")
    conn.putheader("Accept", "text/html,application/xhtml+xml")
    conn.putheader("Content-Type", "multipart/form-data; boundary=x")
    conn.putheader("Content-Length", str(UPLOAD_LIMIT * 3))
    conn.endheaders()
    response = conn.getresponse()
    page = response.read().decode()
    conn.close()
    assert response.status == 413
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert f"<p>{UPLOAD_TOO_LARGE}</p>" in page
    assert '<a href="/import_teams/">Back to the form</a>' in page
