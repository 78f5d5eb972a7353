"""Every change of a job's state that a person (or a script) asks for.

Views, the API, the CLI and the admin all call these functions. Each change
is a compare-and-set ``UPDATE … WHERE state IN (…)`` that must touch exactly
one row, so two requests racing for one job can never leave it half-changed:
one wins, the other sees the new state and answers accordingly.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import OperationalError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from kombu.exceptions import KombuError

from jobs import audit
from jobs.models import ACTIVE, AuditAction, Job, State

log = logging.getLogger(__name__)


class JobStateError(Exception):
    """The asked-for change is impossible from the job's current state (HTTP 409)."""

    def __init__(self, job: Job, action: str) -> None:
        self.job = job
        self.action = action
        self.state = job.state
        super().__init__(f"Cannot {action} a job that is {job.state}.")


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
            owner=owner, created_at__gte=timezone.now() - timedelta(minutes=1)
        ).count()
        if recent >= limit:
            raise JobRateLimited(limit)
    job = Job.objects.create(
        kind=kind, owner=owner, params=params, label=label[:255], enqueued_at=timezone.now()
    )
    log.info("job %s created: kind=%s owner=%s", job.id, kind, owner)
    audit.record(AuditAction.START, user=owner, job_id=job.id, detail=job.label)
    print(f"Task id: {job.id}", flush=True)  # the seed printed the task id; people rely on it
    enqueue_after_commit(job.id)
    return job


def _cas(job: Job, from_states: set[str], **changes: Any) -> bool:
    changes.setdefault("updated_at", timezone.now())
    for attempt in range(3):
        try:
            return Job.objects.filter(id=job.id, state__in=from_states).update(**changes) == 1
        except OperationalError as exc:
            # InnoDB may pick this one-row UPDATE as a deadlock victim against a
            # worker's batch transaction (both touch the state index); it was
            # rolled back whole, so trying again is safe.
            in_transaction = transaction.get_connection().in_atomic_block
            if exc.args[:1] != (1213,) or attempt == 2 or in_transaction:
                raise
    return False


def job_pause(*, job: Job, by: Any = None) -> Job:
    """Ask a job to pause. A queued job pauses at once; a running one after its batch."""
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
    log.info("job %s pause requested by %s: now %s", job.id, by, job.state)
    audit.record(AuditAction.PAUSE, user=by, job_id=job.id, detail=f"now {job.state}")
    return job


def job_resume(*, job: Job, by: Any = None) -> Job:
    """Resume a paused job: it is queued again and any worker continues from its checkpoint."""
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
    log.info("job %s resume requested by %s: now %s", job.id, by, job.state)
    audit.record(AuditAction.RESUME, user=by, job_id=job.id, detail=f"now {job.state}")
    return job


def job_stop(*, job: Job, by: Any = None) -> Job:
    """Stop a job and undo what it wrote.

    A job that never started is stopped on the spot. A running job stops after
    its current batch and its worker undoes its writes; a paused (or re-queued)
    job is handed to a worker just to undo them.
    """
    from jobs.kinds import get_kind

    for _ in range(5):
        if job.state in {State.STOPPING, State.STOPPED}:
            return job
        if job.state == State.QUEUED and job.started_at is None:
            now = timezone.now()
            if Job.objects.filter(id=job.id, state=State.QUEUED, started_at=None).update(
                state=State.STOPPED, finished_at=now, updated_at=now
            ):
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
    log.info("job %s stop requested by %s: now %s", job.id, by, job.state)
    audit.record(AuditAction.STOP, user=by, job_id=job.id, detail=f"now {job.state}")
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
        stale.filter(id=job_id).update(
            state=State.PAUSED, lease_token=None, lease_expires_at=None, updated_at=now
        )
    requeue_queued = timedelta(seconds=settings.COLLECT_REQUEUE_QUEUED_SECONDS)
    orphans = Job.objects.filter(
        Q(state__in=[State.RUNNING, State.STOPPING], lease_expires_at__lt=now)
        | Q(state=State.STOPPING, lease_expires_at=None, enqueued_at__lt=now - lease)
        | Q(state=State.QUEUED, enqueued_at__lt=now - requeue_queued)
        # Never sent: the broker was down when it was created, resumed or stopped.
        | Q(state__in=[State.QUEUED, State.STOPPING], enqueued_at=None)
    ).values_list("id", "enqueued_at")
    sent = 0
    for job_id, enqueued_at in orphans[:500]:
        # Running jobs: re-send at most once per lease period.
        if (
            Job.objects.filter(id=job_id, enqueued_at=enqueued_at)
            .filter(Q(enqueued_at=None) | Q(enqueued_at__lt=now - min(lease, requeue_queued)))
            .update(enqueued_at=now)
        ):
            log.warning("job %s: worker gone or message lost; handing it to a worker", job_id)
            sent += enqueue_now(job_id)
    return sent


def active_job_count() -> int:
    return Job.objects.filter(state__in=ACTIVE).count()
