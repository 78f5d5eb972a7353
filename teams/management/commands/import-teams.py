"""``collect import-teams FILE``: import teams from a CSV file or a workbook as a job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.cli import describe, follow, job_owner
from jobs.retention import QuotaExceeded
from teams.services import ON_ERROR_CHOICES, ImportRequestError, teams_import_start


class Command(BaseCommand):
    help = (
        "Import teams from a CSV file or an .xlsx workbook (header name,description,manager,"
        "members) as a job."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument("--wait", action="store_true", help="show progress until it ends")
        parser.add_argument("--on-error", choices=ON_ERROR_CHOICES, default="fail")
        parser.add_argument("--user", help="owner of the job (default: the first superuser)")
        parser.add_argument(
            "--encoding",
            default="",
            help="CSV without a byte order mark: e.g. cp1252 (default: detected)",
        )
        parser.add_argument(
            "--sheet", default="", help="workbook sheet to import (default: the first)"
        )

    def handle(self, *args: Any, file: str, wait: bool, on_error: str, user: str | None,
               encoding: str, sheet: str, **opts: Any) -> None:  # fmt: skip
        owner = job_owner(user)
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {file}")
        try:
            with path.open("rb") as fh:
                job = teams_import_start(
                    file=File(fh, name=path.name),
                    by=owner,
                    on_error=on_error,
                    encoding=encoding,
                    sheet=sheet,
                )
        except (ImportRequestError, QuotaExceeded) as error:
            raise CommandError(str(error)) from None
        if not wait:
            return
        job = follow(job)
        self.stdout.write(str(describe(job)))
        if job.state == "failed":
            if job.problem_count and on_error != "skip":
                # The job's message is the same for every place; this is the command's way.
                raise CommandError(
                    f"{job.error} Or run the import again with --on-error skip to leave the bad "
                    "rows out."
                )
            raise CommandError(job.error)
