"""Numbers and durations as people read them; shared by the pages and the CLI."""

from __future__ import annotations

from typing import Any


def thousands(value: Any) -> str:
    """``1234567`` → ``1,234,567`` (rounded to a whole number, whatever the locale)."""
    if value is None or value == "":
        return ""
    try:
        return f"{round(float(value)):,}"
    except (TypeError, ValueError):
        return str(value)


def duration(seconds: Any) -> str:
    """Seconds as people say them: ``45 s``, ``2 min 5 s``, ``1 h 3 min``, ``2 d 4 h``.

    The two largest units are precise enough for a progress display.
    """
    if seconds is None or seconds == "":
        return ""
    exact = float(seconds)
    total = round(exact)
    if total < 1:
        return "less than 1 s" if exact > 0 else "0 s"
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    shown = [
        (n, unit) for n, unit in ((days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")) if n
    ]
    return " ".join(f"{n} {unit}" for n, unit in shown[:2])


def plural(count: Any, one: str, many: str = "") -> str:
    """``1 team``, ``2 teams``, ``1,200 rows``: the count and the word that goes with it."""
    return f"{thousands(count)} {one if count == 1 else (many or one + 's')}"


def undone_summary(job: Any) -> str:
    """What is left of a stopped or failed job: nothing, since its writes were undone.

    The job's kind may say what its undo did (``JobKind.undone``); else the
    rows it wrote are counted as removed.
    """
    from jobs.kinds import get_kind

    verb = "Stopped" if job.state == "stopped" else "Failed"
    try:
        said = get_kind(job.kind).undone(job)
    except LookupError:
        said = ""
    if said:
        return f"{verb}: {said}; nothing was kept."
    if not job.processed:
        return f"{verb} before anything was written; nothing was kept."
    were = "was" if job.processed == 1 else "were"
    return f"{verb}: {plural(job.processed, 'row')} {were} written and removed; nothing was kept."
