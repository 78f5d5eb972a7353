"""Shared by the CLI commands: follow a job with a progress bar until it ends."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.prompt import Confirm

from jobs import services
from jobs.models import TERMINAL, Job


def follow(job: Job, *, console: Console | None = None, interval: float = 0.5) -> Job:
    """Show progress (rows, rate, time left) until the job ends; Ctrl-C offers to stop it.

    Returns the job in its final state. Answering "no" to the stop question
    leaves the job running and returns at once.
    """
    console = console or Console(stderr=True)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8.0f} rows/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(job.state, total=None, rate=0.0)
        while True:
            try:
                job.refresh_from_db()
                bar.update(
                    task,
                    description=job.state,
                    completed=job.processed,
                    total=job.total,
                    rate=job.rate,
                )
                if job.state in TERMINAL:
                    return job
                time.sleep(interval)
            except KeyboardInterrupt:
                bar.stop()
                if Confirm.ask(f"Stop job {job.id}? It will undo what it wrote", console=console):
                    job = services.job_stop(job=job)
                    bar.start()
                    continue
                console.print(f"Job {job.id} goes on in the background.")
                return job


def describe(job: Job) -> dict[str, Any]:
    return {
        "task_id": str(job.id),
        "kind": job.kind,
        "state": job.state,
        "processed": job.processed,
        "total": job.total,
        "error": job.error,
    }
