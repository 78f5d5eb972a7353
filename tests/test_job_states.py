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
WHY = {
    State.STOPPING: "This job is being stopped (what it wrote is being removed); "
    "it cannot be {action}d now.",
    State.STOPPED: "This job has already been stopped; there is nothing to {action}.",
    State.SUCCEEDED: "This job has already succeeded; there is nothing to {action}.",
    State.FAILED: "This job has already failed; there is nothing to {action}.",
}


@pytest.mark.django_db
@pytest.mark.parametrize(("action", "state"), REFUSED)
def test_it_refuses_impossible_changes(user, action, state):  # type: ignore[no-untyped-def]
    job = make_job(user, state)
    fn = getattr(services, f"job_{action}")
    with pytest.raises(services.JobStateError) as caught:
        fn(job=job, by=user)
    assert str(caught.value) == WHY[state].format(action=action)
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


def _innodb_deadlocks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'")
        return int(cursor.fetchone()[1])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", ["pause", "stop"])
def test_a_change_asked_during_a_batch_waits_for_it_and_never_deadlocks(user, action):  # type: ignore[no-untyped-def]
    """A user's pause or stop while a worker's batch holds the job row.

    The batch locks the job row by primary key, then updates the row's
    ``(state, lease_expires_at)`` index entry with its checkpoint. A request
    that reached the index entry first (MariaDB reads a one-row UPDATE through
    that index on a small table) deadlocked with it: CI saw a pause answered
    with error 1213. The request must wait for the batch, then apply.
    """
    if connection.vendor == "sqlite":
        pytest.skip("SQLite has one writer at a time (BEGIN IMMEDIATE): no deadlock is possible")
    import uuid
    from datetime import timedelta

    from django.db import transaction
    from django.db.models import F
    from django.utils import timezone

    from tests import faults
    from tests.workers import wait_for

    token = uuid.uuid4()
    lease = timezone.now() + timedelta(seconds=30)
    # The job alone in its table: MariaDB then reads the request's UPDATE through the
    # state index (with more rows it may take the primary key and hide the fault).
    job = make_job(user, State.RUNNING)
    Job.objects.filter(id=job.id).update(lease_token=token, lease_expires_at=lease)
    deadlocks = _innodb_deadlocks() if connection.vendor == "mysql" else 0
    holding, errors = threading.Event(), []

    def batch() -> None:  # what jobs.engine.Runner._commit does, slowed down
        try:
            with transaction.atomic():
                Job.objects.select_for_update().only("state").get(id=job.id)
                holding.set()
                wait_for(
                    lambda: faults.another_session_waits_on_a_lock("%jobs_job%"),
                    timeout=30,
                    what="the request to wait",
                )
                Job.objects.filter(id=job.id, lease_token=token).update(
                    processed=F("processed") + 100,
                    lease_expires_at=lease + timedelta(seconds=5),
                    updated_at=timezone.now(),
                )
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=batch)
    thread.start()
    assert holding.wait(30)
    changed = getattr(services, f"job_{action}")(job=job, by=user)
    thread.join(60)
    assert errors == []
    assert changed.state == {"pause": State.PAUSING, "stop": State.STOPPING}[action]
    assert changed.processed == 100  # the batch committed first, whole
    if connection.vendor == "mysql":
        assert _innodb_deadlocks() == deadlocks
