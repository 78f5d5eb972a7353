"""``collect jobs``: list jobs as a table (or JSON with ``--json``), newest first."""

from __future__ import annotations

import io
import shutil
from json import dumps
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

from jobs import parts
from jobs.cli import describe, job_owner
from jobs.formatting import duration, thousands, unattended_note
from jobs.models import Job, State


def progress(job: Job) -> str:
    """The progress column: rows done of the total, as the job page says it.

    A stopped or failed job undid what it wrote, so it says what was removed,
    not "15,000/20,000 (75.0%)"; a job still checking its file shows that.
    """
    if job.state in {State.STOPPED, State.FAILED}:
        return f"{thousands(job.processed)} removed" if job.processed else "nothing written"
    if job.total is None:
        checking = job.checking or {}
        if checking.get("total"):
            done = 100 * float(checking.get("done", 0)) / float(checking["total"])
            return f"checking {done:.0f}%"
        return thousands(job.processed)
    return f"{thousands(job.processed)}/{thousands(job.total)} ({job.percent:.1f}%)"


def timing(job: Job) -> str:
    """Time left while it runs, the time it took once it is over.

    A job that no worker runs now (``Job.unattended``) has no time left: the
    column says why instead, as the jobs page does.
    """
    note = unattended_note(job, short=True)
    if note:
        return note
    if job.eta_seconds is not None:
        return f"{duration(job.eta_seconds)} left"
    if job.finished_at and job.run_seconds:
        return f"took {duration(job.run_seconds)}"
    return ""


def rate(job: Job) -> str:
    """Rows per second; nothing while no worker runs the job (its last speed is not its speed)."""
    return f"{thousands(job.rate)}/s" if job.rate and not job.unattended else ""


WIDTH = 100
COLUMNS = ("task id", "kind", "what", "owner", "state", "progress", "rate", "time", "created")
# Left out in this order while the table is wider than the terminal; the others always show.
DROPPED_FIRST = ("rate", "kind", "owner", "created", "time")
WHAT_AT_LEAST = 12


def fit(rows: list[dict[str, str]], width: int) -> tuple[list[str], int]:
    """The columns to show in ``width`` terminal cells, and the width of "what" (then cut "…").

    ``rows`` map each name of COLUMNS to its text. Columns are 2 cells apart.
    """

    def natural(name: str) -> int:
        return max(cell_len(name), *(cell_len(row[name]) for row in rows))

    def total(names: list[str]) -> int:
        return sum(natural(name) for name in names) + 2 * (len(names) - 1)

    columns = list(COLUMNS)
    for name in DROPPED_FIRST:
        if total(columns) <= width:
            break
        columns.remove(name)
    excess = max(0, total(columns) - width)
    return columns, max(min(natural("what"), WHAT_AT_LEAST), natural("what") - excess)


class Command(BaseCommand):
    help = "List jobs, newest first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--state", choices=[s.value for s in State])
        parser.add_argument("--kind")
        parser.add_argument("--user", help="only this user's jobs")
        parser.add_argument("--limit", type=int, default=30, help="at most this many (30)")
        parser.add_argument(
            "--json", action="store_true", help="a JSON list of jobs, as import-teams --json"
        )

    def handle(self, *args: Any, state: str | None, kind: str | None, user: str | None,
               limit: int, json: bool, **opts: Any) -> None:  # fmt: skip
        # Parts (jobs/parts.py) are not jobs of their own to the people who list jobs.
        qs = Job.objects.select_related("owner").filter(parent=None).order_by("-created_at", "-id")
        if state:
            qs = qs.filter(state=state)
        if kind:
            qs = qs.filter(kind=kind)
        if user:
            qs = qs.filter(owner=job_owner(user))  # an unknown name: exit status 2
        # A job made of parts: its parts' progress, as on its page and in the API.
        jobs = [parts.add_up(job) for job in qs[:limit]]
        if json:
            self.stdout.write(dumps([describe(job) for job in jobs]))
            return
        if not jobs:
            self.stdout.write("No jobs.")
            return
        rows = [
            {
                "task id": str(job.id), "kind": job.kind, "what": job.label,
                "owner": job.owner.get_username(), "state": job.state, "progress": progress(job),
                "rate": rate(job), "time": timing(job),
                "created": timezone.localtime(job.created_at).strftime("%Y-%m-%d %H:%M"),
            }
            for job in jobs
        ]  # fmt: skip
        # A terminal's width, else 100 columns (a pipe, a file): a row stays one line
        # that fits, so scripts can cut and grep it; --json has everything in full.
        width = shutil.get_terminal_size().columns if self.stdout.isatty() else WIDTH
        columns, what_width = fit(rows, width)
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
        for name in columns:
            # The task id is what people copy into pause/resume/stop: never shortened.
            table.add_column(
                name, no_wrap=True, overflow="ellipsis",
                min_width=36 if name == "task id" else None,
                max_width=what_width if name == "what" else None,
            )  # fmt: skip
        for row in rows:
            table.add_row(*(row[name] for name in columns))
        # Rendered to text first (rich writes in pieces, OutputWrapper adds line ends),
        # without rich's padding to the full width.
        buffer = io.StringIO()
        Console(file=buffer, width=width, no_color=True, highlight=False).print(table)
        lines = [line.rstrip() for line in buffer.getvalue().splitlines()]
        self.stdout.write("\n".join(line for line in lines if line))
