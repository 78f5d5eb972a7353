"""Every change of a job's state that a person (or a script) asks for.

Views, the API, the CLI and the admin all call these functions. Each change
is a compare-and-set (change the row only if it is still in the state seen,
``jobs.rowlock.update_job``) that must touch exactly one row, so two requests
racing for one job can never leave it half-changed: one wins, the other sees
the new state and answers accordingly.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from kombu.exceptions import KombuError

from jobs import audit
from jobs.formatting import done_to, state_phrase
from jobs.models import ACTIVE, TERMINAL, AuditAction, Job, State
from jobs.rowlock import update_job

log = logging.getLogger(__name__)


class JobStateError(Exception):
    """The asked-for change is impossible from the job's current state (HTTP 409)."""

    def __init__(self, job: Job, action: str) -> None:
        self.job = job
        self.action = action
        self.state = job.state
        super().__init__(impossible_message(state=job.state, action=action))


# Why a change is impossible, by the state the job is in (the words users read with a 409).
_WHY = {
    State.SUCCEEDED: "This job has already succeeded",
    State.FAILED: "This job has already failed",
    State.STOPPED: "This job has already been stopped",
}


def impossible_message(*, state: str, action: str) -> str:
    """The sentence for a 409: ``This job has already succeeded; there is nothing to stop.``"""
    done = done_to(action)
    if state == State.STOPPING:
        return (
            f"This job is being stopped (what it wrote is being removed); it cannot be {done} now."
        )
    if state in _WHY:
        return f"{_WHY[State(state)]}; there is nothing to {action}."
    return f"This job {state_phrase(state)}; it cannot be {done} now."


# For each action, the states in which asking again changes nothing (a harmless 200).
_ALREADY = {
    "pause": {State.PAUSING: "is already pausing", State.PAUSED: "is already paused"},
    "resume": {State.QUEUED: "is already queued", State.RUNNING: "is already running"},
    "stop": {State.STOPPING: "is already being stopped", State.STOPPED: "has already been stopped"},
}


def action_refusal(*, job: Job, action: str) -> str:
    """Why ``action`` (pause, resume, stop) would change nothing now, or "" if it would.

    For confirmation pages: a finished job, or one already where the action
    leads, gets this sentence instead of a button.
    """
    already = _ALREADY.get(action, {}).get(State(job.state))
    if already:
        return f"This job {already}; there is nothing to {action}."
    if job.state in TERMINAL or job.state == State.STOPPING:
        return impossible_message(state=job.state, action=action)
    return ""


class TooManyRequests(Exception):
    """A limit was reached (HTTP 429 with ``Retry-After``, RFC 9110 §10.2.3).

    ``retry_after`` is in whole seconds; ``str(error)`` is the sentence users read.
    """

    def __init__(self, message: str, retry_after: int) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(message)


