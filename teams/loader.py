"""Checked CSV bytes straight to the database's own bulk loader: the file is parsed once.

The validation pass (``TeamImport.prepare``) reads every row anyway; for a
CSV file in UTF-8 whose header names known columns only (in any order, the
optional ones may be left out) it also plans the batches (a ``Span`` per
batch: the bytes ``[start, end)`` of the file, the teams in them, the rows
that cannot go to the loader as they are).
A batch then reads its bytes and hands them, unparsed, to PostgreSQL's
``COPY … FROM STDIN (FORMAT csv)`` or MariaDB/MySQL's ``LOAD DATA LOCAL
INFILE``. Not on SQLite: there the loader is ``executemany`` either way, and
the plan cost more than it saved (paired runs, 200,000 rows: 5.8 s against
5.0 s row by row).

A row goes to the loader verbatim only when the loader reads it exactly as our
reader did: its values needed no tidy-up (no trimmed spaces, no Excel
``="0042"``) and hold no ``"`` (an unquoted field with a quote inside reads
differently in PostgreSQL), no carriage return (line ends are made LF), no
``\\.`` (PostgreSQL's end of data) and are not the word ``NULL`` (MariaDB reads
an unquoted NULL as NULL: MariaDB docs, "LOAD DATA INFILE"). Every other row
(tidied, bad and skipped, blank) is read again by the reader and either
written fully quoted in the same stream or left out, so what is written is
exactly what the row-by-row path writes.

The loader is given the file's columns in the file's order (``load_columns``),
then the columns the header leaves out: each verbatim line gets one empty
field per left-out column at its end (the team's empty value, as the
row-by-row path writes it; ``FORCE_NOT_NULL`` keeps PostgreSQL from reading
NULL), and a row with a line break inside a value is then rewritten, not
passed verbatim, so each line is one row. A planned batch that the loader did
not load whole (a count or a warning that says otherwise) is rolled back to a
savepoint and written row by row (``TeamImport.write_batch``).

The plan lives in the worker's memory only (16 bytes per row read again, at
most ``PLAN_MAX_OTHERS`` offsets): a resumed or taken-over import, with no
plan, takes the row-by-row path from its checkpoint, so nothing a takeover
needs is on one host.
"""

from __future__ import annotations

import codecs
import csv
import io
import tempfile
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection

from teams import csvformat
from teams.csvformat import COLUMNS, Layout, Problem
from teams.models import Team
from teams.readers import Reader, Record

UTF8 = frozenset({"utf-8", "utf-8-sig", "ascii"})
# At most this many offsets (8 bytes each, so 8 MiB) of rows read again are kept for
# a plan; batches past it go row by row (~10% slower on PostgreSQL, paired runs in
# docs/performance.md). 4,000,000 (32 MiB) lifted the worker's peak from ~115 MiB
# (200,000 rows) to 142 MiB on a 10,000,000-row file a third of whose rows are rewritten.
PLAN_MAX_OTHERS = 1_048_576
# PostgreSQL's COPY option for each delimiter the CSV reader detects.
PG_DELIMITER = {",": "','", ";": "';'", "\t": "E'\\t'", "|": "'|'"}


class NotLoaded(Exception):
    """The loader did not load the batch exactly; it is written row by row instead."""


@dataclass(slots=True)
class Span:
    """One planned batch: file bytes ``[start, end)`` with ``count`` teams, ending at ``row``.

    ``skipped`` and ``empty`` count its bad (skipped) and blank rows;
    ``others`` holds flat ``(start, end)`` byte pairs of the rows that are
    not loaded verbatim: read again and rewritten (blank ones left out), or,
    with ``end`` negative, bad rows left out unread.
    """

    start: int
    end: int = 0
    row: int = 0
    count: int = 0
    skipped: int = 0
    empty: int = 0
    others: array[int] = field(default_factory=lambda: array("q"))


