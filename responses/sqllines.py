"""CSV lines of a keyset page built by the database: one value per page, no per-cell Python.

The CSV writers (``responses.writers.csv``) turn records into text in Python,
cell by cell; a profile of a 200,000-row export on PostgreSQL put 40% of the
time in that loop and most of the rest in the driver building a ``datetime``
and two ``Decimal`` objects per row, only to turn them back into text.
``read_page`` asks PostgreSQL or MariaDB/MySQL for the page's lines instead,
glued together by ``string_agg`` / ``GROUP_CONCAT`` in ``(timestamp, id)``
order, so Python receives one string per page.

The text is byte for byte what the writers give (tests/test_export_sql_lines.py
compares the two on hostile values on each database):

- timestamps: ISO 8601 in the export's zone with microseconds and the offset
  ``±HH:MM`` (``±HH:MM:SS`` for the odd historical offset), as
  ``datetime.isoformat(timespec="microseconds")`` writes them. PostgreSQL
  converts with ``AT TIME ZONE``; MariaDB only when the zone is UTC (it has no
  zone rules unless an operator loaded them into ``mysql.time_zone*``; with
  them, ``CONVERT_TZ`` is used).
- decimals as stored (``numeric``/``DECIMAL`` to text keeps the scale, as
  ``f"{Decimal:f}"`` does); booleans ``true``/``false``; a missing user is empty.
- quoting: a cell holding ``,`` ``;`` ``"`` CR or LF (Excel flavour) or
  ``,`` ``"`` CR or LF (raw flavour, Python's ``csv.QUOTE_MINIMAL``) is
  quoted, inner quotes doubled.
- formulas (Excel flavour, ``csvrows.is_formula``; OWASP "CSV Injection"): a
  cell starting with ``=`` or ``@`` gets a leading ``'``; one starting with
  ``+`` or ``-`` gets it unless the rest is ``[0-9 .,]*``. Python's rule reads
  ``\\d``/``\\s`` as Unicode classes, which SQL cannot match exactly, so a page
  with a cell that starts with a blank, or with a sign followed by anything but
  printable ASCII, is not built here: ``read_page`` returns None and the caller
  uses the Python writer for that page (same bytes, slower).

SQLite and any other database return None too: SQLite stores the coordinates
as floats that Django rounds through ``Decimal`` (see ``responses.pages``), a
rule SQL cannot reproduce exactly.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import EmptyResultSet
from django.db import connections, models
from django.db.models import QuerySet

from responses import csvrows
from responses.models import FormResponse

EXCEL, RAW = "excel", "raw"
# Zone names as the tz database writes them: inlined in SQL, so nothing else may pass.
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-/]*")


def zone_name(tz: dt.tzinfo) -> str | None:
    """The tz database name of ``tz`` (``UTC`` for any UTC), or None for a fixed offset."""
    if tz is dt.UTC or (isinstance(tz, zoneinfo.ZoneInfo) and tz.key in {"UTC", "Etc/UTC"}):
        return "UTC"
    if isinstance(tz, zoneinfo.ZoneInfo) and _ZONE_NAME.fullmatch(tz.key):
        return tz.key
    return None


def read_page(
    qs: QuerySet[FormResponse], *, size: int, flavour: str, tz: dt.tzinfo
) -> tuple[bytes, int, tuple[dt.datetime, int] | None] | None:
    """Up to ``size`` rows of ``qs`` in ``(timestamp, id)`` order as CSV lines (CRLF ends).

    ``flavour`` is ``EXCEL`` or ``RAW``. Returns ``(utf8_bytes, rows, last_key)``
    with ``last_key`` = ``(aware timestamp, id)`` of the page's last row
    (None for an empty page), or None when this database or this page needs the
    Python writer (see the module docstring).
    """
    page = qs.order_by("timestamp", "id").values_list(*csvrows.FIELDS)[:size]
    connection = connections[page.db]
    vendor, zone = connection.vendor, zone_name(tz)
    if vendor not in {"postgresql", "mysql"} or zone is None or connection.timezone is None:
        return None
    try:
        sql, params = page.query.get_compiler(using=page.db).as_sql()
    except EmptyResultSet:
        return b"", 0, None
    if vendor == "mysql" and not connection.mysql_is_mariadb:  # type: ignore[attr-defined]
        return None  # the SQL below is tested on MariaDB only
    users = get_user_model()
    username, pk = users._meta.get_field(users.USERNAME_FIELD), users._meta.pk
    assert isinstance(username, models.Field) and pk is not None
    quote = connection.ops.quote_name
    join = f"LEFT JOIN {quote(users._meta.db_table)} u ON u.{quote(pk.column)} = p.user_id"
    cells = [f"COALESCE(u.{quote(username.column)}, '')", "p.name_of_respondent"]
    cells += ["p.gender_of_respondent", "p.mobile_no"]
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            stamp = _pg_timestamp(zone)
            line = _line(_PG, stamp, ["p.c1", "p.c2", "p.c3", "p.c4"], flavour, done=True)
            hard = " OR ".join(_PG.hard(c) for c in cells) if flavour == EXCEL else "FALSE"
            neutral = ", ".join(
                f"{_neutral(_PG, c, flavour)} AS c{i}" for i, c in enumerate(cells, 1)
            )
            # The cells are neutralised once per row in a subquery that OFFSET 0 keeps the
            # planner from folding into the outer one: folded, each cell's expression was
            # evaluated three times (the quote test, the quoted and the plain value).
            inner = (
                f"SELECT p.id, p.timestamp, p.reading_books, p.listening_music, "  # noqa: S608
                f"p.record_latitude, p.record_longitude, {neutral}, {hard} AS hard "
                f"FROM ({sql}) p {join} OFFSET 0"
            )
            # Every name in it comes from the models or is a literal of this module.
            cursor.execute(
                f"SELECT string_agg({line}, '' ORDER BY p.timestamp, p.id), count(*), "  # noqa: S608
                f"bool_or(p.hard), max(p.timestamp), "
                f"(array_agg(p.id ORDER BY p.timestamp DESC, p.id DESC))[1] "
                f"FROM ({inner}) p",
                params,
            )
            text, count, needs_python, last_ts, last_id = cursor.fetchone()
            if needs_python:
                return None
            data = (text or "").encode()
        else:
            my_stamp = _my_timestamp(cursor, zone, connection.timezone_name)
            if my_stamp is None:
                return None
            line = _line(_MY, my_stamp, cells, flavour)
            hard = " OR ".join(_MY.hard(c) for c in cells) if flavour == EXCEL else "FALSE"
            # One line per row: measured faster than GROUP_CONCAT (which sorts again and
            # cuts silently at group_concat_max_len). A line Python must build comes as NULL.
            cursor.execute(
                f"SELECT CASE WHEN {hard} THEN NULL ELSE {line} END, p.id FROM ({sql}) p {join} "  # noqa: S608
                "ORDER BY p.timestamp, p.id",  # a join may give another order
                params,
            )
            rows = cursor.fetchall()
            if not rows:
                return b"", 0, None
            lines = [text for text, _ in rows]
            needs_python, count, last_id = None in lines, len(rows), rows[-1][1]
            if needs_python:
                return None
            data = "".join(lines).encode()
            cursor.execute(
                f"SELECT timestamp FROM {quote(FormResponse._meta.db_table)} WHERE id = %s",  # noqa: S608
                [last_id],
            )
            last_ts = cursor.fetchone()[0].replace(tzinfo=connection.timezone)
    if not count:
        return b"", 0, None
    return data, int(count), (last_ts, int(last_id))


@dataclass(frozen=True)
class _Dialect:
    """The SQL spellings that differ between PostgreSQL and MariaDB/MySQL.

    Each field takes SQL expressions and gives one (``needs_quotes`` also takes the flavour).
    """

    concat: Callable[..., str]
    text: Callable[[str], str]  # a column as text (PostgreSQL) or UTF-8 bytes (MariaDB)
    needs_quotes: Callable[[str, str], str]
    formula: Callable[[str], str]  # the cell is one a spreadsheet runs (csvrows.is_formula)
    hard: Callable[[str], str]  # the cell needs Python's Unicode rule to decide
    div: Callable[[str, int], str]
    cast: str
    crlf: str


_PG = _Dialect(
    concat=lambda *parts: "(" + " || ".join(parts) + ")",
    text=lambda c: f"{c}::text",
    # A regex class in an E'' literal, so \r and \n are the characters.
    needs_quotes=lambda c, flavour: f"{c} ~ E'[{',;' if flavour == EXCEL else ','}\"\\r\\n]'",
    # ascii() is the first character's code point: 61 '=', 64 '@', 43 '+', 45 '-'.
    formula=lambda c: (
        f"(ascii({c}) IN (61, 64) OR (ascii({c}) IN (43, 45) AND substr({c}, 2) !~ '^[0-9 .,]*$'))"
    ),
    # 32 space, 9 tab, 13 CR, 10 LF first; or a sign, then anything beyond printable ASCII.
    hard=lambda c: (
        f"(ascii({c}) IN (32, 9, 13, 10) OR (ascii({c}) IN (43, 45) "
        f"AND substr({c}, 2) !~ '^[0-9 .,]*$' "
        f"AND (octet_length({c}) <> char_length({c}) OR {c} ~ '[[:cntrl:]]')))"
    ),
    div=lambda a, b: f"div({a}, {b})",
    cast="text",
    crlf="E'\\r\\n'",
)

_MY = _Dialect(
    concat=lambda *parts: "CONCAT(" + ", ".join(parts) + ")",
    text=lambda c: c,
    # BINARY: byte for byte, whatever the collation (a _ci one may find other characters
    # equal); these characters are one byte in every ASCII-compatible character set.
    needs_quotes=lambda c, flavour: (
        f"({c} REGEXP BINARY CONCAT('[,{';' * (flavour == EXCEL)}\"', CHAR(13), CHAR(10), ']'))"
    ),
    # ASCII() is the first byte: an ASCII character's code, 128 or more for any other.
    formula=lambda c: (
        f"(ASCII({c}) IN (61, 64) OR (ASCII({c}) IN (43, 45) "
        f"AND SUBSTRING({c}, 2) NOT REGEXP BINARY '^[0-9 .,]*$'))"
    ),
    hard=lambda c: (
        f"(ASCII({c}) IN (32, 9, 13, 10) OR (ASCII({c}) IN (43, 45) "
        f"AND SUBSTRING({c}, 2) NOT REGEXP BINARY '^[0-9 .,]*$' "
        f"AND {c} REGEXP BINARY '[^ -~]'))"
    ),
    div=lambda a, b: f"({a} DIV {b})",
    cast="CHAR",
    crlf="CONCAT(CHAR(13), CHAR(10))",
)


def _neutral(d: _Dialect, column: str, flavour: str) -> str:
    """One text cell as text, neutralised when it is a formula (Excel flavour)."""
    c = d.text(column)
    if flavour == EXCEL:
        c = f"(CASE WHEN {d.formula(c)} THEN {d.concat(chr(39) * 4, c)} ELSE {c} END)"
    return c


def _quoted(d: _Dialect, c: str, flavour: str) -> str:
    """The text cell ``c`` quoted when it must be (``c`` appears three times: keep it short)."""
    quoted = d.concat("'\"'", f"REPLACE({c}, '\"', '\"\"')", "'\"'")
    return f"(CASE WHEN {d.needs_quotes(c, flavour)} THEN {quoted} ELSE {c} END)"


def _cell(d: _Dialect, column: str, flavour: str) -> str:
    """One text cell: neutralised (Excel flavour), then quoted when it must be."""
    return _quoted(d, _neutral(d, column, flavour), flavour)


def _line(d: _Dialect, stamp: str, cells: list[str], flavour: str, *, done: bool = False) -> str:
    """One CSV line with its CRLF, from the page ``p`` and the user ``u``.

    ``done``: ``cells`` are already neutralised text (columns of a subquery), to quote only.
    """
    if done:
        user, name, gender, mobile = (_quoted(d, c, flavour) for c in cells)
    else:
        user, name, gender, mobile = (_cell(d, c, flavour) for c in cells)
    books, music = (
        f"(CASE WHEN p.{b} THEN 'true' ELSE 'false' END)"
        for b in ("reading_books", "listening_music")
    )
    parts = [d.text("p.id"), stamp, user, name, gender, books, music, mobile]
    parts += [d.text("p.record_latitude"), d.text("p.record_longitude")]
    joined: list[str] = []
    for part in parts:
        joined += [part, "','"]
    return d.concat(*joined[:-1], d.crlf)


def _pg_timestamp(zone: str) -> str:
    """ISO 8601 of ``p.timestamp`` in ``zone``, offset as Python writes it (``±HH:MM[:SS]``)."""
    local = f"(p.timestamp AT TIME ZONE '{zone}')"
    text = f"to_char({local}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
    if zone == "UTC":  # the offset is always 0: half the cost of a line in a measurement
        return f"({text} || '+00:00')"
    offset = f"EXTRACT(EPOCH FROM {local} - (p.timestamp AT TIME ZONE 'UTC'))::int"
    return _offset_text(_PG, text, offset)


def _my_timestamp(cursor: Any, zone: str, connection_zone: str) -> str | None:
    """MariaDB's spelling of the ISO timestamp, or None when it cannot convert to ``zone``."""
    if connection_zone not in {"UTC", "Etc/UTC"}:
        return None
    # %% because the statement goes through the driver's %-formatting with its parameters.
    pattern = "'%%Y-%%m-%%dT%%H:%%i:%%s.%%f'"
    if zone == "UTC":
        return f"CONCAT(DATE_FORMAT(p.timestamp, {pattern}), '+00:00')"
    cursor.execute(f"SELECT CONVERT_TZ('2000-01-01 00:00:00', '+00:00', '{zone}')")
    if cursor.fetchone()[0] is None:  # no zone tables loaded: the Python writer converts
        return None
    local = f"CONVERT_TZ(p.timestamp, '+00:00', '{zone}')"
    offset = f"TIMESTAMPDIFF(SECOND, p.timestamp, {local})"
    return _offset_text(_MY, f"DATE_FORMAT({local}, {pattern})", offset)


def _offset_text(d: _Dialect, local: str, offset: str) -> str:
    """``local`` then the offset of ``offset`` seconds as ``±HH:MM``, ``:SS`` added if not 0."""
    a = f"ABS({offset})"

    def two(value: str) -> str:
        return f"LPAD(CAST({value} AS {d.cast}), 2, '0')"

    hours = two(d.div(a, 3600))
    minutes = two(d.div(f"MOD({a}, 3600)", 60))
    sign = f"(CASE WHEN {offset} < 0 THEN '-' ELSE '+' END)"
    seconds = d.concat("':'", two(f"MOD({a}, 60)"))
    tail = f"(CASE WHEN MOD({a}, 60) = 0 THEN '' ELSE {seconds} END)"
    return d.concat(local, sign, hours, "':'", minutes, tail)
