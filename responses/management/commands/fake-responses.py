"""``collect fake-responses N [--from --to --seed]``: insert realistic form responses."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from responses.fake import create_responses
from responses.forms import DATE_FORMATS, BadDate, DateOutOfRange, parse_bound


class Command(BaseCommand):
    help = "Insert N realistic form responses spread over a date range (reproducible with --seed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("n", type=int, help="How many responses to insert.")
        parser.add_argument("--from", dest="date_from", default="", help="Default: 3 years ago.")
        parser.add_argument("--to", dest="date_to", default="", help="Default: now.")
        parser.add_argument("--seed", type=int, default=None, help="Same seed, same data.")

    def handle(
        self, *args: Any, n: int, date_from: str, date_to: str, seed: int | None, **opts: Any
    ) -> None:
        if n < 0:
            raise CommandError("N must be 0 or more.")
        try:
            end = parse_bound(date_to, end=True) or timezone.now()
            start = parse_bound(date_from, end=False) or end - dt.timedelta(days=3 * 365)
        except DateOutOfRange as far:
            raise CommandError(
                f"--from and --to must be dates from 0001-01-02 to 9999-12-30; got {far}."
            ) from None
        except BadDate as bad:
            raise CommandError(f"--from and --to must be {DATE_FORMATS}; got {bad}.") from None
        except OverflowError:  # the default --from, 3 years before an early --to
            raise CommandError(
                "--to is less than 3 years after 0001-01-01: give --from too."
            ) from None
        if start > end:
            raise CommandError("--from is after --to; swap them.")
        began = time.monotonic()
        done = create_responses(n, start=start, end=end, seed=seed)
        took = time.monotonic() - began
        self.stdout.write(
            f"Inserted {done:,} form responses from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} "
            f"in {took:.1f} s ({done / took if took else 0:,.0f} rows/s)."
        )
