"""The teams file, whatever its format: its columns, its header and the checks of each row.

Readers (``teams.readers``) turn a CSV file or a workbook into rows of text;
this module finds the header among them and checks each row, so every format
gets the same rules and the same words.

Rows are numbered as a spreadsheet shows them: the first row of the file is
row 1 (a quoted field with line breaks is still one row). Columns are named by
their header name and their spreadsheet letter (A, B, ..., Z, AA).

Tidy-up before checks, for the files spreadsheets write: blank rows above the
header are skipped; a row whose every cell is empty is ignored like a blank
line (and counted); columns without a name are ignored while they are empty;
spaces (any Unicode white space) around every value are trimmed.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from openpyxl.utils import get_column_letter

from jobs.formatting import exact_size, plural, thousands
from teams.models import MANAGER_MAX, NAME_MAX
from teams.readers import FileProblem, Reader, Record, max_field_bytes

COLUMNS = ("name", "description", "manager", "members")
HEADER = ",".join(COLUMNS)
# Only ``name`` must be in the header; a column left out is empty in a new team and
# left as it is in an updated one (``teams.upsert``).
REQUIRED = ("name",)
OPTIONAL = tuple(c for c in COLUMNS if c not in REQUIRED)
HEADER_RULE = (
    f"The first row must name the column {', '.join(REQUIRED)} and may name "
    f"{', '.join(OPTIONAL)} (in any order, any case)."
)
# A row's message says what is wrong with that row and how to mend it; the job's
# message (``fix_hint``) adds, once, what to do with the file.
NOT_UTF8 = "The row is not valid UTF-8 text. Save the file as CSV UTF-8."
MAX_SHOWN_COLUMNS = 10
HEADER_SEARCH = 20
_COLUMN_SET = frozenset(COLUMNS)
_REQUIRED_SET = frozenset(REQUIRED)

__all__ = [
    "COLUMNS",
    "HEADER",
    "HEADER_RULE",
    "OPTIONAL",
    "REQUIRED",
    "FileProblem",
    "Layout",
    "Problem",
    "check",
    "read_header",
]


@dataclass
class Problem:
    """What is wrong with one row: where (row, column name and letter) and the message."""

    row: int
    column: str
    value: str
    message: str
    letter: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "column": self.column,
            "letter": self.letter,
            "value": self.value,
            "message": self.message,
        }


def fix_hint(bad_rows: int) -> str:
    """What to do when rows are bad, after the first problem: said once, for one row or many."""
    rows = "that row" if bad_rows == 1 else "those rows"
    return f"Download the error report, fix {rows} and upload the file again."


def bad_rows_said(bad: int, rows: int) -> str:
    """``1 of 2,000 rows is bad``, ``3 of 5 rows are bad``, ``all 2 rows are bad``,
    ``the only row is bad``: the count of bad rows in English."""
    if bad == rows == 1:
        return "the only row is bad"
    if bad == rows:
        return f"all {thousands(rows)} rows are bad"
    return f"{thousands(bad)} of {plural(rows, 'row')} {'is' if bad == 1 else 'are'} bad"


def where(problem: dict[str, Any]) -> str:
    """``Row 3, column manager (C)``: the place of a problem as the user reads it."""
    text = f"Row {thousands(problem['row'])}"
    column, letter = problem.get("column"), problem.get("letter")
    if column and letter:
        text += f", column {column} ({letter})"
    elif column or letter:
        text += f", column {column or letter}"
    return text


@dataclass
class Layout:
    """The header: the index of each of COLUMNS, the names in file order, where rows start.

    ``positions`` holds -1 for a column the header leaves out (only optional ones
    may be); ``present`` names the columns the header has, in COLUMNS order.
    """

    positions: list[int]
    names: list[str]
    start: int
    row: int
    text_encoding: str = "UTF-8"
    split_hint: str = "Quote fields that contain commas."
    # Workbooks leave out the empty cells at the end of a row; CSV rows must be whole.
    pad_short_rows: bool = False
    max_field_bytes: int = field(default_factory=max_field_bytes)
    unnamed: list[int] = field(default_factory=list)
    width: int = field(init=False)
    present: tuple[str, ...] = field(init=False)
    pick: Callable[[list[str]], Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.width = len(self.names)
        self.present = tuple(c for c, p in zip(COLUMNS, self.positions, strict=True) if p >= 0)
        if len(self.present) == len(COLUMNS):
            # The cells of COLUMNS, in that order, from a row (a C-level getter: it runs per row).
            self.pick = operator.itemgetter(*self.positions)
        else:
            # A column the header leaves out reads as an empty cell.
            positions = tuple(self.positions)
            self.pick = lambda fields: tuple([fields[p] if p >= 0 else "" for p in positions])

    @property
    def missing(self) -> tuple[str, ...]:
        """The optional columns the header leaves out, in COLUMNS order."""
        return tuple(c for c in COLUMNS if c not in self.present)

    @property
    def header(self) -> str:
        """The file's own header as the user wrote it (lowercased): ``name,manager``."""
        return ",".join(n for n in self.names if n)


