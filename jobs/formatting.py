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
