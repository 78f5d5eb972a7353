"""The writers on their own: XLSX assembly is redone exactly after an interruption, sheets split."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from jobs.kinds import Interrupted
from responses import csvrows
from responses.writers import writer_for, xlsx

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
