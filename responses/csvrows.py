"""How a form response becomes a CSV line.

Spreadsheets run a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and,
in some, tab or carriage return) as a formula: a respondent's name like
``=HYPERLINK(...)`` would run on the reader's machine. Such text cells get a
leading single quote (OWASP's advice), which spreadsheets show as text. Only
text columns are touched: numbers (id, latitude, longitude) are written as
numbers, so a negative latitude stays ``-33.868820``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

HEADER = [
    "id",
    "timestamp",
    "user",
    "name_of_respondent",
    "gender_of_respondent",
    "reading_books",
    "listening_music",
    "mobile_no",
    "record_latitude",
    "record_longitude",
]
# The model fields read for each row, in the order ``line`` expects them.
FIELDS = [
    "id",
    "timestamp",
    "user_id",
    "name_of_respondent",
    "gender_of_respondent",
    "reading_books",
    "listening_music",
    "mobile_no",
    "record_latitude",
    "record_longitude",
]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value: str) -> str:
    """Neutralise a text cell a spreadsheet would run as a formula."""
    return "'" + value if value.startswith(FORMULA_START) else value


def _number(value: Decimal | None) -> str:
    return "" if value is None else f"{value:f}"


def line(row: tuple[Any, ...], *, usernames: dict[int, str], tz: dt.tzinfo) -> list[str]:
    pk, ts, user_id, name, gender, books, music, mobile, lat, lon = row
    return [
        str(pk),
        ts.astimezone(tz).isoformat(),
        safe_text(usernames.get(user_id, "")) if user_id is not None else "",
        safe_text(name),
        safe_text(gender),
        "true" if books else "false",
        "true" if music else "false",
        safe_text(mobile),
        _number(lat),
        _number(lon),
    ]


def encode(rows: Iterable[list[str]]) -> bytes:
    """CSV text (RFC 4180: CRLF line ends, quoting as needed) as UTF-8."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode("utf-8")


def header() -> bytes:
    return encode([HEADER])
