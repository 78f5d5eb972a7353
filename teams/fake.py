"""Deterministic test data for the import: tricky quoting, line breaks and unicode."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from collect.xlsxtext import ExactWorkbook
from teams.csvformat import COLUMNS

WORDS = [
    "alpha", "Zürich", "東京", "naïve", "café", "Ørjan", "élan", "smörgåsbord", "Δelta",
    "emoji 🚀", "O'Brien", 'say "hi"', "comma, inside", "tab\there", "semi;colon", "😀😀",
    "  padded  ", "back\\slash", "=1+1", "Ꙭ", "ﬁ ligature", "מים", "عربى",
]  # fmt: skip
NAMES = ["Ada", "Grace", "Linus", "Guido", "Zoë", "Łukasz", "Søren", "Nguyễn", "李雷", "Ω"]


def fake_teams(n: int, *, seed: int = 0) -> Iterator[tuple[str, str, str, str]]:
    """``n`` rows of (name, description, manager, members); the same seed gives the same rows."""
    rng = random.Random(seed)
    breaks = ["\n", "\r\n", " "]
    for i in range(n):
        words = rng.choices(WORDS, k=rng.randint(0, 6))
        description = rng.choice(breaks).join(words) if rng.random() < 0.5 else " ".join(words)
        yield (
            f"Team {i} {rng.choice(WORDS)}",
            description,
            rng.choice(NAMES) + str(rng.randint(0, 999)) if rng.random() < 0.9 else "",
            ",".join(rng.choices(NAMES, k=rng.randint(0, 5))),
        )


def write_fake_teams(
    out: IO[str], n: int, *, seed: int = 0, newline: str = "\r\n", delimiter: str = ","
) -> None:
    """Write a header and ``n`` team rows to ``out`` (opened with ``newline=""``)."""
    writer = csv.writer(out, lineterminator=newline, delimiter=delimiter)
    writer.writerow(COLUMNS)
    writer.writerows(fake_teams(n, seed=seed))


def write_fake_teams_xlsx(path: Path, n: int, *, seed: int = 0, sheet: str = "Teams") -> None:
    """The same rows as ``write_fake_teams`` in an .xlsx workbook, on the sheet ``sheet``.

    Every cell is written as text, so ``=1+1`` stays a string, not a formula; as
    inline strings, CR as ``_x000D_`` (``ExactWorkbook``).
    """
    with ExactWorkbook(str(path)) as book:
        page = book.add_worksheet(sheet)
        for row, values in enumerate([tuple(COLUMNS), *fake_teams(n, seed=seed)]):
            for column, value in enumerate(values):
                page.write_string(row, column, value)
