"""Deterministic test data for the import: tricky quoting, line breaks and unicode."""

from __future__ import annotations

import csv
import random
from typing import IO

from teams.csvformat import COLUMNS

WORDS = [
    "alpha", "Zürich", "東京", "naïve", "café", "Ørjan", "élan", "smörgåsbord", "Δelta",
    "emoji 🚀", "O'Brien", 'say "hi"', "comma, inside", "tab\there", "semi;colon", "😀😀",
    "  padded  ", "back\\slash", "=1+1", "Ꙭ", "ﬁ ligature", "מים", "عربى",
]  # fmt: skip
NAMES = ["Ada", "Grace", "Linus", "Guido", "Zoë", "Łukasz", "Søren", "Nguyễn", "李雷", "Ω"]


def write_fake_teams(
    out: IO[str], n: int, *, seed: int = 0, newline: str = "\r\n", delimiter: str = ","
) -> None:
    """Write a header and ``n`` team rows to ``out`` (opened with ``newline=""``)."""
    rng = random.Random(seed)
    writer = csv.writer(out, lineterminator=newline, delimiter=delimiter)
    writer.writerow(COLUMNS)
    breaks = ["\n", "\r\n", " "]
    for i in range(n):
        words = rng.choices(WORDS, k=rng.randint(0, 6))
        description = rng.choice(breaks).join(words) if rng.random() < 0.5 else " ".join(words)
        writer.writerow(
            (
                f"Team {i} {rng.choice(WORDS)}",
                description,
                rng.choice(NAMES) + str(rng.randint(0, 999)) if rng.random() < 0.9 else "",
                ",".join(rng.choices(NAMES, k=rng.randint(0, 5))),
            )
        )
