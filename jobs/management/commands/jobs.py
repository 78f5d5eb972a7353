"""``collect jobs``: list jobs as a table, newest first."""

from __future__ import annotations

import io
import shutil
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone
from rich import box
from rich.console import Console
from rich.table import Table

from jobs.formatting import duration, thousands
from jobs.models import Job, State


def progress(job: Job) -> str:
    if job.total is None:
        return thousands(job.processed)
    return f"{thousands(job.processed)}/{thousands(job.total)} ({job.percent:.1f}%)"


def timing(job: Job) -> str:
    """Time left while it runs, the time it took once it is over."""
    if job.eta_seconds is not None:
        return f"{duration(job.eta_seconds)} left"
    if job.finished_at and job.run_seconds:
        return f"took {duration(job.run_seconds)}"
    return ""


class Command(BaseCommand):
    help = "List jobs, newest first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--state", choices=[s.value for s in State])
        parser.add_argument("--kind")
        parser.add_argument("--user", help="only this user's jobs")
        parser.add_argument("--limit", type=int, default=30, help="at most this many (30)")

    def handle(self, *args: Any, state: str | None, kind: str | None, user: str | None,
               limit: int, **opts: Any) -> None:  # fmt: skip
        qs = Job.objects.select_related("owner").order_by("-created_at", "-id")
        if state:
            qs = qs.filter(state=state)
        if kind:
            qs = qs.filter(kind=kind)
        if user:
            qs = qs.filter(owner__username=user)
        jobs = list(qs[:limit])
        if not jobs:
            self.stdout.write("No jobs.")
            return
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
        # The task id is what people copy into pause/resume/stop: never shortened.
        table.add_column("task id", no_wrap=True, min_width=36)
        for name in ("kind", "what", "owner", "state", "progress", "rate", "time", "created"):
            table.add_column(name, no_wrap=name != "what", overflow="fold")
        for job in jobs:
            table.add_row(
                str(job.id), job.kind, job.label, job.owner.get_username(), job.state,
                progress(job), f"{thousands(job.rate)}/s" if job.rate else "",
                timing(job), timezone.localtime(job.created_at).strftime("%Y-%m-%d %H:%M:%S"),
            )  # fmt: skip
        # Rendered to text first (rich writes in pieces, OutputWrapper adds line ends),
        # without rich's padding to the full width. Into a pipe or a file, rows are
        # never wrapped, so scripts can cut and grep them.
        width = shutil.get_terminal_size().columns if self.stdout.isatty() else 1000
        buffer = io.StringIO()
        Console(file=buffer, width=max(width, 100), no_color=True, highlight=False).print(table)
        lines = [line.rstrip() for line in buffer.getvalue().splitlines()]
        self.stdout.write("\n".join(line for line in lines if line))
