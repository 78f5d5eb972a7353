"""Readers of the files an import accepts: one small class per format, chosen by the file.

Each reader turns a file into records (the cells of one spreadsheet row, as
text) with a *position* from which reading can resume: a byte offset for CSV
text, a row index for a workbook. A checkpoint stores that position, so a
resumed or taken-over import starts exactly where the last committed batch
ended, whatever the format.

The import kind asks ``open_reader`` for a reader and knows none of them.
A reader is chosen by the file's first bytes (a ZIP archive is a workbook),
never by the name the user gave it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, ClassVar

from django.conf import settings


class FileProblem(Exception):
    """The file as a whole cannot be imported (not a table, empty, bad header).

    The message is for the person who uploaded the file.
    """


@dataclass(slots=True)
class Record:
    """One row of the file: its number as a spreadsheet shows it, its cells, where it ends.

    ``end`` is the reader's position just after this row (a byte offset or a
    row index). ``error`` is set when the row cannot be read (the message for
    the user), with ``error_column`` the index of the cell at fault, or -1.
    ``bad_text`` marks cells holding bytes the encoding cannot read.
    """

    row: int
    fields: list[str]
    end: int
    error: str = ""
    error_column: int = -1
    bad_text: bool = False


class Reader:
    """What every reader does. Subclasses set ``name`` and implement the methods.

    ``known`` is what an earlier run of the same job decided (encoding,
    delimiter, ...), from the checkpoint: a resumed run reads the file the
    same way even if detection would now say otherwise.
    """

    name: ClassVar[str]
    # Shown on the job page: how the file was read ("CSV, UTF-8, commas").
    description: str = ""

    def __init__(self, fh: IO[bytes], *, options: dict[str, Any], known: dict[str, Any]) -> None:
        self.fh = fh
        self.options = options
        self.known = known

    def start(self) -> tuple[int, int]:
        """Open the file; return the position of its first row and the row number before it.

        Raises ``FileProblem``.
        """
        raise NotImplementedError

    def records(self, position: int, row: int) -> Iterator[Record]:
        """The rows after ``position``, where ``row`` is the number of the row before it."""
        raise NotImplementedError

    def extent(self) -> tuple[int, str]:
        """How far positions go, for the check's progress: ``(last position, unit)``.

        The file's size in ``"bytes"`` by default (positions are byte offsets);
        0 when unknown.
        """
        try:
            return self.fh.seek(0, 2), "bytes"
        except (OSError, ValueError):
            return 0, "bytes"

    def decided(self) -> dict[str, Any]:
        """What ``start`` decided, to be kept in the checkpoint (JSON)."""
        return {}

    def close(self) -> None:
        """Release what the reader holds (the file itself is closed by its owner)."""


READERS: dict[str, type[Reader]] = {}


def register(cls: type[Reader]) -> type[Reader]:
    """Class decorator: make a reader available under its ``name``."""
    READERS[cls.name] = cls
    return cls


ZIP_MAGIC = b"PK\x03\x04"


def sniff(fh: IO[bytes]) -> str:
    """The name of the reader for this file, from its first bytes."""
    fh.seek(0)
    head = fh.read(4)
    return "xlsx" if head == ZIP_MAGIC else "csv"


def open_reader(
    fh: IO[bytes], *, options: dict[str, Any], known: dict[str, Any] | None = None
) -> Reader:
    """A reader for ``fh``: the one ``known`` names, else the one its first bytes call for."""
    # Registration happens on import of the modules below.
    from teams.readers import csvfile, workbook  # noqa: F401

    known = known or {}
    name = str(known.get("format") or sniff(fh))
    return READERS[name](fh, options=options, known=known)


def max_field_bytes() -> int:
    """The largest value a cell may hold, in bytes (COLLECT_IMPORT_MAX_FIELD_BYTES)."""
    return int(settings.COLLECT_IMPORT_MAX_FIELD_BYTES)