class JobRateLimited(TooManyRequests):
    """The user started too many jobs in the last minute (HTTP 429)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"You started {limit} jobs in the last minute, the most allowed. "
            "Wait a minute and try again, or stop jobs you do not need.",
            retry_after=60,
        )


def jobs_visible_to(user: Any) -> QuerySet[Job]:
    """The jobs a user may see and control: their own, or everybody's with ``manage_all_jobs``.

    The one place this rule lives: pages, API, seed URLs, downloads and admin
    actions all select jobs through it, so another user's job is a 404
    everywhere. ``is_staff`` alone grants nothing here (it only opens the admin).
    """
    if not getattr(user, "is_authenticated", False):
        return Job.objects.none()
    if user.has_perm("jobs.manage_all_jobs"):
        return Job.objects.all()
    return Job.objects.filter(owner=user)


def enqueue_now(job_id: Any) -> bool:
    """Send the job to the workers now (its row must already be committed).

    If the broker is down the job is not lost and the request does not fail:
    the row stays as it is, marked as not sent (``enqueued_at`` empty), and
    the next sweep of any worker sends it once the broker is back. Returns
    whether the message was sent.
    """
    from jobs.tasks import run_job

    try:
        run_job.apply_async(args=(str(job_id),), task_id=str(job_id))
    except (KombuError, OSError) as exc:
        log.warning("job %s: the broker did not take it (%s); a sweep sends it later", job_id, exc)
        Job.objects.filter(id=job_id).update(enqueued_at=None)
        return False
    return True


def enqueue_after_commit(job_id: Any) -> None:
    """Send the job to the workers once the row they will read is committed."""
    transaction.on_commit(lambda: enqueue_now(job_id))


@transaction.atomic
def job_create(*, kind: str, owner: Any, params: dict[str, Any], label: str = "") -> Job:
    from jobs.kinds import get_kind

    get_kind(kind)  # an unknown kind is a programming error: fail here, not in a worker
    limit = settings.COLLECT_JOBS_PER_MINUTE
    if limit and owner is not None:
        recent = Job.objects.filter(
            owner=owner, parent=None, created_at__gte=timezone.now() - timedelta(minutes=1)
        ).count()
        if recent >= limit:
            raise JobRateLimited(limit)
    job = Job.objects.create(
        kind=kind, owner=owner, params=params, label=label[:255], enqueued_at=timezone.now()
    )
    log.info("job %s created: kind=%s owner=%s", job.id, kind, owner)
    audit.record(AuditAction.START, user=owner, job_id=job.id, detail=job.label)
    # The seed printed the task id on the server's console; people rely on it. On
    # stderr, so that a command's own output (the bare id, JSON) stays clean.
    print(f"Task id: {job.id}", file=sys.stderr, flush=True)
    enqueue_after_commit(job.id)
    return job


def _cas(job: Job, from_states: set[str], **changes: Any) -> bool:
    """Change ``job`` only if it is still in one of ``from_states`` (``jobs.rowlock``)."""
    changes.setdefault("updated_at", timezone.now())
    return update_job(job.id, Q(state__in=from_states), **changes)


def job_pause(*, job: Job, by: Any = None) -> Job:
    """Ask a job to pause. A queued job pauses at once; a running one after its batch.

    A job made of parts pauses every part and is paused once none runs
    (``jobs.parts``); asked of a part, it pauses the whole job.
    """
    return _change_whole(job, _pause_one, AuditAction.PAUSE, by)


def _change_whole(job: Job, change: Callable[[Job], Job], action: AuditAction, by: Any) -> Job:
    """Apply ``change`` (pause or stop) to the job a person controls, and to each of its parts.

    ``change`` takes one job row and returns it refreshed, or raises
    ``JobStateError`` when its state does not allow it; that error on the
    whole job reaches the caller, while a part that has already ended is
    left as it is. The whole job then settles from its parts' states
    (``jobs.parts.settle``); the request is logged and audited once.
    """
    from jobs import parts

    job = change(_whole(job))
    if job.has_parts:
        _change_parts(job, change)
        parts.settle(job.id)
        job.refresh_from_db()
    log.info("job %s %s requested by %s: now %s", job.id, action.value, by, job.state)
    audit.record(action, user=by, job_id=job.id, detail=f"now {job.state}")
    return job


def _whole(job: Job) -> Job:
    """The job a person controls: a part (``jobs.parts``) stands for the job it belongs to."""
    if job.parent_id is None:
        return job
    log.info("job %s is a part of job %s: that job is what changes", job.id, job.parent_id)
    return Job.objects.get(id=job.parent_id)


def _pause_one(job: Job) -> Job:
    for _ in range(5):
        if job.state in {State.PAUSING, State.PAUSED}:
            return job
        if job.state == State.QUEUED and _cas(job, {State.QUEUED}, state=State.PAUSED):
            break
        if job.state == State.RUNNING and _cas(job, {State.RUNNING}, state=State.PAUSING):
            break
        if job.state not in {State.QUEUED, State.RUNNING}:
            raise JobStateError(job, "pause")
        job.refresh_from_db()
    job.refresh_from_db()
    return job


def job_resume(*, job: Job, by: Any = None) -> Job:
    """Resume a paused job: it is queued again and any worker continues from its checkpoint.

    A job made of parts (``jobs.parts``) is running again at once and resumes
    every part; asked of a part, it resumes the whole job.
    """
    from jobs import parts

    job = _whole(job)
    job.refresh_from_db()
    if not job.has_parts:
        job = _resume_one(job)
    else:
        for _ in range(5):
            if job.state == State.RUNNING:
                break
            if job.state in {State.PAUSING, State.PAUSED} and _cas(
                job, {State.PAUSING, State.PAUSED}, state=State.RUNNING
            ):
                break
            if job.state not in {State.PAUSING, State.PAUSED}:
                raise JobStateError(job, "resume")
            job.refresh_from_db()
        for part in parts.parts_of(job):
            with contextlib.suppress(JobStateError):  # a part that has already ended
                _resume_one(part)
        job.refresh_from_db()
    log.info("job %s resume requested by %s: now %s", job.id, by, job.state)
    audit.record(AuditAction.RESUME, user=by, job_id=job.id, detail=f"now {job.state}")
    return job


def _resume_one(job: Job) -> Job:
    for _ in range(5):
        if job.state in {State.QUEUED, State.RUNNING}:
            return job
        # The worker has not seen the pause yet: simply carry on.
        if job.state == State.PAUSING and _cas(job, {State.PAUSING}, state=State.RUNNING):
            break
        if job.state == State.PAUSED:
            with transaction.atomic():
                if _cas(job, {State.PAUSED}, state=State.QUEUED, enqueued_at=timezone.now()):
                    enqueue_after_commit(job.id)
                    break
        if job.state not in {State.PAUSING, State.PAUSED}:
            raise JobStateError(job, "resume")
        job.refresh_from_db()
    job.refresh_from_db()
    return job


def job_stop(*, job: Job, by: Any = None) -> Job:
    """Stop a job and undo what it wrote.

    A job that never started is stopped on the spot. A running job stops after
    its current batch and its worker undoes its writes; a paused (or re-queued)
    job is handed to a worker just to undo them. A job made of parts stops
    every part and is undone once all have ended (``jobs.parts``); asked of a
    part, it stops the whole job.
    """
    return _change_whole(job, _stop_one, AuditAction.STOP, by)


def stop_parts(job: Job) -> None:
    """Ask every part of ``job`` that has not ended to stop (``jobs.parts``)."""
    _change_parts(job, _stop_one)


def _change_parts(job: Job, change: Callable[[Job], Job]) -> None:
    """Apply ``change`` to each part of ``job`` not yet ended (one that ends meanwhile stays)."""
    from jobs import parts

    for part in parts.parts_of(job):
        if part.state not in TERMINAL:
            with contextlib.suppress(JobStateError):  # it ended meanwhile
                change(part)


def _stop_one(job: Job) -> Job:
    from jobs.kinds import get_kind

    for _ in range(5):
        if job.state in {State.STOPPING, State.STOPPED}:
            return job
        if job.state == State.QUEUED and job.started_at is None:
            now = timezone.now()
            if update_job(
                job.id,
                Q(state=State.QUEUED, started_at=None),
                state=State.STOPPED,
                finished_at=now,
                updated_at=now,
            ):
                if job.parent_id is None:  # a part's files are its whole job's
                    get_kind(job.kind).discard(job)
                break
        elif job.state in {State.RUNNING, State.PAUSING}:
            if _cas(job, {State.RUNNING, State.PAUSING}, state=State.STOPPING):
                break
        elif job.state in {State.QUEUED, State.PAUSED}:
            with transaction.atomic():
                if _cas(
                    job,
                    {State.QUEUED, State.PAUSED},
                    state=State.STOPPING,
                    lease_token=None,
                    lease_expires_at=None,
                    enqueued_at=timezone.now(),
                ):
                    enqueue_after_commit(job.id)
                    break
        else:
            raise JobStateError(job, "stop")
        job.refresh_from_db()
    job.refresh_from_db()
    return job


def job_sweep() -> int:
    """Hand jobs whose worker vanished to the workers again; return how many.

    Every worker runs this periodically. The embedded broker never redelivers
    a message that a dead worker had taken, so the database, not the broker,
    decides what still has to run. A compare-and-set on ``enqueued_at`` makes
    sure only one of many sweeping workers re-sends a given job.
    """
    now = timezone.now()
    lease = timedelta(seconds=settings.COLLECT_JOB_LEASE_SECONDS)
    # A worker died while pausing: its last batch is committed, so it is paused.
    # Found by a plain read, then changed one by one by primary key: an UPDATE over
    # the (state, lease_expires_at) index would lock index entries before rows, the
    # reverse of a running batch (row, then index), and deadlock with it on MariaDB.
    stale = Job.objects.filter(state=State.PAUSING, lease_expires_at__lt=now)
    for job_id in list(stale.values_list("id", flat=True)[:500]):
        update_job(
            job_id,
            Q(state=State.PAUSING, lease_expires_at__lt=now),
            state=State.PAUSED,
            lease_token=None,
            lease_expires_at=None,
            updated_at=now,
        )
    requeue_queued = timedelta(seconds=settings.COLLECT_REQUEUE_QUEUED_SECONDS)
    orphans = Job.objects.filter(
        Q(state__in=[State.RUNNING, State.STOPPING], lease_expires_at__lt=now)
        | Q(state=State.STOPPING, lease_expires_at=None, enqueued_at__lt=now - lease)
        | Q(state=State.QUEUED, enqueued_at__lt=now - requeue_queued)
        # Never sent: the broker was down when it was created, resumed or stopped.
        | Q(state__in=[State.QUEUED, State.STOPPING], enqueued_at=None)
    ).values_list("id", "enqueued_at")
    found = list(orphans[:500]) + _lost_messages(now, lease, requeue_queued)
    sent = 0
    for job_id, enqueued_at in found:
        # Running jobs: re-send at most once per lease period.
        if (
            Job.objects.filter(id=job_id, enqueued_at=enqueued_at)
            .filter(Q(enqueued_at=None) | Q(enqueued_at__lt=now - min(lease, requeue_queued)))
            .update(enqueued_at=now)
        ):
            log.warning("job %s: worker gone or message lost; handing it to a worker", job_id)
            sent += enqueue_now(job_id)
    # Jobs made of parts follow their parts; again here in case a worker died in between.
    from jobs import parts

    for parent_id in parts.parents_to_settle():
        parts.settle(parent_id)
    return sent


def _lost_messages(
    now: datetime, lease: timedelta, requeue_queued: timedelta
) -> list[tuple[Any, datetime | None]]:
    """Queued jobs whose message the embedded broker no longer holds (a worker took it and died).

    ``(id, enqueued_at)`` of jobs queued for over a lease but not yet for
    ``COLLECT_REQUEUE_QUEUED_SECONDS`` (those are re-sent anyway), whose task id
    is in no message file of the queue folder; [] with a server broker, which
    gives a dead worker's unacknowledged messages to another one. Without this a
    job sent to a worker that was killed before it started waited for that
    setting (5 minutes). A message read while a live worker takes it may be sent
    twice: the second finds the job claimed and does nothing.
    """
    from collect.broker import waiting_task_ids

    candidates = list(
        Job.objects.filter(
            state=State.QUEUED, enqueued_at__lt=now - lease, enqueued_at__gte=now - requeue_queued
        ).values_list("id", "enqueued_at")[:500]
    )
    # The folder (a file read per waiting message) only when a job may have lost its own.
    waiting = waiting_task_ids(settings.CELERY_TASK_DEFAULT_QUEUE) if candidates else None
    if waiting is None:
        return []
    return [(i, at) for i, at in candidates if str(i) not in waiting]


def active_job_count() -> int:
    return Job.objects.filter(state__in=ACTIVE).count()
