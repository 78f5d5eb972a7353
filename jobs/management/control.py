"""The ``collect pause|resume|stop TASK_ID`` commands: one class, three actions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs import services
from jobs.models import Job


class ControlCommand(BaseCommand):
    """Apply one service (the same rules as the web and the API) to a job by its task id."""

    action: Callable[..., Job]

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("task_id")

    def handle(self, *args: Any, task_id: str, **opts: Any) -> None:
        try:
            job = Job.objects.get(id=uuid.UUID(task_id))
        except (ValueError, Job.DoesNotExist):
            raise CommandError(f"No job with task id {task_id!r}.") from None
        try:
            job = type(self).action(job=job, by="command line")
        except services.JobStateError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"{job.id}: {job.state}")
