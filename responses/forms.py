"""What the export form and the API accept: an e-mail and an inclusive date range."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from responses.writers import CHOICES, DEFAULT

DATE_FORMATS = (
    "a date (YYYY-MM-DD), a date and time (YYYY-MM-DD HH:MM) "
    "or an ISO 8601 date-time (2020-05-15T00:00:00+02:00)"
)
EMAIL_REQUIRED = "Enter the e-mail address the export should be sent to."
EMAIL_INVALID = "Enter a valid e-mail address, such as name@example.com."


FORMAT_INVALID = "Choose a format: csv, csv_raw, xlsx or geojson."

# The time of day as written, to know its precision: minutes, seconds or a fraction.
_TIME = re.compile(r"[T ]\d{1,2}:\d{1,2}(:\d{1,2}(?:[.,](\d+))?)?")


class BadDate(ValueError):
    pass


def _last_instant(text: str, moment: dt.datetime) -> dt.datetime:
    """The last microsecond of what ``text`` names: its minute, second or fraction."""
    written = _TIME.search(text)
    if written is None:
        return moment
    seconds, digits = written.groups()
    if seconds is None:
        return moment.replace(second=59, microsecond=999_999)
    if digits is None:
        return moment.replace(microsecond=999_999)
    if len(digits) < 6:
        return moment + dt.timedelta(microseconds=10 ** (6 - len(digits)) - 1)
    return moment


def parse_bound(raw: str, *, end: bool) -> dt.datetime | None:
    """Parse one end of the range, inclusive at the precision it is written in.

    ``from`` is the first instant of what it names, ``to`` (``end``) the last:
    a date covers its whole day, ``HH:MM`` its whole minute, ``HH:MM:SS`` its
    whole second, a fraction its last digit. A date-time without an offset is
    in the server's TIME_ZONE.
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
    if end:
        moment = _last_instant(text, moment)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def show(moment: dt.datetime | None) -> str:
    return "" if moment is None else timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def exact(moment: dt.datetime | None) -> str:
    """The instant to the microsecond with its zone: ``2020-05-15 23:59:59.999999 +00:00 (UTC)``."""
    if moment is None:
        return ""
    local = timezone.localtime(moment)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S.%f} {offset[:3]}:{offset[3:]} ({local.tzname()})"


class RangeForm(forms.Form):
    """The inclusive date range ``from``/``to`` that the export and ``/responses/`` filter by.

    ``cleaned_data`` gains ``date_from`` and ``date_to`` (aware date-times or
    None for no limit). ``from`` is a Python keyword, so the fields are added
    in ``__init__``.
    """

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


class ExportForm(RangeForm):
    """Fields ``email``, ``from``, ``to`` and ``format``."""

    email = forms.EmailField(
        max_length=254,
        error_messages={"required": EMAIL_REQUIRED, "invalid": EMAIL_INVALID},
    )
    format = forms.ChoiceField(
        choices=CHOICES,
        required=False,
        initial=DEFAULT,
        error_messages={"invalid_choice": FORMAT_INVALID},
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["format"] = data.get("format") or DEFAULT
        return data
