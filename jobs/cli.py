"""Shared by the CLI commands: follow a job with a progress bar, then say how it ended."""

from __future__ import annotations

import json
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.urls import reverse
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.prompt import Confirm

from jobs import parts, services
from jobs.formatting import duration, thousands, unattended_note, undone_summary
from jobs.models import TERMINAL, Job, State


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
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[eta]}"),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(job.state, total=None, **_fields(job))
        while True:
            try:
                job.refresh_from_db()
                parts.add_up(job)  # a job made of parts: their progress
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
    # No worker runs it now (Job.unattended): no speed, no time left, but why.
    note = unattended_note(job)
    if note:
        eta = note
    elif job.eta_seconds is not None:
        eta = f"{duration(job.eta_seconds)} left"
    elif job.state in TERMINAL and job.run_seconds:
        eta = f"took {duration(job.run_seconds)}"
    else:
        eta = ""
    return {"done": done, "rate": "" if note else f"{thousands(job.rate)} rows/s", "eta": eta}


def job_owner(username: str | None) -> Any:
    """The user a CLI-started job belongs to: ``--user NAME``, else the first superuser."""
    from django.contrib.auth import get_user_model
    from django.core.management.base import CommandError

    users = get_user_model()._default_manager
    if username:
        try:
            return users.get_by_natural_key(username)
        except users.model.DoesNotExist:
            # 2, as for any other wrong argument: the command did nothing.
            raise CommandError(f"No user named {username!r}.", returncode=2) from None
    owner = users.filter(is_superuser=True).order_by("pk").first()
    if owner is None:
        raise CommandError("No superuser exists to own the job; name one with --user.")
    return owner


def page_url(job: Job, path: str = "") -> str:
    """The absolute address of the job's page (or ``path``), from ``COLLECT_SITE_URL``."""
    return settings.COLLECT_SITE_URL.rstrip("/") + (path or job.get_absolute_url())


def error_report_url(job: Job) -> str:
    """Where the job's full list of row problems is downloaded, or "" when it has none."""
    if not job.error_report_file:
        return ""
    return page_url(job, reverse("job-error-report", args=[job.id]))


def describe(job: Job) -> dict[str, Any]:
    """The job as a JSON object for scripts (``--json``): the API's fields that matter here.

    Keys: ``task_id``, ``kind``, ``state``, ``processed``, ``total`` (rows or None),
    ``result`` (the kind's counts), ``error`` (a sentence, "" if none), ``problem_count``,
    ``error_report`` and ``url`` (absolute addresses, from ``COLLECT_SITE_URL``).
    """
    return {
        "task_id": str(job.id),
        "kind": job.kind,
        "state": job.state,
        "processed": job.processed,
        "total": job.total,
        "result": job.result,
        "error": job.error,
        "problem_count": job.problem_count,
        "error_report": error_report_url(job),
        "url": page_url(job),
    }


def started(command: BaseCommand, job: Job, *, as_json: bool, what: str) -> None:
    """Say a job was queued: its task id alone on stdout (``ID=$(collect …)`` works), or JSON.

    The human hint (where to watch it, how to stop it) goes to stderr so that the
    captured output stays the bare id.
    """
    if as_json:
        command.stdout.write(json.dumps(describe(job)))
        return
    command.stdout.write(str(job.id))
    command.stderr.write(
        f"{what} queued. Watch it at {page_url(job)} or with `collect jobs`; "
        f"stop it with `collect stop {job.id}`."
    )


def report(command: BaseCommand, job: Job, lines: list[str], *, as_json: bool) -> None:
    """End a command that followed ``job``: print ``lines`` (or JSON) and set the exit status.

    Exit status 0 when the job succeeded (or goes on in the background after
    Ctrl-C), 1 when it failed or was stopped, so that a script can test it; the
    lines then go to stderr (after the JSON on stdout, with ``--json``).
    """
    ended_badly = job.state in {State.FAILED, State.STOPPED}
    if as_json:
        command.stdout.write(json.dumps(describe(job)))
    if ended_badly:
        command.stderr.write("\n".join(lines))
        raise SystemExit(1)
    if not as_json:
        command.stdout.write("\n".join(lines))


def stopped_line(job: Job) -> str:
    """A stopped job's one truth: what it wrote was undone (the job page's sentence)."""
    return undone_summary(job)