def letter(index: int) -> str:
    """The spreadsheet letter of the column at 0-based ``index`` (0 → A, 26 → AA)."""
    return get_column_letter(index + 1) if index < 16384 else f"number {index + 1:,}"


def read_header(reader: Reader) -> Layout:
    """Find the header and check it.

    The header is the first row with a value, or a later one (within the first
    HEADER_SEARCH rows with values) that could be a header (it names every
    column, or names ``name`` and no unknown column): title rows above a header
    (a merged "Teams 2026" cell) are skipped. Only ``name`` is required; the
    optional columns may be left out. Raises ``FileProblem`` with the message
    the user reads.
    """
    position, row = reader.start()
    first: tuple[list[str], Record] | None = None
    # The first row of known column names only, that lacks a required one: the message's.
    known: tuple[list[str], Record] | None = None
    seen = 0
    for record in reader.records(position, row):
        names = [f.strip().lower() for f in record.fields]
        if not record.error and not any(names):
            continue  # blank rows above the header
        if first is None:
            if record.error:
                raise FileProblem(
                    f"The header row (row {record.row}) is not valid CSV. {HEADER_RULE}"
                )
            if record.bad_text:
                raise FileProblem(
                    f"The header row (row {record.row}) is not valid text. Save the file as "
                    '"CSV UTF-8" or as an Excel workbook (.xlsx) and upload it again.'
                )
            first = names, record
        if not record.error and _could_be_header(names):
            return _with_reader(_layout(names, record), reader)
        if known is None and not record.error and {n for n in names if n} <= _COLUMN_SET:
            known = names, record
        seen += 1
        if seen >= HEADER_SEARCH:
            break
    if first is None:
        raise FileProblem(f"The file has no header. {HEADER_RULE}")
    return _with_reader(_layout(*(known or first)), reader)


def _could_be_header(names: list[str]) -> bool:
    """Every column named (the old rule: its unknown columns are then named in the message),
    or the required ones and no unknown column."""
    if _COLUMN_SET.issubset(names):
        return True
    named = {n for n in names if n}
    return _REQUIRED_SET.issubset(named) and named.issubset(_COLUMN_SET)


def _with_reader(layout: Layout, reader: Reader) -> Layout:
    layout.text_encoding = getattr(reader, "text_encoding", layout.text_encoding)
    layout.split_hint = getattr(reader, "split_hint", layout.split_hint)
    layout.pad_short_rows = getattr(reader, "pad_short_rows", False)
    return layout


def _layout(names: list[str], record: Record) -> Layout:
    # One pass (not names.count per name): a header may have 100,000 columns.
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name and name in seen:
            raise FileProblem(
                f'The header (row {record.row}) names the column "{_shown(name, 50)}" twice, in '
                f"columns {letter(seen[name])} and {letter(i)}. Each column may appear only "
                f"once: {HEADER}."
            )
        seen.setdefault(name, i)
    unknown = [
        f'"{_shown(n, 50)}" (column {letter(i)})'
        for i, n in enumerate(names)
        if n and n not in COLUMNS
    ]
    if len(unknown) > MAX_SHOWN_COLUMNS:
        more = len(unknown) - MAX_SHOWN_COLUMNS
        unknown = [*unknown[:MAX_SHOWN_COLUMNS], f"and {more:,} more"]
    missing = [c for c in REQUIRED if c not in seen]
    if unknown or missing:
        parts = []
        if missing:
            plural = "s" if len(missing) > 1 else ""
            parts.append(f"misses the column{plural} {', '.join(missing)}")
        if unknown:
            plural = "s" if len(unknown) > 1 else ""
            parts.append(f"has the unknown column{plural} {', '.join(unknown)}")
        raise FileProblem(f"The header (row {record.row}) {' and '.join(parts)}. {HEADER_RULE}")
    return Layout(
        positions=[seen.get(c, -1) for c in COLUMNS],
        names=names,
        start=record.end,
        row=record.row,
        unnamed=[i for i, n in enumerate(names) if not n],
    )


def _shown(value: str, limit: int = 200) -> str:
    value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value if len(value) <= limit else value[:limit] + "…"


def _problem(row: int, layout: Layout, index: int, value: str, message: str) -> Problem:
    name = layout.names[index] if 0 <= index < layout.width else ""
    return Problem(row, name, _shown(value), message, letter(index) if index >= 0 else "")