class Planner:
    """Plans the batches while ``prepare`` checks the rows; see the module docstring.

    ``add`` takes every record ``prepare`` reads, in order, with what
    ``csvformat.check`` said; ``spans`` gives the plan, keyed by start offset.
    Batches end after ``size`` teams, exactly where ``next_batch`` ends them.
    """

    def __init__(self, start: int, size: int, layout: Layout | None = None) -> None:
        self.size = size
        self.position = start
        self.span = Span(start)
        self.plan: dict[int, Span] = {}
        self.kept = 0
        # The values' indexes in the file's column order; None when that is COLUMNS itself.
        order = _file_order(layout) if layout is not None else list(range(len(COLUMNS)))
        self.order = None if order == list(range(len(COLUMNS))) else order
        # Left-out columns are appended to each verbatim line: a line must be a row.
        self.one_line = layout is not None and bool(layout.missing)

    @classmethod
    def for_file(cls, reader: Reader, layout: Layout, size: int) -> Planner | None:
        """A planner when the loader can read this file's bytes as they are, else None."""
        decided = reader.decided()
        if decided.get("format") != "csv" or decided.get("newline") != "\n":
            return None
        if codecs.lookup(str(decided.get("encoding"))).name not in UTF8:
            return None
        if decided.get("delimiter") not in PG_DELIMITER or layout.unnamed:
            return None
        if layout.width != len(layout.present):
            return None  # a column that is not one of COLUMNS (read_header refuses those)
        return cls(layout.start, size, layout)

    def add(self, record: Record, values: tuple[str, ...] | None, problems: list[Problem]) -> None:
        span, start = self.span, self.position
        self.position = record.end
        if values:
            span.count += 1
            if not _verbatim(record.fields, values, self.order, self.one_line):
                span.others.extend((start, record.end))
        elif problems:
            # Left out unread: a bad row is never written, and may not be CSV at all.
            span.skipped += 1
            span.others.extend((start, -record.end))
        else:
            span.empty += 1
            span.others.extend((start, record.end))
        if span.count >= self.size:
            self._close(record)

    def _close(self, record: Record) -> None:
        span = self.span
        span.end, span.row = record.end, record.row
        self.kept += len(span.others)
        # Memory stays bounded: past the cap, the rest goes row by row.
        if self.kept <= PLAN_MAX_OTHERS:
            self.plan[span.start] = span
        self.span = Span(record.end)

    def spans(self, last: Record | None) -> dict[int, Span]:
        """The plan, once every record was added (``last`` is the last one read)."""
        if self.span.count and last is not None:
            self._close(last)
        return self.plan


def _verbatim(
    fields: list[str],
    values: tuple[str, ...],
    order: list[int] | None = None,
    one_line: bool = False,
) -> bool:
    """Whether the loaders read this row's bytes as these values (module docstring).

    ``order``: the values' indexes in the file's column order (None: COLUMNS
    order, every column there); ``one_line``: the row must hold no line break.
    """
    if order is None:
        if len(fields) != len(values) or list(values) != fields:
            return False
    elif len(fields) != len(order) or [values[i] for i in order] != fields:
        return False
    joined = "".join(values)
    if one_line and "\n" in joined:
        return False
    return not ('"' in joined or "\r" in joined or "\\." in joined or "NULL" in values)


def _file_order(layout: Layout) -> list[int]:
    """The indexes in COLUMNS of the file's columns, in the file's order."""
    return [COLUMNS.index(name) for name in layout.names if name]


def load_columns(layout: Layout) -> list[str]:
    """The columns the loader reads, in the order ``stream`` writes them.

    The file's columns in the file's order, then those its header leaves out
    (whose values ``stream`` writes empty).
    """
    return [COLUMNS[i] for i in _file_order(layout)] + list(layout.missing)


def values_between(
    reader: Reader, layout: Layout, start: int, end: int
) -> Iterator[tuple[str, ...]]:
    """The teams of the records in bytes ``[start, end)``, read and checked row by row."""
    if start >= end:
        return
    for record in reader.records(start, 0):
        values, _problems = csvformat.check(record, layout)
        if values:
            yield values
        if record.end >= end:
            return


