"""``collect fake-teams N OUT.csv|OUT.xlsx``: write teams for tests and benchmarks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from teams.fake import write_fake_teams, write_fake_teams_xlsx


class Command(BaseCommand):
    help = (
        "Write N fake teams (tricky quoting and unicode) to a CSV file, or to a workbook "
        "(sheet Teams) when OUT ends with .xlsx; same seed, same rows."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("n", type=int)
        parser.add_argument("out")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--lf", action="store_true", help="end lines with LF, not CRLF")

    def handle(self, *args: Any, n: int, out: str, seed: int, lf: bool, **opts: Any) -> None:
        started = time.monotonic()
        if out.lower().endswith(".xlsx"):
            write_fake_teams_xlsx(Path(out), n, seed=seed)
        else:
            with open(out, "w", encoding="utf-8", newline="") as fh:
                write_fake_teams(fh, n, seed=seed, newline="\n" if lf else "\r\n")
        self.stdout.write(f"{n:,} teams written to {out} in {time.monotonic() - started:.1f} s")
