"""Latency of the status endpoints and of pause/stop while jobs run, under many pollers.

    python bench/bench_polling.py [POLLERS] [SECONDS] [RUNNING_JOBS] [INTERVAL]

Starts a worker and ``collect web`` (its default 2 processes) on the database of
DATABASE_URL (default SQLite), keeps RUNNING_JOBS jobs writing batches, then lets
POLLERS threads hit ``GET /api/tasks/`` and ``GET /api/tasks/<id>/`` for SECONDS,
each waiting INTERVAL seconds between two rounds (default 0: as fast as they can;
the job pages poll every second). Poller i watches the i-th newest job (the
running ones first, then finished ones). Pollers send ``If-None-Match`` with the last
``ETag`` they got for a URL, as a browser's cache does; a 304 counts as an answer.

Meanwhile one controller per running job asks, over the API, for a pause (then a
resume) and for a stop (then starts a new job in its place), again and again, and
times each from the POST to the answer ("accepted": the job is ``pausing`` or
``stopping``) and to the final state (``paused``; ``stopped``, the undo of what
the job wrote included). Prints p50/p95/p99 of each.
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
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

from common import (
    ROOT,
    WorkerProcess,
    bench_user,
    database_label,
    setup_django,
    table,
    wait_state,
)


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


def cpu_seconds(group: int) -> float:
    """CPU time (user + system, seconds) used so far by the processes of process group ``group``."""
    out = subprocess.run(["pgrep", "-g", str(group)], capture_output=True, text=True, check=False)
    total = 0
    for pid in out.stdout.split():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone
        total += int(fields[11]) + int(fields[12])  # utime, stime (stat fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def call(url: str, token: str, *, method: str = "GET", etag: str = "") -> tuple[int, Any, str]:
    """(status, JSON body or None for a 304, the answer's ETag or "")."""
    headers = {"Authorization": f"Token {token}"}
    if etag:
        headers["If-None-Match"] = etag
    request = urllib.request.Request(url, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.loads(response.read()), response.headers.get("ETag", "")
    except urllib.error.HTTPError as error:
        if error.code != 304:
            raise
        return 304, None, error.headers.get("ETag", etag)


def poll(
    base: str,
    token: str,
    watched: str,
    until: float,
    interval: float,
    out: dict[str, list[float]],
    not_modified: dict[str, int],
) -> None:
    """Ask for the list and for the ``watched`` job, again and again, as a job page does."""
    rng = random.Random()
    etags: dict[str, str] = {}
    time.sleep(rng.uniform(0, interval))  # the pollers do not all start at once
    while time.monotonic() < until:
        began_round = time.monotonic()
        for name, path in (
            ("GET /api/tasks/", "/api/tasks/"),
            ("GET /api/tasks/<id>/", f"/api/tasks/{watched}/"),
        ):
            began = time.monotonic()
            status, _, etags[path] = call(base + path, token, etag=etags.get(path, ""))
            out[name].append(time.monotonic() - began)
            not_modified[name] += status == 304
        time.sleep(max(0.0, interval - (time.monotonic() - began_round)))


# How often a controller reads its job's state: the resolution of the control timings.
STEP = 0.02


def control(
    base: str, token: str, jobs: list[Any], slot: int, until: float, out: dict[str, list[float]]
) -> None:
    """Pause and resume, stop and replace ``jobs[slot]`` until ``until``; time each step."""
    from jobs import services

    while time.monotonic() < until:
        job = wait_state(jobs[slot], {"running"}, timeout=120, interval=STEP)
        for action, accepted, final in (
            ("pause", {"pausing", "paused"}, "paused"),
            ("stop", {"stopping", "stopped"}, "stopped"),
        ):
            time.sleep(0.3)  # a few batches in
            began = time.monotonic()
            status, body, _ = call(f"{base}/api/tasks/{job.id}/{action}/", token, method="POST")
            out[f"POST {action}/ → accepted"].append(time.monotonic() - began)
            if status != 200 or body["state"] not in accepted:
                raise RuntimeError(f"{action} answered {status} {body}")
            wait_state(job, {final}, timeout=300, interval=STEP)
            out[f"POST {action}/ → {final}"].append(time.monotonic() - began)
            if action == "pause":
                call(f"{base}/api/tasks/{job.id}/resume/", token, method="POST")
                job = wait_state(job, {"running"}, timeout=120, interval=STEP)
        jobs[slot] = services.job_create(kind="count", owner=job.owner, params=job.params)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(pollers: int, seconds: float, running: int, interval: float) -> None:
    os.environ.setdefault("COLLECT_JOBS_PER_MINUTE", "0")  # the history below is not a burst
    # One user polls from many threads here: the per-user API throttle would refuse them
    # (a one-second window keeps its history, and so its cost, as small as a real one).
    os.environ.setdefault("COLLECT_API_USER_RATE", "1000000/second")
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
    try:
        web = start_web(port)
    except BaseException:
        worker.stop()  # not left running when the web server does not start
        raise
    base = f"http://127.0.0.1:{port}"
    jobs: list[Any] = []
    try:
        params = {"n": 10**9, "batch": 50, "delay": 0.01}  # writes a batch every ~10 ms
        jobs = [
            services.job_create(kind="count", owner=user, params=params) for _ in range(running)
        ]
        time.sleep(2)  # the jobs are running
        ids = [str(i) for i in Job.objects.filter(owner=user).values_list("id", flat=True)[:60]]
        out: dict[str, list[float]] = defaultdict(list)
        not_modified: dict[str, int] = defaultdict(int)
        until = time.monotonic() + seconds
        threads = [
            threading.Thread(
                target=poll,
                args=(base, token, ids[i % len(ids)], until, interval, out, not_modified),
            )
            for i in range(pollers)
        ]
        threads += [
            threading.Thread(target=control, args=(base, token, jobs, slot, until, out))
            for slot in range(running)
        ]
        web_cpu = cpu_seconds(web.pid)
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        web_cpu = cpu_seconds(web.pid) - web_cpu
    finally:
        for job in jobs:
            services.job_stop(job=Job.objects.get(id=job.id), by=user)
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)
        time.sleep(1)
        worker.stop()
    rows = [
        [
            name,
            len(v),
            f"{len(v) / seconds:.1f}",
            f"{100 * not_modified[name] / len(v):.0f}%" if name in not_modified else "",
            f"{percentile(v, 0.50):.0f}",
            f"{percentile(v, 0.95):.0f}",
            f"{percentile(v, 0.99):.0f}",
            f"{1000 * max(v):.0f}",
        ]
        for name, v in out.items()
        if v
    ]
    pace = f"every {interval:g} s" if interval else "as fast as they can"
    title = (
        f"Polling latency ({database_label()}): {pollers} pollers ({pace}) for {seconds:.0f} s "
        f"while {running} jobs ran; load average {os.getloadavg()[0]:.1f}"
    )
    header = ["request", "count", "per s", "304", "p50 ms", "p95 ms", "p99 ms", "max ms"]
    print(table(title, header, rows))
    answered = sum(len(v) for v in out.values()) - sum(
        len(v) for k, v in out.items() if k.endswith(("→ paused", "→ stopped"))
    )
    # Load-independent: what the web processes spent per answer (polls and control POSTs).
    print(
        f"web CPU: {web_cpu:.1f} s for {answered} requests, {1000 * web_cpu / answered:.1f} ms each"
    )


if __name__ == "__main__":
    args = [*sys.argv[1:], "", "", "", ""]
    main(int(args[0] or 20), float(args[1] or 15), int(args[2] or 2), float(args[3] or 0))
