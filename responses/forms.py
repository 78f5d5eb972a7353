"""What the export form and the API accept: an e-mail and an inclusive date range."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

DATE_FORMATS = (
    "a date (YYYY-MM-DD), a date and time (YYYY-MM-DD HH:MM) "
    "or an ISO 8601 date-time (2020-05-15T00:00:00+02:00)"
)
EMAIL_REQUIRED = "Enter the e-mail address the export should be sent to."
EMAIL_INVALID = "Enter a valid e-mail address, such as name@example.com."


class BadDate(ValueError):
    pass


def parse_bound(raw: str, *, end: bool) -> dt.datetime | None:
    """Parse one end of the range; a date alone is its first (``end``: last) instant.

    A date-time without an offset is in the server's TIME_ZONE.
    """
    text = raw.strip()
    if not text:
        return None
    try:
        # The date first: Python reads "2020-05-15" as a date-time at midnight too.
        day = parse_date(text)
        moment = None if day else parse_datetime(text)
    except ValueError:  # well formed but impossible, e.g. 2021-02-30
        raise BadDate(text) from None
    if day is not None:
        moment = dt.datetime.combine(day, dt.time.max if end else dt.time.min)
    if moment is None:
        raise BadDate(text)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def show(moment: dt.datetime | None) -> str:
    return "" if moment is None else timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


class ExportForm(forms.Form):
    """Fields ``email``, ``from`` and ``to`` (``from`` is a Python keyword, hence ``__init__``)."""

    email = forms.EmailField(
        max_length=254,
        error_messages={"required": EMAIL_REQUIRED, "invalid": EMAIL_INVALID},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("from", "to"):
            self.fields[name] = forms.CharField(
                required=False,
                max_length=40,
                strip=True,
                help_text="Inclusive; empty means no limit. YYYY-MM-DD or YYYY-MM-DD HH:MM.",
                widget=forms.TextInput(attrs={"placeholder": "YYYY-MM-DD HH:MM"}),
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        bounds: dict[str, dt.datetime | None] = {}
        for name in ("from", "to"):
            raw = data.get(name) or ""
            try:
                bounds[name] = parse_bound(raw, end=name == "to")
            except BadDate:
                self.add_error(name, f"'{name}' must be {DATE_FORMATS}; got {raw!r}.")
        start, stop = bounds.get("from"), bounds.get("to")
        if start and stop and start > stop:
            self.add_error(
                "to",
                f"'to' ({show(stop)}) is before 'from' ({show(start)}); "
                "swap them or widen the range.",
            )
        data["date_from"], data["date_to"] = start, stop
        return data

    def error_dict(self) -> dict[str, list[str]]:
        return {field: [str(m) for m in messages] for field, messages in self.errors.items()}
