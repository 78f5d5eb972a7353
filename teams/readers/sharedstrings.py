"""A workbook's shared strings kept in a temporary file, so memory does not grow with them.

An .xlsx file stores each distinct text once, in ``xl/sharedStrings.xml``, and
cells refer to it by index. openpyxl loads that table whole, even in read-only
mode: for a sheet of 200,000 teams with distinct names and descriptions that
was 77 MiB, for 1,000,000 about five times more. Here the table is streamed
once into a temporary file (UTF-8 texts, and a fixed-size index of their
offsets), and a cell's text is read back with ``os.pread`` when the sheet
refers to it. Memory stays flat; a lookup costs two small reads, served by the
page cache.

Each text is stored decoded (``celltext.rst_text``: ECMA-376 Part 1, §22.9.2.19),
and the sheets are ``celltext.TextWorksheet``, which decode the text a cell
holds itself.
"""

from __future__ import annotations

import os
import struct
import tempfile
from typing import IO, Any

from django.conf import settings
from openpyxl.reader.excel import ExcelReader
from openpyxl.xml.constants import SHARED_STRINGS, SHEET_MAIN_NS
from openpyxl.xml.functions import iterparse

from teams.readers.celltext import TextWorksheet, rst_text

ENTRY = struct.Struct("<QI")  # offset, length of one text in the data file
STRING_TAG = f"{{{SHEET_MAIN_NS}}}si"


class DiskStrings:
    """The shared strings table as a read-only sequence backed by temporary files."""

    def __init__(self, xml_source: IO[bytes]) -> None:
        folder = settings.FILE_UPLOAD_TEMP_DIR
        self._data = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 (closed in close())
        self._index = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115
        self._count = 0
        offset = 0
        entries = bytearray()
        root = None
        for event, node in iterparse(xml_source, events=("start", "end")):
            if root is None:
                root = node  # <sst>: cleared as we go, so parsed strings do not pile up
            if event != "end" or node.tag != STRING_TAG:
                continue
            raw = rst_text(node).encode("utf-8", "surrogatepass")
            root.clear()
            self._data.write(raw)
            entries += ENTRY.pack(offset, len(raw))
            offset += len(raw)
            self._count += 1
            if len(entries) >= 1 << 20:
                self._index.write(entries)
                entries.clear()
        self._index.write(entries)
        self._data.flush()
        self._index.flush()

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i: int) -> str:
        if not 0 <= i < self._count:
            raise IndexError(i)
        offset, length = ENTRY.unpack(os.pread(self._index.fileno(), ENTRY.size, i * ENTRY.size))
        return os.pread(self._data.fileno(), length, offset).decode("utf-8", "surrogatepass")

    def close(self) -> None:
        self._data.close()
        self._index.close()


class StreamingReader(ExcelReader):
    """openpyxl's reader, with the shared strings on disk and cell text decoded.

    Read-only mode only.
    """

    def read_strings(self) -> None:
        part = self.package.find(SHARED_STRINGS)
        self.shared_strings: Any = []
        if part is not None:
            with self.archive.open(part.PartName[1:]) as src:
                self.shared_strings = DiskStrings(src)

    def read_worksheets(self) -> None:
        # ExcelReader.read_worksheets in read-only mode, with TextWorksheet.
        for sheet, rel in self.parser.find_sheets():
            if rel.target not in self.valid_files:
                continue
            if "chartsheet" in rel.Type:
                self.read_chartsheet(sheet, rel)
                continue
            ws = TextWorksheet(self.wb, sheet.name, rel.target, self.shared_strings)
            ws.sheet_state = sheet.state
            self.wb._sheets.append(ws)


def load_workbook(fh: IO[bytes]) -> tuple[Any, DiskStrings | None]:
    """A read-only workbook whose shared strings live on disk, and that table (to close)."""
    reader = StreamingReader(fh, read_only=True, data_only=True)
    reader.read()
    strings = reader.shared_strings
    return reader.wb, strings if isinstance(strings, DiskStrings) else None
