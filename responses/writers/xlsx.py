"""XLSX: typed cells, header frozen, written by XlsxWriter in constant-memory mode.

An XLSX file is a zip, which cannot be appended to and resumed. So while the
export runs, each page is appended to a plain *part* file (one JSON array per
row, the stored values as text: exact and small) whose byte size is the
checkpoint, like every other format. ``finish`` then reads the part file once
and streams it into a workbook with XlsxWriter's ``constant_memory`` mode
(each row goes to disk as it is written, strings inline), into a temporary
name that is renamed over the final name when complete; only then is the part
deleted. A crash during that step runs it again from the part; a pause or
stop is honoured there too (the heartbeat), and the part stays until then.

Text cells read back as exactly the stored text, CR, control characters and
text such as ``_x000D_`` included: ``collect.xlsxtext.ExactWorkbook`` writes
the escapes of ECMA-376 Part 1, §22.9.2.19, where XlsxWriter's own get some
texts wrong.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar

from django.utils import timezone

from collect.xlsxtext import ExactWorkbook
from responses import csvrows
from responses.csvrows import Record
from responses.writers.base import Writer

# Excel's limit is 1,048,576 rows a sheet, the header included; more go on a next sheet.
SHEET_ROWS = 1_048_576
TIMESTAMP_FORMAT = "yyyy-mm-dd hh:mm:ss.000"
WIDTHS = [10, 24, 14, 28, 10, 8, 8, 16, 12, 12]


def excel_time(iso: str) -> dt.datetime:
    """The local date-time of an ISO 8601 timestamp, cut to Excel's milliseconds.

    A spreadsheet cell holds no zone and at most milliseconds; cutting (not
    rounding) keeps a response at 23:59:59.999999 on its own day.
    """
    moment = dt.datetime.fromisoformat(iso).replace(tzinfo=None)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class XlsxWriter(Writer):
    """Numbers as numbers, timestamps as date-times in the export's zone, booleans as booleans.

    The timestamp column's header names the zone (``timestamp (Africa/Nairobi)``).
    Every other value is a text cell (never a formula), so nothing is
    neutralised or quoted.
    """

    name: ClassVar[str] = "xlsx"
    label: ClassVar[str] = "Excel workbook (XLSX)"
    extension: ClassVar[str] = "xlsx"
    media_type: ClassVar[str] = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

    def part_name(self, final: str) -> str:
        return final + ".rows"

    def encode(self, records: list[Record], *, first: bool) -> bytes:
        stamp, number, dumps = csvrows.timestamp, csvrows.number, json.dumps
        lines = [
            dumps(
                [pk, stamp(ts), user, name, gender, books, music, mobile, number(lat), number(lon)],
                ensure_ascii=False,
            )
            for pk, ts, user, name, gender, books, music, mobile, lat, lon in records
        ]
        lines.append("")
        return "\n".join(lines).encode()

    def finish(self, part: str, final: str, size: int, heartbeat: Callable[[], None]) -> None:
        if not os.path.exists(part) and os.path.exists(final):
            return  # made by a run that stopped before it could say so
        # XlsxWriter's row files and the workbook being written, removed whatever happens
        # (a pause or stop during this step leaves nothing half-made behind).
        work = final + ".work"
        os.makedirs(work, exist_ok=True)
        try:
            temporary = os.path.join(work, os.path.basename(final))
            workbook = ExactWorkbook(temporary, {"tmpdir": work})
            self._fill(workbook, part, size, heartbeat)
            workbook.close()
            os.replace(temporary, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        os.remove(part)

    def _fill(self, workbook: Any, part: str, size: int, heartbeat: Callable[[], None]) -> None:
        bold = workbook.add_format({"bold": True})
        # A cell holds no zone, so the header names it.
        header = [
            f"timestamp ({timezone.get_current_timezone_name()})" if name == "timestamp" else name
            for name in csvrows.HEADER
        ]
        when = workbook.add_format({"num_format": TIMESTAMP_FORMAT})
        sheet, row = None, SHEET_ROWS
        with open(part, "rb") as fh:
            for n, line in enumerate(_lines(fh, size)):
                if row == SHEET_ROWS:
                    count = len(workbook.worksheets())
                    title = f"responses {count + 1}" if count else "responses"
                    sheet = workbook.add_worksheet(title)
                    sheet.write_row(0, 0, header, bold)
                    sheet.freeze_panes(1, 0)
                    for col, width in enumerate(WIDTHS):
                        sheet.set_column(col, col, width)
                    row = 1
                pk, ts, user, name, gender, books, music, mobile, lat, lon = json.loads(line)
                assert sheet is not None
                sheet.write_number(row, 0, pk)
                sheet.write_datetime(row, 1, excel_time(ts), when)
                if user is not None:
                    sheet.write_string(row, 2, user)
                sheet.write_string(row, 3, name)
                sheet.write_string(row, 4, gender)
                sheet.write_boolean(row, 5, books)
                sheet.write_boolean(row, 6, music)
                if mobile:
                    sheet.write_string(row, 7, mobile)
                sheet.write_number(row, 8, float(Decimal(lat)))
                sheet.write_number(row, 9, float(Decimal(lon)))
                row += 1
                if n % 5_000 == 0:
                    heartbeat()
        if sheet is None:  # no rows, and no part lines either: still a header
            sheet = workbook.add_worksheet("responses")
            sheet.write_row(0, 0, header, bold)
            sheet.freeze_panes(1, 0)


def _lines(fh: Any, size: int) -> Any:
    """The part file's lines up to the committed ``size`` (bytes after it are not counted)."""
    left = size
    for line in fh:
        if left <= 0:
            return
        left -= len(line)
        yield line