def _rows(text: str, delimiter: str, layout: Layout) -> Iterator[tuple[str, ...]]:
    """The teams of whole, readable records (no bad row among them), parsed in one go.

    The same parse as the reader's: the ``csv`` module on the same lines.
    Values in ``load_columns`` order.
    """
    order = [COLUMNS.index(c) for c in load_columns(layout)]
    for fields in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True):
        values, _problems = csvformat.check(Record(0, fields, 0), layout)
        if values:
            yield tuple([values[i] for i in order])


def stream(fh: Any, reader: Reader, layout: Layout, span: Span) -> bytes:
    """The batch as CSV bytes for the loader: verbatim runs and rewritten rows, LF line ends.

    Fields in ``load_columns(layout)`` order: a verbatim line gets one empty
    field per column the header leaves out.
    """
    delimiter = reader.decided()["delimiter"]
    pad = delimiter.encode("utf-8") * len(layout.missing)
    parts: list[bytes] = []
    text = io.StringIO()
    writer = csv.writer(text, delimiter=delimiter, quoting=csv.QUOTE_ALL, lineterminator="\n")
    position = span.start
    others = span.others
    i = 0
    while position < span.end:
        bad = False
        if i < len(others):
            start, end = others[i], others[i + 1]
            bad = end < 0
            end = abs(end)
            i += 2
            # Contiguous rows of the same kind: one read.
            while i < len(others) and others[i] == end and (others[i + 1] < 0) == bad:
                end = abs(others[i + 1])
                i += 2
        else:
            start = end = span.end
        if start > position:
            fh.seek(position)
            raw = fh.read(start - position).replace(b"\r\n", b"\n")
            raw = raw if raw.endswith(b"\n") else raw + b"\n"
            # Each verbatim line is one row when columns are left out (Planner.one_line).
            parts.append(raw.replace(b"\n", pad + b"\n") if pad else raw)
        if end > start and not bad:
            fh.seek(start)
            writer.writerows(_rows(fh.read(end - start).decode("utf-8"), delimiter, layout))
            parts.append(text.getvalue().encode("utf-8"))
            text.seek(0)
            text.truncate()
        position = max(end, position)
    return b"".join(parts)


def load(
    data: bytes,
    *,
    delimiter: str,
    job_id: Any,
    expected: int,
    columns: Sequence[str] = COLUMNS,
) -> None:
    """Insert the CSV ``data`` (no header; fields in ``columns`` order) with the database's loader.

    ``columns`` is every one of COLUMNS, in the order of the data's fields
    (``load_columns``). Runs in the caller's transaction. Raises ``NotLoaded``
    when the database did not load exactly ``expected`` rows without a warning.
    """
    table = connection.ops.quote_name(Team._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # job_id comes from the column default, set per transaction (migration 0004).
            cursor.execute("SELECT set_config('collect.import_job', %s, true)", [str(job_id)])
            sql = (
                f"COPY {table} ({names}) FROM STDIN (FORMAT csv, "
                f"DELIMITER {PG_DELIMITER[delimiter]}, FORCE_NOT_NULL ({names}))"
            )
            with connection.wrap_database_errors, cursor.copy(sql) as copy:
                copy.write(data)
            loaded, warnings = cursor.rowcount, 0
        elif connection.vendor == "mysql":
            # LOCAL: the server reads the file from this client (mysqlclient's
            # local_infile option, see collect/settings.py); LOCAL also turns
            # errors into warnings, hence the check of both counts below.
            with tempfile.NamedTemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR) as tmp:
                tmp.write(data)
                tmp.flush()
                cursor.execute(
                    f"LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET utf8mb4 "
                    "FIELDS TERMINATED BY %s OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
                    f"LINES TERMINATED BY '\\n' ({names}) SET job_id = %s",
                    [tmp.name, delimiter, job_id],
                )
            loaded, warnings = cursor.rowcount, connection.connection.warning_count()
        else:
            raise NotLoaded(f"no bulk loader for {connection.vendor}")
    if loaded != expected or warnings:
        raise NotLoaded(f"loaded {loaded} of {expected} rows, {warnings} warnings")


