"""Cell text read from a workbook as the text it stands for, wherever the sheet keeps it.

A cell's text is an ST_Xstring (ECMA-376 Part 1, §22.9.2.19; see
collect/xlsxtext.py): CR is stored ``_x000D_``, the text ``_x000D_`` is stored
``_x005F_x000D_``. A sheet keeps text in four places, and each is decoded here,
once, with ``collect.xlsxtext.decode``:

- shared strings (``<si>`` in ``xl/sharedStrings.xml``: Excel, openpyxl),
  through ``rst_text`` (sharedstrings.py);
- inline strings (``<is>`` in the cell: XlsxWriter's constant-memory mode,
  so ``collect fake-teams`` and our XLSX export, and other streaming writers);
- rich text, either of the above in runs (``<r><t>``): each run's text is an
  ST_Xstring of its own;
- the text a formula gave (``<v>`` of a ``t="str"`` cell).

openpyxl 3.1 decodes none of them (it deletes ``x005F_`` from shared strings
and leaves inline strings as stored), so its sheet parser is replaced here
for the read-only worksheets our reader opens.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from openpyxl.cell.read_only import EMPTY_CELL
from openpyxl.worksheet._read_only import ReadOnlyWorksheet
from openpyxl.worksheet._reader import INLINE_STRING, WorkSheetParser
from openpyxl.xml.constants import SHEET_MAIN_NS

from collect.xlsxtext import decode

TEXT_TAG = f"{{{SHEET_MAIN_NS}}}t"
RUN_TAG = f"{{{SHEET_MAIN_NS}}}r"


def rst_text(node: Any) -> str:
    """The text of a rich string (``<si>`` or ``<is>``, CT_Rst), decoded run by run.

    Its ``<t>``, or the ``<t>`` of each run (``<r>``); a phonetic reading
    (``<rPh>``) is not part of the cell's text.
    """
    parts = []
    plain = node.find(TEXT_TAG)
    if plain is not None and plain.text:
        parts.append(decode(plain.text))
    for run in node.iterfind(RUN_TAG):
        text = run.findtext(TEXT_TAG)
        if text:
            parts.append(decode(text))
    return "".join(parts)


class TextParser(WorkSheetParser):
    """openpyxl's sheet parser, with inline strings and formula text decoded.

    Shared strings come decoded from the table the parser is given
    (sharedstrings.DiskStrings).
    """

    def parse_cell(self, element: Any) -> dict[str, Any]:
        stored_as = element.get("t")
        inline = element.find(INLINE_STRING) if stored_as == "inlineStr" else None
        if inline is not None:
            # Read here, not by openpyxl too (undecoded, and at three times the cost
            # of rst_text). The element is the parser's: cleared when its row is read.
            element.remove(inline)
        cell: dict[str, Any] = super().parse_cell(element)
        if inline is not None and cell["data_type"] == "inlineStr":
            cell["data_type"], cell["value"] = "s", rst_text(inline)
        elif stored_as == "str" and cell["data_type"] == "s":
            cell["value"] = decode(cell["value"])
        return cell


class TextWorksheet(ReadOnlyWorksheet):
    """openpyxl's read-only worksheet, reading its cells with ``TextParser``."""

    def _cells_by_row(
        self,
        min_col: int,
        min_row: int,
        max_col: int | None,
        max_row: int | None,
        values_only: bool = False,
    ) -> Iterator[Any]:
        # openpyxl 3.1's ReadOnlyWorksheet._cells_by_row, with TextParser for
        # WorkSheetParser (the one it names cannot be swapped otherwise).
        filler = None if values_only else EMPTY_CELL
        max_col = max_col or self.max_column
        max_row = max_row or self.max_row
        empty_row: Any = []
        if max_col is not None:
            empty_row = (filler,) * (max_col + 1 - min_col)

        counter = min_row
        idx = 1
        with self._get_source() as src:
            parser = TextParser(
                src,
                self._shared_strings,
                data_only=self.parent.data_only,
                epoch=self.parent.epoch,
                date_formats=self.parent._date_formats,
                timedelta_formats=self.parent._timedelta_formats,
            )
            for idx, row in parser.parse():
                if max_row is not None and idx > max_row:
                    break
                for _ in range(counter, idx):  # rows the file leaves out
                    counter += 1
                    yield empty_row
                if counter <= idx:
                    yield self._get_row(row, min_col, max_col, values_only)
                    counter += 1

        if max_row is not None and max_row < idx:
            for _ in range(counter, max_row + 1):
                yield empty_row
