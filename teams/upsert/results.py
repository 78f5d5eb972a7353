"""The counts an import reports, and the ``result`` of an upsert or a dry run."""

from __future__ import annotations

from typing import Any

from jobs.models import Job
from teams.upsert.base import COUNTS, SHOWN_CHANGES
from teams.upsert.undo import forget_changes


def counts(*, created: int = 0, updated: int = 0, unchanged: int = 0) -> dict[str, int]:
    """The counts every import's ``result`` carries (``skipped`` is added by the caller)."""
    return {"created": created, "updated": updated, "unchanged": unchanged}


def count_creates(
    *, rows: list[int], teams: list[tuple[str, ...]], base: dict[str, Any]
) -> dict[str, Any]:
    """A dry run of a create import: every row would be a new team; nothing is written."""
    shown = list(base.get("changes") or [])
    for row, values in zip(rows, teams, strict=True):
        if len(shown) >= SHOWN_CHANGES:
            break
        shown.append({"row": row, "key": values[0], "action": "create"})
    return {**counts(created=int(base.get("created", 0)) + len(teams)), "changes": shown}


def result(*, job: Job, checkpoint: dict[str, Any], skipped: int) -> dict[str, Any]:
    """The ``result`` of an upsert or a dry run, from the last committed checkpoint.

    ``imported`` (teams written: created + updated) is kept for the clients of
    the create-only import. A dry run adds ``dry_run`` and ``changes``.
    """
    done = counts(**{k: int(checkpoint.get(k, 0)) for k in COUNTS})
    dry_run = bool(job.param("dry_run"))
    out: dict[str, Any] = {
        "imported": 0 if dry_run else done["created"] + done["updated"],
        **done,
        "skipped": skipped,
    }
    if dry_run:
        out["dry_run"] = True
        out["changes"] = list(checkpoint.get("changes") or [])
    else:
        forget_changes(job=job)
    return out
