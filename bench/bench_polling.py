"""Latency of the status endpoints while jobs run, under many concurrent pollers.

    python bench/bench_polling.py [POLLERS] [SECONDS] [RUNNING_JOBS]

Starts a worker and ``collect web`` (its default 2
processes) on the database of DATABASE_URL (default SQLite), keeps RUNNING_JOBS
jobs writing batches, then lets POLLERS threads hit ``GET /api/tasks/`` and
``GET /api/tasks/<id>/`` as fast as they can for SECONDS. Prints p50/p95/p99.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from common import ROOT, WorkerProcess, bench_user, database_label, setup_django, table


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_web(port: int) -> subprocess.Popen[bytes]:
    log = open(Path(os.environ["COLLECT_DATA_DIR"]) / "bench-web.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "collect", "web", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=2).close()
            return proc
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(Path(log.name).read_text()) from None
            time.sleep(0.2)


def get(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


def poll(base: str, token: str, ids: list[str], until: float, out: dict[str, list[float]]) -> None:
    rng = random.Random()
    while time.monotonic() < until:
        for name, path in (
            ("GET /api/tasks/", "/api/tasks/"),
            ("GET /api/tasks/<id>/", f"/api/tasks/{rng.choice(ids)}/"),
        ):
            began = time.monotonic()
            get(base + path, token)
            out[name].append(time.monotonic() - began)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(pollers: int, seconds: float, running: int) -> None:
    os.environ.setdefault("COLLECT_JOBS_PER_MINUTE", "0")  # the history below is not a burst
    setup_django()
    from collect.tokens import token_create
    from jobs import services
    from jobs.models import ACTIVE, Job

    user = bench_user()
    token = token_create(user=user)[0]
    for job in Job.objects.filter(owner=user, state__in=ACTIVE | {"paused"}):
        services.job_stop(job=job, by=user)  # left over from an interrupted run
    # A history to list: 60 finished jobs (a list page shows 50).
    for _ in range(max(0, 60 - Job.objects.filter(owner=user).count())):
        Job.objects.create(kind="count", owner=user, state="succeeded", params={"n": 0})
    worker = WorkerProcess(concurrency=max(1, running))
    port = free_port()
    web = start_web(port)
    jobs = []
    try:
        params = {"n": 10**9, "batch": 50, "delay": 0.01}  # writes a batch every ~10 ms
        jobs = [
            services.job_create(kind="count", owner=user, params=params) for _ in range(running)
        ]
        time.sleep(2)  # the jobs are running
        ids = [str(i) for i in Job.objects.filter(owner=user).values_list("id", flat=True)[:60]]
        out: dict[str, list[float]] = {"GET /api/tasks/": [], "GET /api/tasks/<id>/": []}
        until = time.monotonic() + seconds
        threads = [
            threading.Thread(target=poll, args=(f"http://127.0.0.1:{port}", token, ids, until, out))
            for _ in range(pollers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        written = sum(Job.objects.get(id=j.id).processed for j in jobs)
    finally:
        for job in jobs:
            services.job_stop(job=job, by=user)
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)
        time.sleep(1)
        worker.stop()
    rows = [
        [
            name,
            len(v),
            f"{len(v) / seconds:.0f}",
            f"{percentile(v, 0.50):.0f}",
            f"{percentile(v, 0.95):.0f}",
            f"{percentile(v, 0.99):.0f}",
            f"{1000 * max(v):.0f}",
        ]
        for name, v in out.items()
    ]
    title = (
        f"Polling latency ({database_label()}): {pollers} pollers for {seconds:.0f} s "
        f"while {running} jobs wrote {written} rows"
    )
    print(
        table(
            title, ["endpoint", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"], rows
        )
    )


if __name__ == "__main__":
    args = [*sys.argv[1:], "", "", ""]
    main(int(args[0] or 20), float(args[1] or 15), int(args[2] or 2))