def check(record: Record, layout: Layout) -> tuple[tuple[str, ...] | None, list[Problem]]:
    """The row's values in COLUMNS order, or None and what is wrong with it.

    A row whose every cell is empty gives ``((), [])``: not a team, not a problem.
    Written for speed: it runs once per row, twice per import.
    """
    row = record.row
    if record.error:
        return None, [_problem(row, layout, record.error_column, "", record.error)]
    fields = record.fields
    if len(fields) == layout.width and not layout.unnamed:
        # The common case: the header's cells exactly, each one named.
        values = tuple(map(str.strip, layout.pick(fields)))
    else:
        picked, problem = _tidy(record, layout)
        if problem or not picked:
            return None if problem else (), [problem] if problem else []
        values = picked
    joined = "".join(values)
    if not joined:
        return (), []
    # One cheap test over all values; the rare cases are sorted out in _unusual.
    if "\x00" in joined or '="' in joined or len(joined) > layout.max_field_bytes // 4:
        values, unusual = _unusual(record, layout, values)
        if unusual:
            return None, [unusual]
    if record.bad_text:
        return None, [_bad_text(record, layout, values)]
    name, _description, manager, _members = values
    if name and len(name) <= NAME_MAX and len(manager) <= MANAGER_MAX:
        return values, []
    problems = []
    positions = layout.positions
    if not name:
        problems.append(
            _problem(row, layout, positions[0], name, "The name is empty; every team needs a name.")
        )
    elif len(name) > NAME_MAX:
        message = (
            f"The name is {thousands(len(name))} characters long; at most {thousands(NAME_MAX)} "
            "are allowed."
        )
        problems.append(_problem(row, layout, positions[0], name, message))
    if len(manager) > MANAGER_MAX:
        message = (
            f"The manager is {thousands(len(manager))} characters long; at most "
            f"{thousands(MANAGER_MAX)} are allowed."
        )
        problems.append(_problem(row, layout, positions[2], manager, message))
    return None, problems


def _tidy(record: Record, layout: Layout) -> tuple[tuple[str, ...], Problem | None]:
    """The values of a row that is not simply the header's cells; () for a blank row."""
    fields = [f.strip() for f in record.fields]
    if not any(fields):
        return (), None
    if len(fields) != layout.width:
        fields, problem = _fit(record, fields, layout)
        if problem:
            return (), problem
    for i in layout.unnamed:
        if fields[i]:
            message = (
                f"Column {letter(i)} has no name in the header but holds a value in this row. "
                "Delete the value, or the column."
            )
            return (), _problem(record.row, layout, i, fields[i], message)
    return tuple(layout.pick(fields)), None


def _fit(record: Record, fields: list[str], layout: Layout) -> tuple[list[str], Problem | None]:
    """Pad a short row whose missing cells are unnamed, or drop empty cells past the header."""
    width = layout.width
    if len(fields) > width and not any(fields[width:]):
        return fields[:width], None
    if len(fields) < width and (layout.pad_short_rows or not any(layout.names[len(fields) :])):
        return fields + [""] * (width - len(fields)), None
    n = len(fields)
    named = ", ".join(n for n in layout.names if n)
    # Too many fields: a value holding the separator was not quoted. Too few: cells
    # are missing, and quoting has nothing to do with it.
    missing = ", ".join(name for name in layout.names[n:] if name)
    hint = (
        layout.split_hint
        if n > width
        else f"Fill in the missing values ({missing}), or leave them empty: one separator for each."
    )
    message = f"The row has {plural(n, 'field')}; expected {thousands(width)} ({named}). {hint}"
    value = _shown(",".join(record.fields))
    return fields, Problem(record.row, "", value, message)


def _bad_text(record: Record, layout: Layout, values: tuple[str, ...]) -> Problem:
    index = next(
        (i for i, v in enumerate(values) if not v.isascii() and _has_bad(v)),
        -1,
    )
    column = layout.positions[index] if index >= 0 else -1
    value = values[index] if index >= 0 else ""
    message = NOT_UTF8
    if layout.text_encoding != "UTF-8":
        message = f"The row is not valid {layout.text_encoding} text. Save the file as CSV UTF-8."
    return _problem(record.row, layout, column, value, message)


def _unusual(
    record: Record, layout: Layout, values: tuple[str, ...]
) -> tuple[tuple[str, ...], Problem | None]:
    """Values with a NUL byte, Excel's ``="0042"``, or past the field size limit."""
    limit = layout.max_field_bytes
    for i, value in enumerate(values):
        column = layout.positions[i]
        if "\x00" in value:
            message = "The row contains a NUL byte (binary data). Remove it."
            return values, _problem(record.row, layout, column, "", message)
        if len(value) * 4 > limit and len(value.encode("utf-8", "surrogateescape")) > limit:
            message = (
                f"The value is larger than {exact_size(limit)}, the most a cell may hold. "
                "Shorten it."
            )
            return values, _problem(record.row, layout, column, value, message)
    return tuple([_unformula(v) for v in values]), None


def _unformula(value: str) -> str:
    """Excel's way to keep leading zeros in a CSV cell, ``="0042"``, is the text ``0042``."""
    if value[:2] == '="' and value[-1:] == '"' and len(value) > 2 and '"' not in value[2:-1]:
        return value[2:-1]
    return value


def _has_bad(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)
