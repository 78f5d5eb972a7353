"""Runs one job on a worker: claim, prepare, batches, pause/stop, finish.

The job row is the only truth. Each batch is written in one transaction that
first locks the job row and checks that this worker still holds the lease
(its ``lease_token``), then writes the batch and the new checkpoint together.
So a worker that lost its job (it was too slow, another took over) can never
commit, and after a crash the next worker starts exactly where the database
says the last commit ended: no row twice, none lost.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from django.conf import settings
from django.db import (
    DatabaseError,
    OperationalError,
    close_old_connections,
    transaction,
)
from django.db.models import Case, F, PositiveIntegerField, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from jobs import parts, retry
from jobs.kinds import Batch, Interrupted, JobFailed, JobKind, RunContext, get_kind
from jobs.models import Job, State
from jobs.rowlock import update_job
from jobs.services import enqueue_after_commit, enqueue_now
from jobs.signals import worker_is_shutting_down

log = logging.getLogger(__name__)

MAX_SAMPLES = 240
T = TypeVar("T")


class LostLease(Exception):
    """Another worker owns the job now; this one must write nothing more."""


def _lease_until() -> Any:
    return timezone.now() + timedelta(seconds=settings.COLLECT_JOB_LEASE_SECONDS)


def claim(job_id: Any, *, token: uuid.UUID, worker: str) -> Job | None:
    """Take the job if nobody holds it; None if it is not ours to run.

    ``attempts`` counts the runs that started afresh or took over from a lost
    worker: a first start, or a job that still carries the lease token of a
    worker that never gave it back (killed, out of memory, its host gone).
    A resume after a pause, or a job a shutting-down worker handed back, ends
    its lease with the token cleared and is not counted.
    """
    now = timezone.now()
    claimable = (
        Q(state=State.QUEUED)
        | Q(state__in=[State.RUNNING, State.STOPPING], lease_expires_at__lt=now)
        | Q(state=State.STOPPING, lease_expires_at=None)
    )
    taken = update_job(
        job_id,
        claimable,
        # First: MySQL/MariaDB assign left to right and let later assignments
        # see earlier ones, so this must read the old lease_token and started_at.
        attempts=Case(
            When(Q(started_at=None) | Q(lease_token__isnull=False), then=F("attempts") + 1),
            default=F("attempts"),
            output_field=PositiveIntegerField(),
        ),
        state=Case(When(state=State.QUEUED, then=Value(State.RUNNING)), default=F("state")),
        lease_token=token,
        lease_expires_at=_lease_until(),
        worker=worker[:255],
        started_at=Coalesce(F("started_at"), Value(now)),
        updated_at=now,
    )
    if not taken:
        return None
    return Job.objects.get(id=job_id)


class Runner:
    def __init__(self, job: Job, kind: JobKind, token: uuid.UUID) -> None:
        self.job = job
        self.kind = kind
        self.token = token
        self.ctx = RunContext(job=job, heartbeat_fn=self.heartbeat)
        self._last_beat = 0.0

    # --- fencing --------------------------------------------------------

    def _ours(self) -> Any:
        return Job.objects.filter(id=self.job.id, lease_token=self.token)

    def _lock(self) -> Job:
        """Lock our job row inside the current transaction; LostLease if not ours."""
        row = (
            Job.objects.select_for_update()
            .only("state", "lease_token", "processed", "run_seconds", "samples")
            .get(id=self.job.id)
        )
        if row.lease_token != self.token:
            raise LostLease(str(self.job.id))
        return row

    def heartbeat(self) -> None:
        """Renew the lease at most once a second during long steps; honour pause and stop."""
        now = time.monotonic()
        if now - self._last_beat < 1.0:
            return
        self._last_beat = now
        if not self._ours().update(lease_expires_at=_lease_until(), **self._checking(now)):
            raise LostLease(str(self.job.id))
        state = Job.objects.values_list("state", flat=True).get(id=self.job.id)
        if state in {State.PAUSING, State.STOPPING}:
            raise Interrupted(state)

    def _checking(self, now: float) -> dict[str, Any]:
        """The ``checking`` column from what ``prepare`` reported (``RunContext.checked``)."""
        checked = self.ctx.state.get("checked")
        if checked is None:
            return {}
        done, total, unit = checked
        since = self.ctx.state.setdefault("checked_since", (now, done))
        seconds = now - since[0]
        rate = (done - since[1]) / seconds if seconds > 0 else 0.0
        return {
            "checking": {
                "done": done,
                "total": total,
                "unit": unit,
                "rate": round(rate, 1),
                "seconds": round(seconds, 1),
            }
        }

    def _finish_state(self, state: str, **changes: Any) -> None:
        """Mark the job ``state`` and end the lease; ``LostLease`` if it is no longer ours."""
        now = timezone.now()
        terminal = state in {State.STOPPED, State.SUCCEEDED, State.FAILED}
        updated = self._ours().update(
            state=state,
            lease_token=None,
            lease_expires_at=None,
            finished_at=now if terminal else None,
            updated_at=now,
            **changes,
        )
        if not updated:
            raise LostLease(str(self.job.id))

    # --- the run --------------------------------------------------------

    def run(self) -> None:
        job = self.job
        if job.state == State.STOPPING:
            return self.undo()
        if job.has_parts:
            # Its parts run it (a duplicate message, or a resume that raced a claim).
            return self._release()
        lost = job.attempts - 1
        if settings.COLLECT_JOB_MAX_ATTEMPTS and lost >= settings.COLLECT_JOB_MAX_ATTEMPTS:
            log.warning("job %s: its worker was lost %d times; failing it", job.id, lost)
            return self.undo(final_state=State.FAILED, error=worker_lost_message(lost))
        try:
            checkpoint = job.checkpoint
            if checkpoint is None:
                total = self.kind.prepare(self.ctx)
                pieces = self._split()
                checkpoint = self.kind.initial_checkpoint(self.ctx)
                with transaction.atomic():
                    row = self._lock()
                    if row.state == State.STOPPING:
                        return self.undo()
                    if pieces:
                        return self._start_parts(row, total, pieces)
                    self._ours().update(total=total, checkpoint=checkpoint)
                    job.total = total
            else:
                self.kind.resume(self.ctx, checkpoint)
            self.batches(checkpoint)
        except Interrupted as stop_or_pause:
            if stop_or_pause.state == State.STOPPING:
                self.undo()
            else:
                self._finish_state(State.PAUSED)
                log.info("job %s paused before writing anything", job.id)
        except JobFailed as failure:
            log.info("job %s failed: %s", job.id, failure.message)
            self.undo(
                final_state=State.FAILED,
                error=failure.message,
                problems=failure.problems[:100],
                problem_count=failure.problem_count or len(failure.problems),
                error_report_file=failure.error_report_file,
            )

    # --- a job made of parts (jobs/parts.py) ----------------------------

    def _split(self) -> list[parts.Part] | None:
        """The parts this job runs as, when its ``parallelism`` asks for more than one."""
        wanted = min(int(self.job.param("parallelism") or 1), parts.MAX_PARTS)
        if wanted < 2 or self.job.parent_id is not None:
            return None
        pieces = self.kind.split(self.ctx, wanted)
        return pieces if pieces and len(pieces) > 1 else None

    def _start_parts(self, row: Job, total: int | None, pieces: list[parts.Part]) -> None:
        """Create the parts and end this job's lease, in the caller's transaction.

        The parts are sent once that transaction is committed. A pause asked
        during the check makes them paused from the start.
        """
        job, now = self.job, timezone.now()
        paused = row.state == State.PAUSING
        created = Job.objects.bulk_create(
            Job(
                kind=job.kind,
                owner_id=job.owner_id,
                params=job.params,
                label=f"{job.label} (part {i + 1} of {len(pieces)})"[:255],
                parent_id=job.id,
                part=i,
                state=State.PAUSED if paused else State.QUEUED,
                total=piece.total,
                checkpoint=piece.checkpoint,
                enqueued_at=now,
            )
            for i, piece in enumerate(pieces)
        )
        self._finish_state(
            State.PAUSED if paused else State.RUNNING,
            total=total,
            checkpoint={"parts": len(created)},
        )
        if not paused:
            for part in created:
                enqueue_after_commit(part.id)
        log.info("job %s split into %d parts (%s)", job.id, len(created), row.state)

    def _release(self) -> None:
        """End this worker's lease on a job whose parts run it; it waits on them."""
        now = timezone.now()
        self._ours().update(lease_token=None, lease_expires_at=None, enqueued_at=now)
        parts.settle(self.job.id)

    def batches(self, checkpoint: dict[str, Any]) -> None:
        job = self.job
        while True:
            started = time.monotonic()
            batch: Batch | None = self.kind.next_batch(self.ctx, checkpoint)
            outcome, row = self._with_retries(partial(self._commit, batch, started))
            if outcome == "paused":
                log.info("job %s paused at %s", job.id, checkpoint)
                return
            if outcome == "handed back":
                # Sent now that the hand-back is committed (no outer transaction here).
                enqueue_now(job.id)
                log.info(
                    "job %s handed back at %s: this worker is shutting down", job.id, checkpoint
                )
                return
            if outcome == "end":
                break
            assert batch is not None
            checkpoint = batch.checkpoint
        if row.state == State.STOPPING:
            return self.undo()
        result = self.kind.finish(self.ctx)
        self._finish_state(State.SUCCEEDED, result=result or {})
        log.info("job %s succeeded: %s", job.id, result)

    def _commit(self, batch: Batch | None, started: float) -> tuple[str, Job]:
        """Write one batch and its checkpoint in one transaction; say what happened next.

        Returns ("written" | "paused" | "handed back" | "end", the locked job row).
        The batch may be written again after a lost race: every kind's
        ``write_batch`` writes exactly the batch, whatever an uncommitted run did.
        """
        with transaction.atomic():
            row = self._lock()
            if row.state == State.PAUSING:
                self._finish_state(State.PAUSED)
                return "paused", row
            if row.state == State.STOPPING or batch is None:
                return "end", row
            if worker_is_shutting_down():
                # A warm shutdown (SIGTERM) would otherwise wait for the whole
                # job. Hand it back instead: still running, checkpoint as last
                # committed, lease ended now, so another worker claims it at
                # once. This batch was read but is not written; it is read again.
                now = timezone.now()
                if self._ours().update(
                    lease_token=None, lease_expires_at=now, enqueued_at=now, updated_at=now
                ):
                    return "handed back", row
                return "end", row
            self.kind.write_batch(self.ctx, batch)
            elapsed = time.monotonic() - started
            processed = row.processed + batch.count
            run_seconds = row.run_seconds + elapsed
            samples = list(row.samples or [])
            if not samples or run_seconds - samples[-1][0] >= 1.0:
                samples.append([round(run_seconds, 2), processed])
                if len(samples) > MAX_SAMPLES:
                    samples = samples[::2]
            self._ours().update(
                checkpoint=batch.checkpoint,
                processed=processed,
                run_seconds=run_seconds,
                rate=processed / run_seconds if run_seconds > 0 else 0.0,
                samples=samples,
                lease_expires_at=_lease_until(),
                updated_at=timezone.now(),
            )
            return "written", row

    def _with_retries(self, step: Callable[[], T]) -> T:
        """Run one transaction; run it again at once if it lost a race (see jobs/retry.py)."""
        pause = retry.FIRST_PAUSE_SECONDS
        for attempt in range(1, retry.ATTEMPTS + 1):
            try:
                return step()
            except OperationalError as exc:
                if attempt == retry.ATTEMPTS or not retry.lost_a_race(exc):
                    raise
                log.warning(
                    "job %s: batch lost a race in the database (%s); running it again (%d/%d)",
                    self.job.id, exc, attempt, retry.ATTEMPTS - 1,
                )  # fmt: skip
                time.sleep(pause)
                pause *= 2
        raise AssertionError("unreachable")

    def undo(self, final_state: str = State.STOPPED, **changes: Any) -> None:
        """Delete what the job wrote, chunk by chunk, then mark it stopped (or failed).

        A job made of parts waits (holding no worker) until every part has
        ended, then deletes what each part wrote; it ends failed if a part failed.
        """
        job = self.job
        contexts = [self.ctx]
        if job.has_parts:
            if parts.not_done(job):
                return self._release()
            done = parts.parts_of(job)
            contexts += [RunContext(job=part, heartbeat_fn=self.heartbeat) for part in done]
            failed = next((p for p in done if p.state == State.FAILED), None)
            if failed is not None and final_state == State.STOPPED:
                final_state, changes = State.FAILED, {"error": failed.error, **changes}
        removed = 0
        for ctx in contexts:
            while True:
                n = self._with_retries(partial(self._undo_chunk, ctx))
                if not n:
                    break
                removed += n
        if len(contexts) > 1:
            # Parts that succeeded before the stop: what they wrote is gone now.
            Job.objects.filter(parent_id=job.id, state=State.SUCCEEDED).update(
                state=State.STOPPED, updated_at=timezone.now()
            )
            # What the job had written is what its parts had: the job's page, the API
            # and the CLI say how many rows were removed (``formatting.undone_summary``).
            changes = {**parts.written(done), **changes}
        if job.parent_id is None:  # a part's files are its whole job's
            self.kind.discard(job)
        self._finish_state(final_state, **changes)
        log.info("job %s %s; %d rows removed", job.id, final_state, removed)

    def _undo_chunk(self, ctx: RunContext) -> int:
        with transaction.atomic():
            self._lock()
            n = self.kind.undo_chunk(ctx)
            self._ours().update(lease_expires_at=_lease_until())
        return n


