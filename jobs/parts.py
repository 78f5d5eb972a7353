"""A job made of parts: one job that several workers run at once.

After its check (``JobKind.prepare``) a job whose ``parallelism`` parameter is
above 1 asks its kind to cut the work into ranges (``JobKind.split``). The
engine then creates one child job row per range (``Job.parent``, ``Job.part``)
and sends them to the workers in the same transaction that marks the parent
as split (``checkpoint = {"parts": N}``) and ends the parent's lease: the
parent holds no worker while its parts run. Each part is an ordinary job for
the engine (claim, lease, checkpoint with every batch, takeover after a crash,
sweep), so a worker killed in one part re-runs only that part from its own
checkpoint. A part writes its rows under its own job id.

The parent follows its parts (``settle``, called after every change of a
part's state to one where no worker runs it, and by the sweep):

- every part succeeded: the parent succeeds, its result the sum of theirs;
- a part failed (or was stopped): the parent is stopping and so are the
  other parts; it ends failed with that part's error (or stopped);
- the parent is pausing and no part still runs: the parent is paused.

Pause, resume and stop on the parent act on every part (``jobs.services``).
A stopping parent is undone by a worker once *every* part has ended (none can
write again: a part that ended has no lease, and a part that lost its lease
cannot commit, see ``jobs.engine``): the undo walks the parts and removes what
each wrote, those that succeeded before the stop included.

Progress is read from the parts (``add_up``): the sum of what they processed;
the rate is the sum of the rates of the parts that run now (they run at once).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Max, Sum
from django.utils import timezone

from jobs.models import TERMINAL, Job, State

log = logging.getLogger(__name__)

# At most this many parts per job: more rows than workers only adds overhead.
MAX_PARTS = 64


@dataclass
class Part:
    """One range of a job's work (``JobKind.split``): where it starts and how much it holds.

    ``checkpoint`` is the part's first checkpoint (its kind's ``next_batch``
    reads from it and knows where to end); ``total`` its units (rows).
    """

    checkpoint: dict[str, Any]
    total: int


def parts_of(job: Job) -> list[Job]:
    """The parts of ``job`` in order; [] for a job that was not split."""
    return list(Job.objects.filter(parent_id=job.id).order_by("part"))


def written(parts: list[Job]) -> dict[str, Any]:
    """What ``parts`` had done when they ended: rows processed (summed), working time (longest).

    Written on their job when it ends stopped or failed (``Runner.undo``), as
    ``settle`` writes it when the job succeeds.
    """
    return {
        "processed": sum(p.processed for p in parts),
        "run_seconds": max((p.run_seconds for p in parts), default=0.0),
    }


def add_up(job: Job) -> Job:
    """Put the parts' progress on ``job`` (in memory only) and return it.

    ``processed`` is the sum over the parts; ``rate`` (units/s) the sum of the
    rates of the parts that a worker runs now, else of all (none while the job
    runs: its parts wait for a worker); ``run_seconds`` the longest part's. A
    finished job keeps what ``settle`` (succeeded) or its undo (stopped,
    failed) wrote; one stopped before the undo wrote it shows what its parts
    had processed.
    """
    if not job.has_parts or job.state == State.SUCCEEDED:
        return job
    parts = Job.objects.filter(parent_id=job.id)
    if job.state in TERMINAL:
        if not job.processed:
            totals = parts.aggregate(processed=Sum("processed"), seconds=Max("run_seconds"))
            job.processed = int(totals["processed"] or 0)
            job.run_seconds = job.run_seconds or float(totals["seconds"] or 0.0)
        return job
    rows = list(parts.only(*_PROGRESS))
    job.processed = sum(p.processed for p in rows)
    job.run_seconds = max((p.run_seconds for p in rows), default=0.0)
    # Only a part a worker runs now has a speed (``Job.unattended``): one handed
    # back or silent adds nothing, and when no running part has a worker the job
    # shows no speed and no time left.
    running = [p for p in rows if p.state in {State.RUNNING, State.PAUSING}]
    attended = [p for p in running if not p.unattended]
    job.parts_unattended = job.state in {State.RUNNING, State.PAUSING} and bool(
        running and not attended
    )
    if attended:
        now = sum(p.rate for p in attended if p.state == State.RUNNING)
        job.rate = float(now or sum(p.rate for p in rows))
    elif job.state == State.RUNNING:
        job.rate = 0.0  # parts waiting for a worker: no speed now
    else:
        job.rate = float(sum(p.rate for p in rows))
    return job


# What ``add_up`` reads of each part.
_PROGRESS = (
    "state", "processed", "run_seconds", "rate", "checkpoint", "worker",
    "lease_token", "lease_expires_at", "updated_at",
)  # fmt: skip


def summary(job: Job) -> list[dict[str, Any]]:
    """The parts as the API lists them: task id, number (from 1), state, processed, total."""
    return [
        {
            "task_id": str(part.id),
            "part": (part.part or 0) + 1,
            "state": part.state,
            "processed": part.processed,
            "total": part.total,
        }
        for part in parts_of(job)
    ]


def add_results(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The parent's result: numbers added up key by key, other values from the first part."""
    out: dict[str, Any] = {}
    for result in results:
        for key, value in (result or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[key] = out.get(key, 0) + value
            else:
                out.setdefault(key, value)
    return out


def settle(parent_id: Any) -> None:
    """Move the parent where its parts are (see the module docstring); safe to call any time.

    Runs in its own transaction with the parent's row locked; the parts are
    only read (never locked here: a part's worker locks its own row, then
    perhaps nothing else, so no lock order is ever reversed). Each part calls
    this after its own change is committed, so the last call sees them all.
    """
    from jobs.services import enqueue_now, stop_parts

    stop = undo = False
    with transaction.atomic():
        parent = Job.objects.select_for_update().filter(id=parent_id).first()
        if parent is None or not parent.has_parts or parent.state in TERMINAL:
            return
        parts = list(
            Job.objects.filter(parent_id=parent_id).values(
                "state", "error", "result", "processed", "run_seconds"
            )
        )
        states = {p["state"] for p in parts}
        ended = [p for p in parts if p["state"] in {State.FAILED, State.STOPPED}]
        now = timezone.now()
        changes: dict[str, Any] = {}
        if parent.state != State.STOPPING and ended:
            failed = [p for p in ended if p["state"] == State.FAILED]
            changes = {"state": State.STOPPING}
            if failed:
                changes["error"] = failed[0]["error"]
            parent.state = State.STOPPING
            stop = True
        elif parent.state != State.STOPPING and states == {State.SUCCEEDED}:
            processed = sum(p["processed"] for p in parts)
            seconds = max(p["run_seconds"] for p in parts)
            changes = {
                "state": State.SUCCEEDED,
                "result": add_results([p["result"] for p in parts]),
                "processed": processed,
                "run_seconds": seconds,
                "rate": processed / seconds if seconds > 0 else 0.0,
                "finished_at": now,
            }
        elif parent.state == State.PAUSING and states <= {State.PAUSED, State.SUCCEEDED}:
            changes = {"state": State.PAUSED}
        elif parent.state == State.STOPPING and states - TERMINAL - {State.STOPPING}:
            stop = True  # again: a stop that did not reach every part (its request died)
        if parent.state == State.STOPPING and states <= TERMINAL:
            # Every part has ended: a worker undoes them all (``Runner.undo``).
            changes.update(lease_token=None, lease_expires_at=None, enqueued_at=now)
            undo = True
        if changes:
            Job.objects.filter(id=parent_id).update(updated_at=now, **changes)
            log.info("job %s follows its parts %s: %s", parent_id, sorted(states), changes)
    if stop:
        stop_parts(parent)
    if undo:
        enqueue_now(parent_id)


def not_done(parent: Job) -> bool:
    """Whether some part of ``parent`` has not ended yet (succeeded, failed or stopped)."""
    return Job.objects.filter(parent_id=parent.id).exclude(state__in=TERMINAL).exists()


def parents_to_settle() -> list[Any]:
    """Split jobs that still wait on their parts: the sweep settles them again (lost messages)."""
    return list(
        Job.objects.filter(
            state__in=[State.RUNNING, State.PAUSING, State.STOPPING],
            lease_expires_at=None,
            id__in=Job.objects.filter(parent__isnull=False).values("parent_id"),
        ).values_list("id", flat=True)[:500]
    )
