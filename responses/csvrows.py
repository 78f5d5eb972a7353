"""How a form response becomes cells: the columns, the one timestamp format, formula rules.

A spreadsheet runs a cell as a formula when its text (after any leading
blanks, which some spreadsheets drop) starts with ``=`` or ``@``, or with
``+`` or ``-`` followed by something that is not a plain number (OWASP, "CSV
Injection"). Only such cells are changed, by a leading single quote, which
spreadsheets show as text. Everything else is written as stored: numbers, and
number-like text such as ``+254712345678``, ``-``, ``-0.5`` or
``(020) 555 0101``, which a spreadsheet reads as a number or as text but never
runs. Quoting is a separate matter (see ``excel_cell``).
"""

from __future__ import annotations

import datetime as dt
import re
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
# The model fields read for each row, in the order ``record`` expects them.
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

# (id, local timestamp, username or None, name, gender, books, music, mobile, lat, lon)
Record = tuple[int, dt.datetime, str | None, str, str, bool, bool, str, Decimal, Decimal]

# A sign followed by a plain number (digits with spaces, dots or commas), or by nothing.
_SIGNED_NUMBER = re.compile(r"[+-][\d\s.,]*")
_LEADING_BLANKS = " \t\r\n"
# Excel splits on ";" in many European locales, on "," elsewhere; a quote or a
# line break inside a cell needs quotes in every dialect.
_NEEDS_QUOTES = re.compile(r'[,;"\r\n]')


def is_formula(value: str) -> bool:
    """True when a spreadsheet would run ``value`` as a formula (see the module's rule)."""
    text = value.lstrip(_LEADING_BLANKS)
    if not text:
        return False
    if text[0] in "=@":
        return True
    return text[0] in "+-" and _SIGNED_NUMBER.fullmatch(text) is None


def safe_text(value: str) -> str:
    """``value`` with a leading ``'`` if a spreadsheet would run it as a formula, else as is."""
    return "'" + value if is_formula(value) else value


# Only a cell starting with one of these can be a formula (``is_formula``): the others skip it.
_FORMULA_START = frozenset("=@+-" + _LEADING_BLANKS)


def excel_cell(value: str) -> str:
    """A text cell for the Excel CSV: neutralised, then quoted when it holds , ; " or a break."""
    if value and value[0] in _FORMULA_START and is_formula(value):
        value = "'" + value
    if _NEEDS_QUOTES.search(value):
        return '"' + value.replace('"', '""') + '"'
    return value


def timestamp(moment: dt.datetime) -> str:
    """ISO 8601 with the zone offset and microseconds, the same on every row."""
    return moment.isoformat(timespec="microseconds")


def number(value: Decimal | None) -> str:
    """A decimal exactly as stored, never in exponent form."""
    return "" if value is None else f"{value:f}"


def record(row: tuple[Any, ...], *, usernames: dict[int, str], tz: dt.tzinfo) -> Record:
    """A database row (``FIELDS``) with its username and its timestamp in ``tz``."""
    pk, ts, user_id, name, gender, books, music, mobile, lat, lon = row
    user = None if user_id is None else usernames.get(user_id, "")
    return (pk, ts.astimezone(tz), user, name, gender, books, music, mobile, lat, lon)
