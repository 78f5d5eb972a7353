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


def size(value: Any) -> str:
    """Bytes in binary units, named as such: ``1 byte``, ``512 bytes``, ``1 MiB``, ``9.5 GiB``.

    One decimal at most (``1.5 MiB``; ``1 MiB``, not ``1.0 MB``): a KiB is 1,024 bytes.
    """
    n = float(value or 0)
    if abs(n) < 1024:
        return plural(round(n), "byte")
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        n /= 1024
        if abs(round(n, 1)) < 1024 or unit == "PiB":
            break
    return f"{round(n, 1):,.1f}".removesuffix(".0") + f" {unit}"


def exact_size(value: int) -> str:
    """A size and its exact bytes, for limits: ``1 MiB (1,048,576 bytes)``; ``1,000 bytes``."""
    said = size(value)
    return said if said.endswith(("byte", "bytes")) else f"{said} ({int(value):,} bytes)"


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


# A job's state said of the job, to end a sentence: "This job has succeeded."
STATE_PHRASES = {
    "queued": "is queued",
    "running": "is running",
    "pausing": "is pausing",
    "paused": "is paused",
    "stopping": "is being stopped",
    "stopped": "has been stopped",
    "succeeded": "has succeeded",
    "failed": "has failed",
}
# What pause, resume and stop make of a job: "it cannot be paused now".
DONE_TO = {"pause": "paused", "resume": "resumed", "stop": "stopped"}


def done_to(action: str) -> str:
    """``paused``, ``resumed``, ``stopped``: what ``action`` makes of a job."""
    return DONE_TO.get(action, f"{action}ed")


def state_phrase(state: Any) -> str:
    """``has succeeded``, ``is running``, ``has been stopped``: the state after "This job"."""
    return STATE_PHRASES.get(str(state), f"is {state}")


def unattended_note(job: Any, *, short: bool = False) -> str:
    """Why a running job shows no speed nor time left (``Job.unattended``), in a few words; else "".

    ``no news from its worker for 20 s``, ``waiting for a worker (its last one was shut
    down)``, ``no worker runs its parts now``; ``short`` for a table column of the CLI
    (``no news for 20 s``, ``no worker now``). The job page says more
    (``jobs_ui.worker_silence``).
    """
    if not job.unattended:
        return ""
    if job.has_parts:
        return "no worker now" if short else "no worker runs its parts now"
    if job.handed_back:
        return "no worker now" if short else "waiting for a worker (its last one was shut down)"
    silent = duration(job.silent_seconds)
    return f"no news for {silent}" if short else f"no news from its worker for {silent}"
