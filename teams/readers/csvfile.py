"""CSV text in the dialects spreadsheets write, read record by record at exact byte offsets.

The file is read in binary and split into lines here; each line is decoded and
fed to the ``csv`` module one at a time. It pulls only the lines it needs to
complete a record, so after each record we know the byte offset where the next
one starts, even when a quoted field spans several lines. A checkpoint is such
an offset: a resumed import seeks there instead of reading from the start.

What a spreadsheet may write, and how it is found:
- the encoding: a byte order mark (UTF-8, UTF-16, UTF-32), else UTF-8, else the
  detected legacy code page (``encodings.detect``), or the ``encoding`` option;
- the delimiter: Excel's ``sep=X`` first line, else the one of comma,
  semicolon, tab and pipe that splits the header into the most known column
  names (the header must name them, so this is never a guess about data);
- line ends: LF and CRLF, or CR alone (old Mac Excel).

A line longer than a row can legitimately be (every cell at the field size
limit) is never held whole: it is skipped and reported, so memory stays
bounded whatever the file.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from typing import IO, Any

from jobs.formatting import exact_size
from teams.readers import FileProblem, Reader, Record, max_field_bytes, register
from teams.readers.encodings import detect, from_bom, shown_name

DELIMITERS = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "vertical bars"}
HEAD_BYTES = 64 * 1024
SAMPLE_BYTES = 1024 * 1024
# Files people upload by mistake, known by their first bytes: named in the message.
NOT_TEXT = (
    (b"\xd0\xcf\x11\xe0", "an Excel 97-2003 workbook (.xls)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x89PNG", "a PNG image"),
)
# Names a workbook is saved under: such a file that is not text was meant as one.
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xltx", ".xltm")
# Control bytes text never holds (tab, LF, FF, CR and Excel's end-of-file mark excepted).
CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x19\x1b-\x1f\x7f]")
# The columns the import knows: the delimiter is the one that finds most of them in the
# header (only name is required, so a one-column file is read with commas).
KNOWN = ("name", "description", "manager", "members")


TOO_BIG = "too big"


class _Overlong(Exception):
    """A line longer than any valid row; it was skipped."""


class _Lines:
    """Lines of a UTF-8-like file ending in LF, decoded for ``csv.reader``.

    ``readline`` with a limit (in C) is the fast path most files take.
    """

    def __init__(self, fh: IO[bytes], offset: int, codec: str, max_line: int) -> None:
        self.fh = fh
        self.offset = offset
        self.codec = codec
        self.max_line = max_line
        self.bad = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw = self.fh.readline(self.max_line)
        if not raw:
            raise StopIteration
        self.offset += len(raw)
        if len(raw) == self.max_line and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # skip the rest, a piece at a time
                raw = self.fh.readline(HEAD_BYTES)
                self.offset += len(raw)
            raise _Overlong
        try:
            return raw.decode(self.codec)
        except UnicodeDecodeError:
            # Keep reading so every bad row is reported; the row is marked bad.
            self.bad = True
            return raw.decode(self.codec, "surrogateescape")


class _SplitLines(_Lines):
    """Lines ending in any encoded terminator (CR alone, UTF-16/32 line feeds).

    A terminator counts only where a character starts (``unit`` bytes apart).
    """

    def __init__(
        self, fh: IO[bytes], offset: int, codec: str, max_line: int, newline: bytes, unit: int
    ) -> None:
        super().__init__(fh, offset, codec, max_line)
        self.newline = newline
        self.unit = unit
        self.buf = b""
        self.pos = 0

    def _find(self, start: int) -> int:
        i = self.buf.find(self.newline, start)
        while i != -1 and (i - self.pos) % self.unit:
            i = self.buf.find(self.newline, i + 1)
        return i

    def _more(self) -> bool:
        chunk = self.fh.read(HEAD_BYTES)
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        return bool(chunk)

    def __next__(self) -> str:
        searched = self.pos
        overlong = False
        while True:
            i = self._find(searched)
            if i != -1:
                end = i + len(self.newline)
                raw, self.pos = self.buf[self.pos : end], end
                break
            if len(self.buf) - self.pos > self.max_line:
                overlong = True  # drop what is buffered, keep looking for the line end
                self.offset += len(self.buf) - self.pos
                self.buf, self.pos = b"", 0
            searched = self.pos + max(0, len(self.buf) - self.pos - len(self.newline))
            searched -= (searched - self.pos) % self.unit
            if not self._more():
                raw, self.buf, self.pos = self.buf[self.pos :], b"", 0
                break
        self.offset += len(raw)
        if overlong:
            raise _Overlong
        if not raw:
            raise StopIteration
        try:
            return raw.decode(self.codec)
        except UnicodeDecodeError:
            self.bad = True
            return raw.decode(self.codec, "surrogateescape")


def _csv_error_message(text: str, delimiter: str) -> str:
    if "unexpected end of data" in text:
        return (
            'A quoted field is never closed: a " opens a field that runs to the end of the '
            'file. Close the quote, and write a quote inside a quoted field as "".'
        )
    if "NUL" in text:
        return "The row contains a NUL byte (binary data). Remove it and upload the file again."
    if "new-line character" in text:
        return (
            "A value holds a line break but is not in double quotes. Put the value in double "
            "quotes, or remove the line break."
        )
    if "expected after" in text:
        return (
            f"A quote closes the value but is not followed by a {DELIMITERS[delimiter][:-1]}. "
            "A value that contains quotes must itself be quoted, with each quote inside it "
            'written as "".'
        )
    return (
        "The row is not valid CSV. A value that contains quotes must itself be quoted, with "
        'each quote inside it written as "".'
    )


def _binary(head: bytes) -> bool:
    """True if ``head`` (the file's first bytes) is not text: a NUL, or 1 byte in 20 a control."""
    sample = head[:HEAD_BYTES]
    return b"\x00" in sample or len(CONTROL.findall(sample)) * 20 > len(sample)


def too_big_message() -> str:
    limit = max_field_bytes()
    return (
        f"The value is larger than {exact_size(limit)}, the most a cell "
        "may hold. Shorten it; if it should be short, look for a quote that is never closed."
    )


@register
class CsvReader(Reader):
    """CSV text: the position is a byte offset, the row number as a spreadsheet counts."""

    name = "csv"

    def start(self) -> tuple[int, int]:
        known = self.known
        self.fh.seek(0)
        head = self.fh.read(SAMPLE_BYTES)
        if not head:
            raise FileProblem(
                "The file is empty. Upload a CSV file or a workbook whose first row names the "
                "columns: name, and any of description, manager, members."
            )
        for magic, what in NOT_TEXT:
            if head.startswith(magic):
                raise FileProblem(
                    f"The file is {what}, not a CSV text file or an .xlsx workbook. Save it as "
                    '"CSV UTF-8" or as an Excel workbook (.xlsx) and upload it again.'
                )
        bom = from_bom(head)
        filename = str(self.options.get("filename") or "")
        if not bom and filename.lower().endswith(WORKBOOK_SUFFIXES) and _binary(head):
            # Named as a workbook but no ZIP archive (sniff saw no "PK"): saying "not a CSV
            # text file" would answer a question the user never asked.
            raise FileProblem(
                f'The file "{filename}" is not a readable spreadsheet workbook: an .xlsx '
                "workbook is a ZIP archive and this file is not one (it is damaged, or another "
                "kind of file renamed). Open it in Excel or LibreOffice Calc, save it as an "
                'Excel workbook (.xlsx) or as "CSV UTF-8", and upload it again.'
            )
        offset = bom[1] if bom else 0
        if "encoding" in known:
            self.codec = str(known["encoding"])
        elif bom:
            self.codec = bom[0]
        else:
            self.codec = self.options.get("encoding") or detect(head)
        text = head[offset:HEAD_BYTES].decode(self.codec, "replace")
        self.newline = known.get("newline") or ("\r" if "\r" in text and "\n" not in text else "\n")
        self.unit = len("\n".encode(self.codec))
        first = text.split(self.newline, 1)[0]
        if first.strip("\r\n ").lower().startswith("sep=") and len(first.strip("\r\n ")) == 5:
            sep = first.strip("\r\n ")[4]
            offset += len((first + self.newline).encode(self.codec))
            text = text[len(first) + 1 :]
            self.delimiter = known.get("delimiter", sep)
        else:
            self.delimiter = known.get("delimiter") or _delimiter(text, self.newline)
        header = next((line for line in text.split(self.newline) if line.strip()), "")
        if "\x00" in header:
            raise FileProblem(
                "The file is not a CSV text file: its first row contains binary data. Save "
                'it as "CSV UTF-8" or as an Excel workbook (.xlsx) and upload it again.'
            )
        self.max_line = max_field_bytes() * (len(KNOWN) + 1)
        where = DELIMITERS.get(self.delimiter, f'"{self.delimiter}"')
        self.description = f"CSV, {shown_name(self.codec)}, values separated by {where}"
        if self.options.get("sheet"):
            self.description += " (a CSV file has no sheets: the sheet option was not used)"
        self.text_encoding = shown_name(self.codec)
        self.split_hint = f"Quote fields that contain {where}."
        return offset, 0

    def decided(self) -> dict[str, Any]:
        return {
            "format": self.name,
            "encoding": self.codec,
            "delimiter": self.delimiter,
            "newline": self.newline,
        }

    def _lines(self, offset: int) -> _Lines:
        if self.newline == "\n" and self.unit == 1:
            return _Lines(self.fh, offset, self.codec, self.max_line)
        newline = self.newline.encode(self.codec)
        return _SplitLines(self.fh, offset, self.codec, self.max_line, newline, self.unit)

    def records(self, position: int, row: int) -> Iterator[Record]:
        # The csv module's own limit stops a quoted value that spans many lines.
        csv.field_size_limit(max_field_bytes() + 1)
        self.fh.seek(position)
        lines = self._lines(position)
        reader = csv.reader(lines, delimiter=self.delimiter, strict=True)
        while True:
            start = lines.offset
            try:
                fields = next(reader)
            except StopIteration:
                return
            except _Overlong:
                row += 1
                yield self._bad_row(row, start, lines.offset, TOO_BIG)
            except csv.Error as exc:
                row += 1
                kind = TOO_BIG if "field limit" in str(exc) else str(exc)
                yield self._bad_row(row, start, lines.offset, kind)
            else:
                row += 1
                yield Record(row, fields, lines.offset, bad_text=lines.bad)
            lines.bad = False

    def _bad_row(self, row: int, start: int, end: int, kind: str) -> Record:
        """A row that cannot be read; ``kind`` is TOO_BIG or the csv module's error."""
        big = kind == TOO_BIG
        message = too_big_message() if big else _csv_error_message(kind, self.delimiter)
        return Record(row, [], end, error=message, error_column=self._column_at(start, kind))

    def _column_at(self, start: int, kind: str) -> int:
        """The index of the cell at fault in the row starting at byte ``start``, or -1.

        Reads the start of the row again (bounded by the longest valid row).
        """
        if "unexpected end of data" in kind:
            return -1
        back = self.fh.tell()
        try:
            self.fh.seek(start)
            text = self.fh.read(self.max_line).decode(self.codec, "replace")
        finally:
            self.fh.seek(back)
        return _field_at(text, self.delimiter, max_field_bytes() if kind == TOO_BIG else -1)


def _field_at(text: str, delimiter: str, limit: int) -> int:
    """The index of the first field longer than ``limit`` in the row ``text`` starts with.

    With ``limit`` -1, the index of the field where the row stops being valid
    (a bare line break, a stray quote). A scan with a regular expression: it
    measures the fields without copying them, so a 5 MiB line costs no more.
    """
    d = re.escape(delimiter)
    field = re.compile(f'"(?:[^"]+|"")*"?|[^"{d}\r\n]*')
    pos = index = 0
    while True:
        end = field.match(text, pos).end()  # type: ignore[union-attr]  # always matches
        if 0 <= limit < end - pos or end >= len(text) or text[end] != delimiter:
            return index
        pos, index = end + 1, index + 1


def _delimiter(text: str, newline: str) -> str:
    """The delimiter that finds the most known column names in the first non-blank line."""
    line = next((line for line in text.split(newline) if line.strip(" \t\r,;|")), "")
    best, found = ",", 0
    for delimiter in DELIMITERS:
        try:
            fields = next(csv.reader([line.strip("\r")], delimiter=delimiter), [])
        except csv.Error:
            continue
        hits = len({f.strip().lower() for f in fields}.intersection(KNOWN))
        if hits > found:
            best, found = delimiter, hits
    return best
