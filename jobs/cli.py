"""Shared by the CLI commands: follow a job with a progress bar until it ends."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.prompt import Confirm

from jobs import services
from jobs.formatting import duration, thousands
from jobs.models import TERMINAL, Job


def follow(job: Job, *, console: Console | None = None, interval: float = 0.5) -> Job:
    """Show progress (rows, rate, time left) until the job ends; Ctrl-C offers to stop it.

    Returns the job in its final state. Answering "no" to the stop question
    leaves the job running and returns at once.
    """
    console = console or Console(stderr=True)
    # Rate and time left come from the job row (pauses excluded), as on the web page.
    columns = (
        TextColumn("[bold]{task.description:<9}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[done]} rows"),
        TextColumn("{task.fields[rate]} rows/s"),
        TextColumn("{task.fields[eta]}"),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(job.state, total=None, **_fields(job))
        while True:
            try:
                job.refresh_from_db()
                bar.update(
                    task,
                    description=job.state,
                    completed=job.processed,
                    total=job.total,
                    **_fields(job),
                )
                if job.state in TERMINAL:
                    return job
                time.sleep(interval)
            except KeyboardInterrupt:
                bar.stop()
                if Confirm.ask(f"Stop job {job.id}? It will undo what it wrote", console=console):
                    job = services.job_stop(job=job, by="command line")
                    bar.start()
                    continue
                console.print(f"Job {job.id} goes on in the background.")
                return job


def _fields(job: Job) -> dict[str, Any]:
    done = thousands(job.processed)
    if job.total is not None:
        done = f"{done}/{thousands(job.total)}"
    if job.eta_seconds is not None:
        eta = f"{duration(job.eta_seconds)} left"
    elif job.state in TERMINAL and job.run_seconds:
        eta = f"took {duration(job.run_seconds)}"
    else:
        eta = ""
    return {"done": done, "rate": thousands(job.rate), "eta": eta}


def job_owner(username: str | None) -> Any:
    """The user a CLI-started job belongs to: ``--user NAME``, else the first superuser."""
    from django.contrib.auth import get_user_model
    from django.core.management.base import CommandError

    users = get_user_model()._default_manager
    if username:
        try:
            return users.get_by_natural_key(username)
        except users.model.DoesNotExist:
            raise CommandError(f"No user named {username!r}.") from None
    owner = users.filter(is_superuser=True).order_by("pk").first()
    if owner is None:
        raise CommandError("No superuser exists to own the job; name one with --user.")
    return owner


def describe(job: Job) -> dict[str, Any]:
    return {
        "task_id": str(job.id),
        "kind": job.kind,
        "state": job.state,
        "processed": job.processed,
        "total": job.total,
        "error": job.error,
    }
