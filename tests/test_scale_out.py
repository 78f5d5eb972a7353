"""Several workers (as on several hosts) share the jobs, and a stopped worker loses nothing.

Three real ``celery worker`` processes with their own host names take six
``count`` jobs. Every job must end with its rows exactly once (the unique
constraint on ``CountRow`` turns a duplicate into a failed job), the jobs must
be spread over the workers, and a worker stopped with SIGTERM (what Docker,
systemd and Kubernetes send) must hand its jobs back at a batch boundary:
it exits quickly, and another worker finishes them from their checkpoint.
"""

from __future__ import annotations

import time

import pytest

from jobs import services
from jobs.models import CountRow, Job, State
from tests.workers import Worker, wait_for, wait_processed, wait_state

# The outcome depends on the database and the broker: CI runs it on each.
pytestmark = pytest.mark.servers

N, BATCH, DELAY = 2000, 50, 0.2  # 40 batches of at least 0.2 s: about 8 s per job


def start(user) -> Job:  # type: ignore[no-untyped-def]
    return services.job_create(
        kind="count", owner=user, params={"n": N, "batch": BATCH, "delay": DELAY}
    )


def host(job: Job) -> str:
    """The worker's host name from ``job.worker`` (``hostname:pid`` of the pool process)."""
    return job.worker.rsplit(":", 1)[0]


def rows(job: Job) -> list[int]:
    return sorted(CountRow.objects.filter(job=job).values_list("n", flat=True))


def test_it_spreads_jobs_over_workers_and_a_sigterm_loses_nothing(make_worker, user):  # type: ignore[no-untyped-def]
    workers: list[Worker] = [make_worker(concurrency=2) for _ in range(3)]
    jobs = [start(user) for _ in range(6)]

    def all_running() -> bool:
        for job in jobs:
            job.refresh_from_db()
        return all(job.state == State.RUNNING and job.processed > 0 for job in jobs)

    wait_for(all_running, timeout=60, what="all six jobs to run")
    hosts = {host(job) for job in jobs}
    assert hosts <= {w.name for w in workers}
    assert len(hosts) >= 2, f"all jobs ran on {hosts}"

    victim = next(w for w in workers if w.name in hosts)
    victim_jobs = [job for job in jobs if host(job) == victim.name]
    for job in victim_jobs:
        wait_processed(job, 4 * BATCH, timeout=30)  # well into the job, far from its end

    began = time.monotonic()
    victim.stop(timeout=60)  # SIGTERM: Celery's warm shutdown
    took = time.monotonic() - began
    assert victim.proc is not None and victim.proc.returncode == 0, victim.log()
    print(f"worker exited {took:.2f} s after SIGTERM while running {len(victim_jobs)} jobs")

    # It handed its jobs back half-way instead of running them to the end first.
    for job in victim_jobs:
        job.refresh_from_db()
        assert job.state == State.RUNNING, job.state
        assert 0 < job.processed < N
        assert job.processed == len(rows(job))  # what is committed is exactly what counts
    assert took < 10, f"warm shutdown took {took:.1f} s"
    assert "handed back" in victim.log()

    for job in jobs:
        wait_state(job, State.SUCCEEDED, timeout=120)
        assert (job.processed, job.total) == (N, N)
        assert rows(job) == list(range(N))  # no row twice, none lost

    for job in victim_jobs:
        # Another worker continued from the checkpoint.
        assert host(job) != victim.name
        assert job.attempts == 1  # handed back, not lost: not counted against the attempt cap
