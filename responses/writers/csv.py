"""CSV for Excel (UTF-8 with BOM, CRLF, formulas neutralised) and raw CSV for programs."""

from __future__ import annotations

import csv
import io
from typing import ClassVar

from responses import csvrows, sqllines
from responses.csvrows import Record
from responses.writers.base import Writer


def _bool(value: bool) -> str:
    return "true" if value else "false"


class ExcelCsvWriter(Writer):
    """What a double-click in Excel opens right: the BOM tells it the file is UTF-8.

    Text cells a spreadsheet would run as formulas get a leading ``'``; a cell
    holding ``,``, ``;`` (the separator of semicolon locales), ``"`` or a line
    break is quoted, so no locale splits a cell. Lines end in CRLF.
    """

    name: ClassVar[str] = "csv"
    label: ClassVar[str] = "CSV for Excel (UTF-8 with BOM)"
    extension: ClassVar[str] = "csv"
    media_type: ClassVar[str] = "text/csv"
    sql_lines: ClassVar[str | None] = sqllines.EXCEL

    def header(self) -> bytes:
        return b"\xef\xbb\xbf" + (",".join(csvrows.HEADER) + "\r\n").encode()

    def encode(self, records: list[Record], *, first: bool) -> bytes:
        cell, stamp, number = csvrows.excel_cell, csvrows.timestamp, csvrows.number
        lines = [
            ",".join(
                (
                    str(pk),
                    stamp(ts),
                    "" if user is None else cell(user),
                    cell(name),
                    cell(gender),
                    _bool(books),
                    _bool(music),
                    cell(mobile),
                    number(lat),
                    number(lon),
                )
            )
            for pk, ts, user, name, gender, books, music, mobile, lat, lon in records
        ]
        lines.append("")
        return "\r\n".join(lines).encode()


class RawCsvWriter(Writer):
    """RFC 4180 for programs: no BOM, CRLF, quotes only where needed, every value as stored.

    Nothing is neutralised (a program reads the exact text); open the Excel
    flavour in a spreadsheet instead.
    """

    name: ClassVar[str] = "csv_raw"
    label: ClassVar[str] = "CSV for programs (RFC 4180, values exactly as stored)"
    extension: ClassVar[str] = "csv"
    media_type: ClassVar[str] = "text/csv"
    sql_lines: ClassVar[str | None] = sqllines.RAW

    def header(self) -> bytes:
        return (",".join(csvrows.HEADER) + "\r\n").encode()

    def encode(self, records: list[Record], *, first: bool) -> bytes:
        stamp, number = csvrows.timestamp, csvrows.number
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerows(
            (
                pk,
                stamp(ts),
                "" if user is None else user,
                name,
                gender,
                _bool(books),
                _bool(music),
                mobile,
                number(lat),
                number(lon),
            )
            for pk, ts, user, name, gender, books, music, mobile, lat, lon in records
        )
        return buffer.getvalue().encode()
