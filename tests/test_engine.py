"""The job engine with a real worker process, on the built-in ``count`` kind."""

from __future__ import annotations

import time

import pytest

from jobs import services
from jobs.models import CountRow, Job, State
from tests.workers import wait_processed, wait_state

# The outcome depends on the database and the broker: CI runs it on each.
pytestmark = pytest.mark.servers


def start(user, n: int = 400, batch: int = 10, delay: float = 0.02, **extra):  # type: ignore[no-untyped-def]
    return services.job_create(
        kind="count", owner=user, params={"n": n, "batch": batch, "delay": delay, **extra}
    )


def rows(job: Job) -> list[int]:
    return sorted(CountRow.objects.filter(job=job).values_list("n", flat=True))


def test_it_runs_a_job_to_the_end(worker, user):  # type: ignore[no-untyped-def]
    job = wait_state(start(user, n=250, batch=50, delay=0), State.SUCCEEDED)
    assert (job.processed, job.total) == (250, 250)
    assert rows(job) == list(range(250))
    assert job.started_at and job.finished_at and job.lease_token is None


def test_a_paused_job_stops_within_a_batch_and_resumes_exactly(worker, user):  # type: ignore[no-untyped-def]
    job = start(user, n=600, batch=10, delay=0.03)
    wait_processed(job, 50)
    services.job_pause(job=job, by=user)
    job = wait_state(job, State.PAUSED, timeout=10)
    paused_at = job.processed
    assert len(rows(job)) == paused_at
    # Paused means paused: nothing more is written, and the worker slot is free.
    other = wait_state(start(user, n=30, batch=10, delay=0), State.SUCCEEDED, timeout=20)
    assert len(rows(other)) == 30
    time.sleep(1)
    job.refresh_from_db()
    assert job.processed == paused_at == len(rows(job))

    services.job_resume(job=job, by=user)
    job = wait_state(job, State.SUCCEEDED)
    assert rows(job) == list(range(600))  # no row twice, none missing
    assert job.processed == 600


def test_a_stopped_running_job_leaves_nothing(worker, user):  # type: ignore[no-untyped-def]
    keep = wait_state(start(user, n=100, batch=50, delay=0), State.SUCCEEDED)
    job = start(user, n=2000, batch=10, delay=0.03)
    wait_processed(job, 50)
    services.job_stop(job=job, by=user)
    job = wait_state(job, State.STOPPED, timeout=15)
    assert rows(job) == []
    time.sleep(1.5)  # and nothing appears afterwards
    assert rows(job) == []
    assert rows(keep) == list(range(100))  # other jobs untouched


def test_a_paused_job_that_is_stopped_is_rolled_back(worker, user):  # type: ignore[no-untyped-def]
    job = start(user, n=2000, batch=10, delay=0.03)
    wait_processed(job, 30)
    services.job_pause(job=job, by=user)
    job = wait_state(job, State.PAUSED, timeout=10)
    assert rows(job)
    services.job_stop(job=job, by=user)
    wait_state(job, State.STOPPED, timeout=15)
    assert rows(job) == []


def test_a_queued_job_that_is_stopped_never_runs(worker, user):  # type: ignore[no-untyped-def]
    # Fill both worker slots so the next job waits in the queue.
    blockers = [start(user, n=2000, batch=10, delay=0.05) for _ in range(2)]
    for b in blockers:
        wait_state(b, State.RUNNING)
    job = start(user, n=50, batch=10, delay=0)
    services.job_stop(job=job, by=user)
    job.refresh_from_db()
    assert job.state == State.STOPPED
    for b in blockers:
        services.job_stop(job=b, by=user)
        wait_state(b, State.STOPPED, timeout=15)
    time.sleep(1)  # the queued message was delivered by now; it must do nothing
    job.refresh_from_db()
    assert (job.state, job.started_at, rows(job)) == (State.STOPPED, None, [])


def test_a_failing_job_undoes_its_writes_and_says_why(worker, user):  # type: ignore[no-untyped-def]
    job = wait_state(start(user, n=300, batch=10, delay=0, fail_at=100), State.FAILED)
    assert job.error == "Asked to fail at row 100."
    assert rows(job) == []


@pytest.mark.timeout(180)
def test_a_killed_worker_is_replaced_and_the_job_finishes_exactly(make_worker, user):  # type: ignore[no-untyped-def]
    first = make_worker()
    job = start(user, n=1500, batch=10, delay=0.02)
    wait_processed(job, 200)
    first.kill()
    job.refresh_from_db()
    assert job.state == State.RUNNING
    make_worker()
    job = wait_state(job, State.SUCCEEDED, timeout=90)
    assert rows(job) == list(range(1500))
    assert job.attempts >= 2
