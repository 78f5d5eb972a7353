"""The teams CSV: reading it record by record at exact byte offsets, and its checks.

The file is read in binary and decoded line by line, and the ``csv`` module
is fed one line at a time. It pulls only the lines it needs to complete a
record, so after each record we know the byte offset where the next one
starts, even when a quoted field spans several lines. A checkpoint is such an
offset: a resumed import seeks there instead of reading from the start.

Rows are numbered as a spreadsheet shows them: the header is row 1, the
first team row 2 (a quoted field with line breaks is still one row).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from teams.models import MANAGER_MAX, NAME_MAX

COLUMNS = ("name", "description", "manager", "members")
HEADER = ",".join(COLUMNS)
BOM = b"\xef\xbb\xbf"
FIX_HINT = (
    "Download the error report, fix those rows and upload the file again, "
    "or import it with on_error=skip to leave the bad rows out."
)

# Fields may be long (descriptions, member lists); the default 128 KiB is not
# a limit of ours. The upload size limit bounds them anyway.
csv.field_size_limit(64 * 1024 * 1024)

# Files people upload by mistake, known by their first bytes: named in the message.
NOT_CSV = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook is one)"),
    (b"\xff\xfe\x00\x00", "UTF-32 text"),
    (b"\xff\xfe", "UTF-16 text"),
    (b"\xfe\xff", "UTF-16 text"),
)
MAX_SHOWN_COLUMNS = 10


class FileProblem(Exception):
    """The file as a whole cannot be imported (not CSV, empty, bad header)."""


@dataclass
class Record:
    row: int
    fields: list[str]
    end: int  # byte offset just after this record
    error: str = ""  # the row cannot be read as CSV (the message for the user)
    bad_utf8: bool = False


@dataclass
class Problem:
    row: int
    column: str
    value: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "column": self.column,
            "value": self.value,
            "message": self.message,
        }


class _Lines:
    """Decoded lines for ``csv.reader``, counting the bytes handed out so far."""

    def __init__(self, fh: IO[bytes], offset: int) -> None:
        self.fh = fh
        self.offset = offset
        self.bad_utf8 = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw = self.fh.readline()
        if not raw:
            raise StopIteration
        self.offset += len(raw)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            # Keep reading so every bad row is reported; the row is marked bad.
            self.bad_utf8 = True
            return raw.decode("utf-8", "surrogateescape")


def _csv_error_message(exc: csv.Error) -> str:
    text = str(exc)
    if "unexpected end of data" in text:
        return (
            'A quoted field is never closed: a " opens a field that runs to the end of the '
            'file. Close the quote, and write a quote inside a quoted field as "".'
        )
    if "NUL" in text:
        return "The row contains a NUL byte (binary data). Save the file as CSV UTF-8 text."
    return (
        f"The row is not valid CSV ({text}). A field that contains quotes must itself be "
        'quoted, with each quote inside it written as "".'
    )


def records(fh: IO[bytes], *, offset: int, row: int) -> Iterator[Record]:
    """The records after byte ``offset``, where ``row`` is the row number before it."""
    fh.seek(offset)
    lines = _Lines(fh, offset)
    reader = csv.reader(lines, strict=True)
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            row += 1
            yield Record(row, [], lines.offset, error=_csv_error_message(exc))
            lines.bad_utf8 = False
            continue
        row += 1
        yield Record(row, fields, lines.offset, bad_utf8=lines.bad_utf8)
        lines.bad_utf8 = False


def read_header(fh: IO[bytes]) -> tuple[list[int], int]:
    """Check the header; return the position of each of COLUMNS and the offset after it.

    Raises ``FileProblem`` with the message the user reads.
    """
    fh.seek(0)
    head = fh.read(64 * 1024)
    if not head:
        raise FileProblem(f"The file is empty. Upload a CSV file whose first row is {HEADER}.")
    not_text = (
        "The file is not a CSV text file: it contains binary data. Save it as "
        f'"CSV UTF-8 (comma delimited)" with the header {HEADER} and upload it again.'
    )
    for magic, what in NOT_CSV:
        if head.startswith(magic):
            raise FileProblem(
                f"The file is {what}, not a CSV UTF-8 text file. Save it as "
                f'"CSV UTF-8 (comma delimited)" with the header {HEADER} and upload it again.'
            )
    if b"\x00" in head:
        raise FileProblem(not_text)
    start = len(BOM) if head.startswith(BOM) else 0
    first = next(records(fh, offset=start, row=0), None)
    if first is None or (not first.fields and not first.error):
        raise FileProblem(f"The file has no header. Its first row must be {HEADER}.")
    if first.bad_utf8:
        raise FileProblem(not_text)
    if first.error and b"\r" in head and b"\n" not in head:
        raise FileProblem(
            "The lines of the file end with a carriage return only (the old Mac format). "
            f'Save it as "CSV UTF-8 (comma delimited)" with the header {HEADER} and upload it '
            "again."
        )
    if first.error:
        raise FileProblem(f"The header row is not valid CSV. Its first row must be {HEADER}.")
    names = [f.strip().lower() for f in first.fields]
    if len(names) == 1 and (";" in names[0] or "\t" in names[0]):
        sep = "semicolons" if ";" in names[0] else "tabs"
        raise FileProblem(
            f"The columns of the header are separated by {sep}; Collect reads commas. "
            f'Save the file as "CSV UTF-8 (comma delimited)" with the header {HEADER}.'
        )
    # One pass (not names.count per name): a header may have 100,000 columns.
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise FileProblem(
                f'The header names the column "{_shown(name, 50)}" more than once. Each column '
                f"may appear only once: {HEADER}."
            )
        seen.add(name)
    unknown = [f'"{_shown(n, 50)}"' for n in names if n not in COLUMNS]
    if len(unknown) > MAX_SHOWN_COLUMNS:
        more = len(unknown) - MAX_SHOWN_COLUMNS
        unknown = [*unknown[:MAX_SHOWN_COLUMNS], f"and {more:,} more"]
    missing = [c for c in COLUMNS if c not in names]
    if unknown or missing:
        parts = []
        if missing:
            plural = "s" if len(missing) > 1 else ""
            parts.append(f"misses the column{plural} {', '.join(missing)}")
        if unknown:
            plural = "s" if len(unknown) > 1 else ""
            parts.append(f"has the unknown column{plural} {', '.join(unknown)}")
        raise FileProblem(
            f"The header {' and '.join(parts)}. The first row must name the columns "
            f"{HEADER} (in any order, any case)."
        )
    return [names.index(c) for c in COLUMNS], first.end


def _shown(value: str, limit: int = 200) -> str:
    value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value if len(value) <= limit else value[:limit] + "…"


def check(record: Record, positions: list[int]) -> tuple[tuple[str, ...] | None, list[Problem]]:
    """The row's values in COLUMNS order, or None and what is wrong with it."""
    row = record.row
    if record.error:
        return None, [Problem(row, "", "", record.error)]
    fields = record.fields
    if len(fields) != len(COLUMNS):
        return None, [
            Problem(
                row,
                "",
                _shown(",".join(fields)),
                f"The row has {len(fields)} field{'' if len(fields) == 1 else 's'}; "
                f"expected {len(COLUMNS)} ({', '.join(COLUMNS)}). Quote fields that "
                "contain commas.",
            )
        ]
    values = tuple(fields[p] for p in positions)
    if any("\x00" in v for v in values):
        column = next(c for c, v in zip(COLUMNS, values, strict=True) if "\x00" in v)
        return None, [
            Problem(
                row,
                column,
                "",
                "The row contains a NUL byte (binary data). Save the file as CSV UTF-8 text.",
            )
        ]
    if record.bad_utf8:
        column = next(
            (c for c, v in zip(COLUMNS, values, strict=True) if not v.isascii() and _has_bad(v)),
            "",
        )
        value = values[COLUMNS.index(column)] if column else ""
        return None, [
            Problem(
                row,
                column,
                _shown(value),
                "The row is not valid UTF-8 text. Save the file as CSV UTF-8 and upload it again.",
            )
        ]
    problems = []
    name, _description, manager, _members = values
    if not name.strip():
        problems.append(Problem(row, "name", name, "The name is empty; every team needs a name."))
    elif len(name) > NAME_MAX:
        problems.append(
            Problem(
                row,
                "name",
                _shown(name),
                f"The name is {len(name)} characters long; at most {NAME_MAX} are allowed.",
            )
        )
    if len(manager) > MANAGER_MAX:
        problems.append(
            Problem(
                row,
                "manager",
                _shown(manager),
                f"The manager is {len(manager)} characters long; at most {MANAGER_MAX} "
                "are allowed.",
            )
        )
    return (None if problems else values), problems


def _has_bad(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)