def _database_went_away(job_id: Any, token: uuid.UUID) -> None:
    """Log a run cut short by a lost database connection; the job itself is left as it is.

    Nothing half-written was committed (each batch is one transaction). The lease
    runs out and a sweeping worker hands the job on, unless another worker already
    took it over: a worker frozen inside a batch for longer than the database's
    idle timeout (``COLLECT_DB_IDLE_IN_TRANSACTION_SECONDS``) finds its session
    ended by the server and its job running elsewhere.
    """
    close_old_connections()
    if _taken_over(job_id, token):
        log.warning("job %s: another worker took it over; this one stops", job_id)
    else:
        log.exception("job %s: database error; the job will be retried", job_id)


def _taken_over(job_id: Any, token: uuid.UUID) -> bool:
    """True when the job's lease is no longer ``token``; False also when the database is down."""
    try:
        return not Job.objects.filter(id=job_id, lease_token=token).exists()
    except DatabaseError:
        close_old_connections()
        return False


def worker_lost_message(lost: int) -> str:
    """What the user reads when a job ran out of attempts (``COLLECT_JOB_MAX_ATTEMPTS``)."""
    return (
        f"This job was stopped after its worker was lost {lost} times; nothing it wrote was "
        "kept. A worker is lost when it is killed or runs out of memory or time while it "
        "runs the job. Try again with a smaller file or a shorter date range, or ask the "
        "person who runs Collect to look at the workers' logs."
    )


def run(job_id: Any, *, worker: str) -> None:
    """Run (or continue, or undo) the job if it is ours to run."""
    token = uuid.uuid4()
    job = claim(job_id, token=token, worker=worker)
    if job is None:
        log.info("job %s: not claimable (taken, paused, finished or gone); skipping", job_id)
        return
    log.info("job %s claimed by %s (%s, attempt %d)", job.id, worker, job.state, job.attempts)
    runner = Runner(job, get_kind(job.kind), token)
    try:
        runner.run()
    except LostLease:
        log.warning("job %s: another worker took it over; this one stops", job.id)
    except Exception as exc:
        if retry.connection_lost(exc):
            _database_went_away(job.id, token)
            return
        log.exception("job %s: unexpected error", job.id)
        try:
            runner.undo(final_state=State.FAILED, error=f"Unexpected error: {exc}")
        except Exception:
            log.exception("job %s: could not undo after the error", job.id)
    if job.parent_id is not None:
        # A part: its whole job follows it (succeeded, paused, failed, undone). If this
        # fails, the sweep settles it later (jobs.services.job_sweep).
        try:
            parts.settle(job.parent_id)
        except DatabaseError:
            log.exception("job %s: could not update the job it is a part of", job.id)
            close_old_connections()
