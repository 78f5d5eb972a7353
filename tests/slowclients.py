"""Clients that hold a web server's connections open by sending slowly (slowloris, slow POST).

Used by tests/test_slow_clients.py (is the server still answering?) and by
bench/bench_slow_clients.py (how fast?). Each slow client is a real socket in a
background thread that sends one more header line, or one more body byte,
every ``interval`` seconds until ``stop()``.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class SlowClients:
    """``headers`` slow-header and ``bodies`` slow-body connections to ``host:port``."""

    host: str
    port: int
    headers: int = 40
    bodies: int = 10
    interval: float = 2.0
    body_paths: tuple[str, ...] = ("/accounts/login/", "/api/imports/teams/")
    opened: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> SlowClients:
        for n in range(self.headers):
            self._spawn(self._slow_headers, n)
        for n in range(self.bodies):
            self._spawn(self._slow_body, n)
        return self

    def wait_open(self, timeout: float = 30) -> int:
        """Wait until every slow client has connected and sent its first bytes."""
        deadline = time.monotonic() + timeout
        while self.opened < self.headers + self.bodies and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.opened

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _spawn(self, target: object, n: int) -> None:
        thread = threading.Thread(target=target, args=(n,), daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _connect(self) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=10)

    def _opened(self) -> None:
        with self._lock:
            self.opened += 1

    def _slow_headers(self, n: int) -> None:
        with contextlib.suppress(OSError), self._connect() as sock:
            request_line = f"GET /accounts/login/?slow={n} HTTP/1.1\r\nHost: {self.host}\r\n"
            sock.sendall(request_line.encode())
            self._opened()
            i = 0
            # Never the blank line that ends the headers.
            while not self._stop.wait(self.interval):
                sock.sendall(f"X-Slow-{i}: {i}\r\n".encode())
                i += 1

    def _slow_body(self, n: int) -> None:
        path = self.body_paths[n % len(self.body_paths)]
        with contextlib.suppress(OSError), self._connect() as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                "Content-Length: 100000\r\n\r\n".encode()
            )
            self._opened()
            while not self._stop.wait(self.interval):
                sock.sendall(b"a")


def timed_get(host: str, port: int, path: str, timeout: float) -> tuple[int, float]:
    """One ordinary request on a new connection: (status, seconds until the whole answer)."""
    started = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    finally:
        conn.close()
