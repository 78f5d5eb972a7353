"""``collect stop TASK_ID``: stop a job (the same rules as the web and the API)."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs import services
from jobs.models import Job


class Command(BaseCommand):
    help = "Stop a job by its task id."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("task_id")

    def handle(self, *args: Any, task_id: str, **opts: Any) -> None:
        try:
            job = Job.objects.get(id=uuid.UUID(task_id))
        except (ValueError, Job.DoesNotExist):
            raise CommandError(f"No job with task id {task_id!r}.") from None
        try:
            job = services.job_stop(job=job, by="cli")
        except services.JobStateError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"{job.id}: {job.state}")
