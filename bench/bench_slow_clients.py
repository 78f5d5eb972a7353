"""Time to answer an ordinary request while slow clients hold connections open.

    python bench/bench_slow_clients.py [HEADER_CLIENTS] [BODY_CLIENTS] [REQUESTS]

Starts the web server, opens HEADER_CLIENTS connections that send a header line
every 2 s and BODY_CLIENTS that send a body byte every 2 s (never finishing),
then times REQUESTS ordinary ``GET /accounts/login/`` one after the other
(each on a new connection, 30 s timeout). It does this for ``collect web`` as
shipped, and for comparison for what it used to be (gunicorn sync workers, 2
processes x 4 threads over WSGI). A request not answered within 30 s counts as
"timed out".
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import time

from common import ROOT, setup_django, table

SERVERS = {
    "collect web (uvicorn workers, ASGI)": ["-m", "collect", "web", "--workers", "2"],
    "before: gunicorn sync, 2 x 4 threads (WSGI)": [
        "-m", "gunicorn", "collect.wsgi:application", "--workers", "2", "--threads", "4",
        "--timeout", "600",
    ],
}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(argv: list[str], headers: int, bodies: int, requests: int) -> list[str]:
    from tests.slowclients import SlowClients, timed_get

    port = free_port()
    bind = ["--bind", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        [sys.executable, *argv, *bind], cwd=ROOT, env=os.environ.copy(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if timed_get("127.0.0.1", port, "/accounts/login/", 5)[0] == 200:
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the web server did not start") from None
                time.sleep(0.2)
        quiet = [timed_get("127.0.0.1", port, "/accounts/login/", 30)[1] for _ in range(requests)]
        slow = SlowClients("127.0.0.1", port, headers=headers, bodies=bodies).start()
        slow.wait_open()
        time.sleep(2)  # every slow client has sent more than its first line
        times: list[float] = []
        failed = 0
        for _ in range(requests):
            try:
                status, seconds = timed_get("127.0.0.1", port, "/accounts/login/", 30)
                times.append(seconds) if status == 200 else None
                failed += status != 200
            except OSError:
                failed += 1
        slow.stop()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    fmt = "{:.3f}".format
    return [
        fmt(statistics.median(quiet)),
        fmt(statistics.median(times)) if times else "-",
        fmt(max(times)) if times else "-",
        f"{failed}/{requests}",
    ]


def main() -> None:
    headers = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    bodies = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    requests = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    setup_django()
    rows = [[name, *measure(argv, headers, bodies, requests)] for name, argv in SERVERS.items()]
    print(
        table(
            f"Ordinary GET /accounts/login/ with {headers} slow-header and {bodies} slow-body "
            "clients (seconds)",
            ["server", "alone p50", "slowed p50", "slowed max", "timed out"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
