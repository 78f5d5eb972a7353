"""The writers on their own: XLSX assembly is redone exactly after an interruption, sheets split."""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from jobs.kinds import Interrupted
from responses import csvrows
from responses.writers import writer_for, xlsx
from teams.readers import open_reader

UTC = dt.UTC


def records(n: int) -> list[csvrows.Record]:
    start = dt.datetime(2020, 5, 15, tzinfo=UTC)
    return [
        (
            i,
            start + dt.timedelta(seconds=i, microseconds=999_999),
            None if i % 2 else "alice",
            f"=name {i}",
            "Other",
            i % 2 == 0,
            False,
            "+254712345678",
            Decimal("-1.250000"),
            Decimal(i),
        )
        for i in range(1, n + 1)
    ]


def part_file(tmp_path: Path, n: int) -> tuple[str, str, int]:
    writer = writer_for("xlsx")
    final = str(tmp_path / "responses.xlsx")
    part = writer.part_name(final)
    data = writer.header() + writer.encode(records(n), first=True)
    Path(part).write_bytes(data + b'[99, "torn')  # bytes past the checkpoint are ignored
    return part, final, len(data)


def rows_of(final: str) -> dict[str, list[tuple[object, ...]]]:
    book = openpyxl.load_workbook(final)
    return {s.title: list(s.iter_rows(values_only=True)) for s in book.worksheets}


def test_an_interrupted_assembly_leaves_the_part_and_is_redone_exactly(tmp_path: Path) -> None:
    part, final, size = part_file(tmp_path, 6_000)
    calls = []

    def pause_on_second() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise Interrupted("pausing")

    with pytest.raises(Interrupted):
        writer_for("xlsx").finish(part, final, size, pause_on_second)
    assert sorted(os.listdir(tmp_path)) == ["responses.xlsx.rows"]  # nothing half-made

    writer_for("xlsx").finish(part, final, size, lambda: None)
    assert sorted(os.listdir(tmp_path)) == ["responses.xlsx"]
    (sheet,) = rows_of(final).values()
    assert sheet[0] == tuple(n.replace("timestamp", "timestamp (UTC)") for n in csvrows.HEADER)
    assert len(sheet) == 6_001
    assert sheet[1] == (
        1,
        dt.datetime(2020, 5, 15, 0, 0, 1, 999_000),  # cut to milliseconds, same second
        None,
        "=name 1",  # a text cell: shown as typed, never run
        "Other",
        False,
        False,
        "+254712345678",
        -1.25,
        1,
    )
    # Run again after a crash that came after the workbook was complete: nothing to redo.
    writer_for("xlsx").finish(part, final, size, lambda: None)
    assert len(rows_of(final)["responses"]) == 6_001


def test_rows_beyond_a_sheet_go_on_the_next_sheet(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(xlsx, "SHEET_ROWS", 4)
    part, final, size = part_file(tmp_path, 7)
    writer_for("xlsx").finish(part, final, size, lambda: None)
    sheets = rows_of(final)
    assert list(sheets) == ["responses", "responses 2", "responses 3"]
    assert [[r[0] for r in rows] for rows in sheets.values()] == [
        ["id", 1, 2, 3],
        ["id", 4, 5, 6],
        ["id", 7],
    ]


# Stored text that a workbook must carry through its escapes (ECMA-376 Part 1,
# §22.9.2.19, ST_Xstring): CR (XML turns it into LF), control characters (XML cannot
# hold them), and text that reads like an escape, overlapping ones included.
TEXTS = [
    "cr\rlf\r\n",
    "\rfirst",
    "bell\x07 unit\x1f nul\x00",
    "_x000D_",
    "_x005F_x000D_",
    "_x0041_x0042_",  # two escape-like texts sharing an underscore
    "a_x0041\r",  # a CR's escape would complete the escape-like text before it
    "_x00D_ _xZZZZ_ x005F_",
    "<r><t>bold</t></r>",  # XlsxWriter takes text like this for rich-text XML
    "<r>&</r>",
    "\ttab and two trailing spaces  ",
    "\ufffe\uffff",
]


def test_every_stored_text_reads_back_exactly_from_the_xlsx_export(tmp_path: Path) -> None:
    writer = writer_for("xlsx")
    final = str(tmp_path / "responses.xlsx")
    part = writer.part_name(final)
    start = dt.datetime(2020, 5, 15, tzinfo=UTC)
    rows = [
        (i, start, text, text, "Other", True, False, text, Decimal(0), Decimal(0))
        for i, text in enumerate(TEXTS, 1)
    ]
    data = writer.header() + writer.encode(rows, first=True)
    Path(part).write_bytes(data)
    writer.finish(part, final, len(data), lambda: None)

    # Our own import reader, as a re-import of the file would read it.
    with open(final, "rb") as fh:
        reader = open_reader(fh, options={}, known={})
        reader.start()
        cells = [r.fields for r in reader.records(0, 0)]
        reader.close()
    assert [(c[2], c[3], c[7]) for c in cells[1:]] == [(t, t, t) for t in TEXTS]
    # The file as Excel reads it: each text cell's <t>, decoded by the rule alone.
    sheet = zipfile.ZipFile(final).read("xl/worksheets/sheet1.xml").decode()
    written = re.findall(
        r'<c r="D\d+" [^>]*t="inlineStr"><is><t[^>]*>(.*?)</t></is></c>', sheet, re.S
    )
    assert [excel_reads(html.unescape(t)) for t in written] == ["name_of_respondent", *TEXTS]


def excel_reads(stored: str) -> str:
    """ST_Xstring as a reader that follows the rule reads it: left to right, each
    ``_xHHHH_`` is the character HHHH, and nothing else changes."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m[1], 16)), stored)
