"""Undoing an upsert: updated teams back to their previous values, unless changed since."""

from __future__ import annotations

from typing import Any

from jobs.models import Job
from teams.csvformat import COLUMNS
from teams.models import Team, TeamChange
from teams.upsert.write import update_teams

SHOWN_LEFT = 100


def undo_chunk(*, job: Job, limit: int) -> int:
    """Put back up to ``limit`` updated teams (newest first); 0 when none is left.

    A team whose values are no longer the ones this job wrote (someone edited
    or deleted it since) is left as it is and reported in the job's
    ``result["undo"]``: ``restored``, ``left`` and the first ``left_rows``
    (team id, key values, what is there now). Runs in the engine's undo
    transaction; the created teams are deleted afterwards by the caller.
    """
    records = list(
        TeamChange.objects.filter(job_id=job.id)
        .order_by("-id")
        .values_list(
            "id",
            "team_id",
            *(f"old_{c}" for c in COLUMNS),
            *(f"new_{c}" for c in COLUMNS),
        )[:limit]
    )
    if not records:
        return 0
    current = {
        row[0]: row
        for row in Team.objects.select_for_update()
        .filter(id__in=[r[1] for r in records])
        .values_list("id", *COLUMNS, "job_id")
    }
    restore: list[tuple[Any, ...]] = []
    now_values: list[tuple[Any, ...]] = []  # what the restored teams hold now (the job's values)
    left: list[dict[str, Any]] = []
    for record in records:
        team = current.get(record[1])
        if team is not None and tuple(team[1:5]) == tuple(record[6:10]):
            restore.append((record[1], *record[2:6], team[5]))
            now_values.append(tuple(team[1:5]))
        else:
            now = "deleted" if team is None else "changed"
            left.append({"team": record[1], "name": record[6], "now": now})
    update_teams(restore, now_values)
    TeamChange.objects.filter(id__in=[r[0] for r in records]).delete()
    _report(job, restored=len(restore), left=left)
    return len(records)


def _report(job: Job, *, restored: int = 0, left: list[dict[str, Any]] | None = None,
            deleted: int = 0) -> None:  # fmt: skip
    """Add to the undo's account on the job (in the undo chunk's transaction)."""
    result = dict(Job.objects.values_list("result", flat=True).get(id=job.id) or {})
    undo = dict(result.get("undo") or {"restored": 0, "deleted": 0, "left": 0, "left_rows": []})
    left = left or []
    undo["restored"] += restored
    undo["deleted"] += deleted
    undo["left"] += len(left)
    undo["left_rows"] = (undo["left_rows"] + left)[:SHOWN_LEFT]
    result["undo"] = undo
    Job.objects.filter(id=job.id).update(result=result)


def count_deleted(*, job: Job, deleted: int) -> None:
    """Record created teams the undo deleted (upsert jobs only; 0 still opens the account)."""
    _report(job, deleted=deleted)


def forget_changes(*, job: Job) -> None:
    """A finished upsert keeps no previous values: nothing can undo it any more."""
    TeamChange.objects.filter(job_id=job.id).delete()
