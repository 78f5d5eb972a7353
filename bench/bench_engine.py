"""Latency of the job engine: enqueue → start, pause request → paused, stop → stopped.

    python bench/bench_engine.py [TRIALS]

Uses DATABASE_URL / CELERY_BROKER_URL like the app (default: SQLite + the
embedded broker) and starts its own worker process.
"""

from __future__ import annotations

import statistics
import sys
import time

from common import WorkerProcess, bench_user, database_label, setup_django, table, wait_state


def main(trials: int) -> None:
    setup_django()
    from jobs import services
    from jobs.models import State

    user = bench_user()
    worker = WorkerProcess(concurrency=2)
    start, pause, resume, stop = [], [], [], []
    try:
        for _ in range(trials):
            params = {"n": 10**9, "batch": 50, "delay": 0.02}
            t = time.monotonic()
            job = services.job_create(kind="count", owner=user, params=params)
            wait_state(job, {State.RUNNING})
            start.append(time.monotonic() - t)
            time.sleep(0.2)
            t = time.monotonic()
            services.job_pause(job=job, by=user)
            wait_state(job, {State.PAUSED})
            pause.append(time.monotonic() - t)
            t = time.monotonic()
            services.job_resume(job=job, by=user)
            wait_state(job, {State.RUNNING})
            resume.append(time.monotonic() - t)
            time.sleep(0.2)
            t = time.monotonic()
            services.job_stop(job=job, by=user)
            wait_state(job, {State.STOPPED})
            stop.append(time.monotonic() - t)
    finally:
        worker.stop()

    def ms(values: list[float], q: float) -> str:
        ordered = sorted(values)
        return f"{1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]:.0f}"

    rows = [
        [name, len(v), f"{1000 * statistics.median(v):.0f}", ms(v, 0.95), f"{1000 * max(v):.0f}"]
        for name, v in [
            ("enqueue -> running", start),
            ("pause -> paused", pause),
            ("resume -> running", resume),
            ("stop -> stopped", stop),
        ]
    ]
    print(
        table(
            f"Engine latency on {database_label()} (batch of 50 rows, 20 ms work per batch)",
            ["step", "trials", "median ms", "p95 ms", "max ms"],
            rows,
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
