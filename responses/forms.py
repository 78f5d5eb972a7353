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


class DateOutOfRange(BadDate):
    """A well-formed date-time that cannot be used: it leaves years 1 to 9999 once it
    is moved to UTC (how the database stores it) or to ``TIME_ZONE`` (how it is shown),
    e.g. ``9999-12-31T23:59:59-12:00``. ``late`` says which end it falls off."""

    def __init__(self, text: str, *, late: bool) -> None:
        super().__init__(text)
        self.late = late


def out_of_range_message(name: str, raw: str, *, late: bool) -> str:
    """What the form says about a date-time that ``DateOutOfRange`` refused."""
    if late:
        what, advice = "too late", "Use a date up to 9999-12-30"
    else:
        what, advice = "too early", "Use a date from 0001-01-02 on"
    return (
        f"'{name}' is {what}: Collect handles dates from 0001-01-01 to 9999-12-31 (in UTC "
        f"and in this server's time zone); got {raw!r}. {advice}, or leave '{name}' empty "
        "for no limit."
    )


def representable(moment: dt.datetime) -> bool:
    """Whether an aware ``moment`` can be stored and shown: moved to UTC (what the
    database adapters do) and to ``TIME_ZONE`` (what the pages, the file name and the
    mail do), it stays within years 1 to 9999."""
    try:
        moment.astimezone(dt.UTC)
        timezone.localtime(moment)
    except (OverflowError, ValueError):
        return False
    return True


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
    in the server's TIME_ZONE. Raises ``BadDate`` for text that is not such a
    date, ``DateOutOfRange`` (a ``BadDate``) for one too early or too late to
    be stored or shown.
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
    late = moment.year > 5000
    try:
        if end:
            moment = _last_instant(text, moment)
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
    except OverflowError:
        raise DateOutOfRange(text, late=late) from None
    if not representable(moment):
        raise DateOutOfRange(text, late=late)
    return moment


def show(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    local = timezone.localtime(moment)
    # The year with its four digits: strftime's %Y writes year 1 as "1" on glibc.
    return f"{local.year:04d}{local:-%m-%d %H:%M}"


def exact(moment: dt.datetime | None) -> str:
    """The instant to the microsecond with its zone: ``2020-05-15 23:59:59.999999 +00:00 (UTC)``."""
    if moment is None:
        return ""
    local = timezone.localtime(moment)
    offset = local.strftime("%z")
    return (
        f"{local.year:04d}{local:-%m-%d %H:%M:%S.%f} {offset[:3]}:{offset[3:]} ({local.tzname()})"
    )


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
            except DateOutOfRange as far:
                self.add_error(name, out_of_range_message(name, raw, late=far.late))
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
