"""Every allowed and refused state change, without a worker (compare-and-set only)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from jobs import services
from jobs.models import Job, State

# The outcome depends on the database and the broker: CI runs it on each.
pytestmark = pytest.mark.servers


def make_job(user, state: str, started: bool = True) -> Job:  # type: ignore[no-untyped-def]
    from django.utils import timezone

    return Job.objects.create(
        kind="count",
        owner=user,
        state=state,
        params={"n": 10},
        started_at=timezone.now() if started else None,
    )


PAUSE = [
    (State.QUEUED, State.PAUSED),
    (State.RUNNING, State.PAUSING),
    (State.PAUSING, State.PAUSING),
    (State.PAUSED, State.PAUSED),
]
RESUME = [
    (State.PAUSED, State.QUEUED),
    (State.PAUSING, State.RUNNING),
    (State.QUEUED, State.QUEUED),
    (State.RUNNING, State.RUNNING),
]
STOP = [
    (State.RUNNING, State.STOPPING),
    (State.PAUSING, State.STOPPING),
    (State.PAUSED, State.STOPPING),
    (State.QUEUED, State.STOPPING),  # it ran before (then was re-queued): undo needed
    (State.STOPPING, State.STOPPING),
    (State.STOPPED, State.STOPPED),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("before", "after"), PAUSE)
def test_it_pauses(user, before, after, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    job = make_job(user, before)
    assert services.job_pause(job=job, by=user).state == after
    assert Job.objects.get(id=job.id).state == after


@pytest.mark.django_db
@pytest.mark.parametrize(("before", "after"), RESUME)
def test_it_resumes(user, before, after, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    job = make_job(user, before)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.job_resume(job=job, by=user).state == after
    # Only a paused job goes back to the workers.
    assert len(callbacks) == (1 if before == State.PAUSED else 0)


@pytest.mark.django_db
@pytest.mark.parametrize(("before", "after"), STOP)
def test_it_stops(user, before, after, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    job = make_job(user, before)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.job_stop(job=job, by=user).state == after
    # Paused or re-queued jobs go to a worker to undo their writes.
    assert len(callbacks) == (1 if before in {State.PAUSED, State.QUEUED} else 0)


@pytest.mark.django_db
def test_it_stops_a_job_that_never_started_on_the_spot(user):  # type: ignore[no-untyped-def]
    job = make_job(user, State.QUEUED, started=False)
    job = services.job_stop(job=job, by=user)
    assert job.state == State.STOPPED
    assert job.finished_at is not None


REFUSED = (
    [("pause", s) for s in (State.STOPPING, State.STOPPED, State.SUCCEEDED, State.FAILED)]
    + [("resume", s) for s in (State.STOPPING, State.STOPPED, State.SUCCEEDED, State.FAILED)]
    + [("stop", s) for s in (State.SUCCEEDED, State.FAILED)]
)


@pytest.mark.django_db
@pytest.mark.parametrize(("action", "state"), REFUSED)
def test_it_refuses_impossible_changes(user, action, state):  # type: ignore[no-untyped-def]
    job = make_job(user, state)
    fn = getattr(services, f"job_{action}")
    with pytest.raises(services.JobStateError) as caught:
        fn(job=job, by=user)
    assert str(caught.value) == f"Cannot {action} a job that is {state}."
    assert Job.objects.get(id=job.id).state == state


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("first", "second", "allowed"),
    [
        ("stop", "stop", {State.STOPPING}),
        ("pause", "stop", {State.STOPPING}),
        ("pause", "resume", {State.RUNNING, State.PAUSING}),
    ],
)
def test_it_survives_racing_requests(user, first, second, allowed):  # type: ignore[no-untyped-def]
    """Two requests at once on a running job: each answers, the row ends consistent."""
    for _ in range(5):
        job = make_job(user, State.RUNNING)
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def act(
            action: str, job: Job = job, barrier: threading.Barrier = barrier, outcomes=outcomes
        ) -> None:  # type: ignore[no-untyped-def]
            try:
                barrier.wait()
                fn = getattr(services, f"job_{action}")
                outcomes.append(fn(job=Job.objects.get(id=job.id)).state)
            except services.JobStateError as error:
                outcomes.append(f"409 {error.state}")
            finally:
                connection.close()

        threads = [threading.Thread(target=act, args=(a,)) for a in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        final = Job.objects.get(id=job.id).state
        assert len(outcomes) == 2
        assert final in allowed, (outcomes, final)