def delete_created(*, job_id: Any, limit: int, after: int = 0) -> tuple[int, int | None]:
    """Delete the job's next ``limit`` teams by id, those with an id above ``after``.

    Returns ``(deleted, last_id)``; ``last_id`` is the highest id of the chunk,
    to pass as ``after`` next time, or None when the job has no team above
    ``after``. The chunk is read in ``(job, id)`` index order starting past
    ``after`` (``ORDER BY job_id, id LIMIT``); PostgreSQL then deletes its rows by
    ``ctid`` in the same statement, the others run ``DELETE … WHERE job_id = …
    AND id > after AND id <= last``. Starting past
    the rows already deleted matters: PostgreSQL keeps their index entries
    until a vacuum (InnoDB until its purge), and a scan from the job's first
    entry walked all of them again on every chunk; a 10,000,000-row undo on
    PostgreSQL fell from 200,000 rows a second to 5,000 by its end (990 s in
    all in one run, docs/performance.md).
    """
    table = connection.ops.quote_name(Team._meta.db_table)
    job = Team._meta.get_field("job").get_db_prep_value(job_id, connection)
    chunk = (
        f"SELECT {'ctid, ' if connection.vendor == 'postgresql' else ''}id FROM {table} "  # noqa: S608
        "WHERE job_id = %s AND id > %s ORDER BY job_id, id LIMIT %s"
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The chunk in index order, whatever the statistics say: just after a bulk
            # import they do not know the job's rows yet, and PostgreSQL read all of them
            # (a bitmap scan, then a sort) for each chunk of 20,000 (3-5 s). Planner
            # settings for this statement only (PostgreSQL docs, "Planner Method
            # Configuration"); the rows are then deleted by address (a TID scan).
            cursor.execute("SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off")
            cursor.execute(
                f"WITH chunk AS MATERIALIZED ({chunk}), "  # noqa: S608
                f"gone AS (DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM chunk)) "
                "RETURNING 1) SELECT (SELECT COUNT(*) FROM gone), (SELECT MAX(id) FROM chunk)",
                [job, after, limit],
            )
            deleted, last = cursor.fetchone()
            # Back to the configured values for the rest of the transaction (RESET would
            # be a session-wide SET).
            cursor.execute(
                "SET LOCAL enable_bitmapscan TO DEFAULT; SET LOCAL enable_sort TO DEFAULT"
            )
            return int(deleted), None if last is None else int(last)
        cursor.execute(f"SELECT MAX(id) FROM ({chunk}) chunk", [job, after, limit])  # noqa: S608
        last = cursor.fetchone()[0]
        if last is None:
            return 0, None
        cursor.execute(
            f"DELETE FROM {table} WHERE job_id = %s AND id > %s AND id <= %s",  # noqa: S608
            [job, after, last],
        )
        return int(cursor.rowcount), int(last)


__all__ = [
    "NotLoaded",
    "Planner",
    "Span",
    "delete_created",
    "load",
    "load_columns",
    "stream",
    "values_between",
]


def insert_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Insert ``rows`` (database-ready values in ``columns`` order) into ``table``.

    PostgreSQL: psycopg's ``COPY … FROM STDIN``, its own bulk path (executemany is
    slower there); ``copy`` is psycopg's, not Django's, so it runs inside Django's
    error wrapper, which turns a lost connection into the ``OperationalError`` the
    engine retries. Elsewhere: one parametrised INSERT run with ``executemany``,
    measured at 130-150k rows/s on SQLite against ~20k for ``bulk_create``, whose
    per-object model work was the import's bottleneck.
    """
    quote = connection.ops.quote_name
    into = f"{quote(table)} ({', '.join(quote(c) for c in columns)})"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with connection.wrap_database_errors, cursor.copy(f"COPY {into} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {into} VALUES ({marks})", list(rows))  # noqa: S608
