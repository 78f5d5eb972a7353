"""``collect jobs``: list jobs as a table."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from rich.console import Console
from rich.table import Table

from jobs.models import Job, State


class Command(BaseCommand):
    help = "List jobs, newest first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--state", choices=[s.value for s in State])
        parser.add_argument("--kind")
        parser.add_argument("--limit", type=int, default=30)

    def handle(self, *args: Any, state: str | None, kind: str | None, limit: int, **opts: Any) -> None:
        qs = Job.objects.select_related("owner")
        if state:
            qs = qs.filter(state=state)
        if kind:
            qs = qs.filter(kind=kind)
        table = Table("task id", "kind", "what", "owner", "state", "done", "total", "rate/s", "created")
        for job in qs[:limit]:
            table.add_row(
                str(job.id), job.kind, job.label, job.owner.get_username(), job.state,
                str(job.processed), "" if job.total is None else str(job.total),
                f"{job.rate:.0f}", job.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            )  # fmt: skip
        Console(file=self.stdout, width=160).print(table)
