"""A job whose worker keeps dying ends ``failed`` and undone, not taken over for ever.

Real worker processes are SIGKILLed (no clean-up of any kind) while they run
the job; only lost workers count, not a pause and a resume.
"""

from __future__ import annotations

import pytest

from jobs import services
from jobs.engine import worker_lost_message
from jobs.models import Job, State
from tests.test_engine import rows, start
from tests.workers import wait_for, wait_processed, wait_state

# Takeover and shutdown differ by broker (redelivery, pool): CI runs these on each.
pytestmark = pytest.mark.servers

CAP = 3


@pytest.mark.timeout(300)
def test_it_fails_a_job_whose_worker_was_lost_too_often(make_worker, user):  # type: ignore[no-untyped-def]
    env = {"COLLECT_JOB_MAX_ATTEMPTS": str(CAP)}
    job = start(user, n=100_000, batch=10, delay=0.02)
    for kill in range(1, CAP + 1):
        w = make_worker(env=env)
        # This worker claimed it (a first start or a takeover) and committed batches.
        claimed = Job.objects.filter(id=job.id, attempts=kill, worker__startswith=w.name)
        job = wait_for(
            claimed.first,
            timeout=90,
            what=f"run {kill} to claim the job",
        )
        before = job.processed
        wait_processed(job, before + 30, timeout=60)
        w.kill()
        job.refresh_from_db()
        assert job.state == State.RUNNING and rows(job)
    # The next worker takes it over once more, sees it lost CAP workers, and undoes it.
    make_worker(env=env)
    job = wait_state(job, State.FAILED, timeout=120)
    assert job.attempts == CAP + 1
    assert job.error == (
        f"This job was stopped after its worker was lost {CAP} times; nothing it wrote was "
        "kept. A worker is lost when it is killed or runs out of memory or time while it "
        "runs the job. Try again with a smaller file or a shorter date range, or ask the "
        "person who runs Collect to look at the workers' logs."
    )
    assert job.error == worker_lost_message(CAP)
    assert rows(job) == []
    assert job.lease_token is None and job.finished_at is not None
    print(f"failed after {CAP} lost workers (attempts {job.attempts}); rows left: 0")


def test_a_pause_and_resume_is_not_a_lost_worker(worker, user):  # type: ignore[no-untyped-def]
    job = start(user, n=300, batch=10, delay=0.02)
    wait_processed(job, 30)
    services.job_pause(job=job, by=user)
    wait_state(job, State.PAUSED, timeout=30)
    services.job_resume(job=job, by=user)
    job = wait_state(job, State.SUCCEEDED, timeout=60)
    assert rows(job) == list(range(300))
    assert job.attempts == 1
