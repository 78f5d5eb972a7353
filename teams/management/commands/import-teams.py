"""``collect import-teams FILE``: import teams from a CSV file or a workbook as a job.

Without ``--wait`` it prints the task id alone (``ID=$(collect import-teams f.csv)``);
with it, a progress bar and then a summary: teams created, rows skipped, where
the error report is. Exit status 1 when the job fails or is stopped; ``--json``
prints the job as JSON instead of the summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from jobs.cli import error_report_url, follow, job_owner, page_url, report, started, stopped_line
from jobs.formatting import duration, plural, thousands
from jobs.models import Job, State
from jobs.retention import QuotaExceeded
from teams.services import (
    ON_ERROR_CHOICES,
    ImportRequestError,
    UpsertNotAllowed,
    teams_import_start,
)
from teams.upsert import CREATE, KEYS, MODES


def changes_lines(result: dict[str, Any]) -> list[str]:
    """A dry run's counts and first changes; what a stop put back (after the first line)."""
    lines = [
        "Would be: "
        + ", ".join(
            f"{thousands(result.get(k, 0))} {k}"
            for k in ("created", "updated", "unchanged", "skipped")
        )
    ]
    for change in result.get("changes") or []:
        if change.get("action") == "create":
            lines.append(f"  row {change['row']}: new team {change['key']!r}")
        else:
            lines.append(
                f"  row {change['row']} ({change['key']!r}): {change['column']} "
                f"{change['old']!r} -> {change['new']!r}"
            )
    undo = result.get("undo")
    if undo:
        left = int(undo["left"])
        lines.append(
            f"Undone: {plural(undo['restored'], 'updated team')} put back, "
            f"{plural(undo['deleted'], 'created team')} deleted, {thousands(left)} changed by "
            f"someone else since and left as {'it is' if left == 1 else 'they are'}"
        )
    return lines


class Command(BaseCommand):
    help = (
        "Import teams from a CSV file or an .xlsx workbook (header name,description,manager,"
        "members) as a job."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument("--wait", action="store_true", help="show progress until it ends")
        parser.add_argument(
            "--json", action="store_true", help="print the job as JSON (for scripts)"
        )
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
        parser.add_argument(
            "--mode",
            choices=MODES,
            default=CREATE,
            help="create: add every row as a new team (default); upsert: update the teams "
            "whose key matches and add the others",
        )
        parser.add_argument(
            "--key",
            choices=KEYS,
            default="",
            help="upsert: the column that finds a team (default: name)",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="check and match every row, write nothing; with --wait, show the counts "
            "and the first changes",
        )

        parser.add_argument(
            "--parallelism",
            type=int,
            default=None,
            help="create: run as this many parts on different workers at once "
            "(default: COLLECT_IMPORT_PARALLELISM, 1 unless set)",
        )

    def handle(self, *args: Any, file: str, wait: bool, on_error: str, user: str | None,
               encoding: str, sheet: str, json: bool, mode: str, key: str, dry_run: bool,
               parallelism: int | None, **opts: Any) -> None:  # fmt: skip
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
                    mode=mode,
                    key=key,
                    dry_run=dry_run,
                    parallelism=parallelism,
                )
        except (ImportRequestError, QuotaExceeded, UpsertNotAllowed) as error:
            raise CommandError(str(error)) from None
        if not wait:
            started(self, job, as_json=json, what="Import")
            return
        job = follow(job)
        report(self, job, summary(job, on_error=on_error), as_json=json)


def nothing_to_change(result: dict) -> str:
    """What a dry run that found no change says; skipped rows are named, not called stored."""
    skipped = int(result.get("skipped", 0))
    if not skipped:
        return "Nothing to change: every row is already stored as it is in the file."
    return (
        f"Nothing to change in the rows that can be imported; {plural(skipped, 'row')} "
        "could not be and would be left out (see the problems)."
    )


def summary(job: Job, *, on_error: str) -> list[str]:
    """What a person reads when the import ends: counts, then where to look next."""
    result = job.result or {}
    if job.state == State.SUCCEEDED and result.get("dry_run"):
        if result.get("created") or result.get("updated"):
            last = f"Import these changes from the job page: {page_url(job)}"
        else:
            last = nothing_to_change(result)
        return [
            "Dry run, nothing was written. " + changes_lines(result)[0],
            *changes_lines(result)[1:],
            last,
        ]
    if job.state == State.SUCCEEDED:
        created = result.get("created", result.get("imported", 0))
        counts = [f"{plural(created, 'team')} created"]
        if job.param("mode") == "upsert":  # a create import never updates
            counts += [f"{thousands(result.get(key, 0))} {key}" for key in ("updated", "unchanged")]
        counts.append(f"{plural(result.get('skipped', 0), 'row')} skipped")
        if result.get("empty_rows"):
            counts.append(f"{plural(result['empty_rows'], 'empty row')} left out")
        took = f" in {duration(job.run_seconds)}" if job.run_seconds else ""
        lines = [f"Imported{took}: {', '.join(counts)}."]
        if result.get("skipped") and job.error_report_file:
            lines.append(f"The skipped rows and why: {error_report_url(job)}")
        if created:  # a link to an empty list helps nobody
            lines.append(f"The teams: {page_url(job, reverse('team-list'))}?job={job.id}")
        return lines
    if job.state == State.STOPPED:
        return [stopped_line(job), *changes_lines(result)[1:]]
    if job.state == State.FAILED:
        lines = [f"The import failed: {job.error}"]
        if job.error_report_file:
            lines.append(f"Every problem, with its row and column: {error_report_url(job)}")
        if job.problem_count and on_error != "skip":
            lines.append("Fix those rows, or run the import again with --on-error skip.")
        return lines
    return [f"The import goes on in the background: {page_url(job)}"]
