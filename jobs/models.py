"""The one table that knows the truth about every long-running job."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class State(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSING = "pausing"
    PAUSED = "paused"
    STOPPING = "stopping"
    STOPPED = "stopped"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


TERMINAL = frozenset({State.STOPPED, State.SUCCEEDED, State.FAILED})
ACTIVE = frozenset({State.QUEUED, State.RUNNING, State.PAUSING, State.STOPPING})
# States in which a worker holds (or may hold) a lease on the job.
LEASED = frozenset({State.RUNNING, State.PAUSING, State.STOPPING})


class JobQuerySet(models.QuerySet["Job"]):
    def update(self, **kwargs: Any) -> int:
        """``QuerySet.update`` that also sets ``updated_at`` (to now) unless it is given.

        ``auto_now`` only acts in ``save()``, and jobs are changed by ``update()``
        (compare-and-set, batch commits, lease renewals, mail results, retention):
        the API's ``ETag`` (``jobs.conditional``) is made from ``updated_at``, so
        every change of a job row must move it, or a client would be told
        "not modified" about a job that changed.
        """
        kwargs.setdefault("updated_at", timezone.now())
        return super().update(**kwargs)


class Job(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=50)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    params = models.JSONField(default=dict, blank=True)
    # What the user will recognise the job by: a file name, a date range.
    label = models.CharField(max_length=255, blank=True)
    # A job made of parts (``jobs.parts``): each part is a job row of its own, with
    # its own lease and checkpoint, that points at the job it belongs to. ``part``
    # is its place among the parts, from 0. Both empty on every other job.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="parts"
    )
    part = models.PositiveIntegerField(null=True, blank=True)

    processed = models.BigIntegerField(default=0)
    total = models.BigIntegerField(null=True, blank=True)
    # Where the next batch starts; committed in the same transaction as the batch.
    checkpoint = models.JSONField(null=True, blank=True)
    # Rows per second of run time, and run time so far (pauses excluded).
    rate = models.FloatField(default=0.0)
    run_seconds = models.FloatField(default=0.0)
    # Throughput samples for the detail page: [[seconds since start, processed], ...].
    samples = models.JSONField(default=list, blank=True)
    # The check before anything is written (``prepare``), while it runs:
    # {"done", "total", "unit": "bytes"|"rows", "rate": units/s, "seconds"}.
    checking = models.JSONField(default=dict, blank=True)

    worker = models.CharField(max_length=255, blank=True)
    lease_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    error = models.TextField(blank=True)
    # The first validation problems (the full list is the error report file).
    problems = models.JSONField(default=list, blank=True)
    problem_count = models.BigIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)
    result_file = models.CharField(max_length=500, blank=True)
    error_report_file = models.CharField(max_length=500, blank=True)
    # When the retention sweep deleted the job's kept files (COLLECT_RETENTION_DAYS).
    files_deleted_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "-created_at"]),
            models.Index(fields=["state", "lease_expires_at"]),
        ]
        # Without it a user sees only their own jobs, whatever else they may do
        # (``is_staff`` included): see ``jobs.services.jobs_visible_to``.
        permissions = [("manage_all_jobs", "Can see and control every user's jobs")]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.state})"

    def get_absolute_url(self) -> str:
        return reverse("job-detail", args=[self.id])

    @property
    def task_id(self) -> str:
        return str(self.id)

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def percent(self) -> float | None:
        if not self.total:
            return 100.0 if self.state == State.SUCCEEDED else (0.0 if self.total == 0 else None)
        return round(min(100.0, 100.0 * self.processed / self.total), 1)

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the current speed, while a worker runs the job; else None.

        A queued job, or one no worker runs now (``unattended``), has no time
        left to show: nobody is working on it.
        """
        if self.state not in {State.RUNNING, State.PAUSING} or not self.total:
            return None
        if self.rate <= 0 or self.unattended:
            return None
        return round(max(0, self.total - self.processed) / self.rate, 1)

    @property
    def unattended(self) -> bool:
        """Whether no worker runs the job now although it is running: its speed and time left
        then mean nothing.

        Its worker went silent (``silent_seconds``) or handed it back when it was
        shut down (``handed_back``); for a job made of parts, none of its running
        parts has a worker (``jobs.parts.add_up`` sets ``parts_unattended``). The
        pages and the CLI then show no speed and no time left; the API's
        ``eta_seconds`` is null.
        """
        if self.has_parts:
            return self.parts_unattended
        return self.handed_back or self.silent_seconds is not None

    # Set (in memory) by ``jobs.parts.add_up`` on a job made of parts.
    parts_unattended = False

    @property
    def handed_back(self) -> bool:
        """Whether its worker handed the job back (it was being shut down) and none took it since.

        A warm shutdown (``jobs.engine``) leaves the job running with its token
        cleared and its lease ended at that moment (``lease_expires_at`` is the
        ``updated_at`` of the hand-back, or earlier than any later change), for
        the next worker to claim at once; until then nobody runs it.
        """
        return (
            self.state in {State.RUNNING, State.PAUSING}
            and not self.has_parts
            and self.lease_token is None
            and self.lease_expires_at is not None
            and self.updated_at is not None
            and self.lease_expires_at <= self.updated_at
        )

    @property
    def silent_seconds(self) -> float | None:
        """Seconds without news from the worker running this job, once that looks wrong; else None.

        A running worker renews its lease (and so ``updated_at``) at least once a
        second during long steps and with every batch (``jobs.engine``). No news
        for half a lease (``COLLECT_JOB_LEASE_SECONDS``, at least 5 s) means the
        worker was probably killed or frozen; its speed and time left then mean
        nothing. A job made of parts is run by its parts' workers: never silent.
        """
        if self.state not in {State.RUNNING, State.PAUSING, State.STOPPING} or not self.worker:
            return None
        if self.has_parts or self.updated_at is None:
            return None
        silent = (timezone.now() - self.updated_at).total_seconds()
        return silent if silent >= max(5.0, settings.COLLECT_JOB_LEASE_SECONDS / 2) else None

    @property
    def has_parts(self) -> bool:
        """Whether the job was split into parts (``jobs.parts``); they run it, not this row."""
        return bool(self.checkpoint and self.checkpoint.get("parts"))

    def param(self, name: str, default: Any = None) -> Any:
        return (self.params or {}).get(name, default)


class CountRow(models.Model):
    """Rows written by the built-in ``count`` kind, which tests the engine on its own.

    The unique constraint makes a duplicate write fail loudly instead of hiding.
    """

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="+", db_index=False)
    n = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "n"], name="countrow_job_n_unique")]

    def __str__(self) -> str:
        return f"{self.job_id}:{self.n}"


class AuditAction(models.TextChoices):
    START = "start", "started"
    PAUSE = "pause", "asked to pause"
    RESUME = "resume", "asked to resume"
    STOP = "stop", "asked to stop"
    DOWNLOAD = "download", "downloaded"
    SEND_AGAIN = "send_again", "sent again"
    REFUSED = "refused", "was refused"
    LOGIN_FAILED = "login_failed", "failed to log in"


class AuditEntry(models.Model):
    """One thing a person did (or was refused), kept for the record; never changed.

    ``job_id`` is a plain column rather than a foreign key so that an entry
    outlives its job (and a refused export has no job at all); ``username``
    keeps the name when the account is later deleted.
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=20, choices=AuditAction.choices)
    job_id = models.UUIDField(null=True, blank=True, db_index=True)
    # The client's address as the web server saw it; empty for the command line.
    client_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"
        indexes = [models.Index(fields=["user", "-at"], name="audit_user_at")]

    def __str__(self) -> str:
        who = self.username or "someone"
        return f"{self.at:%Y-%m-%d %H:%M:%S} {who} {self.get_action_display()} {self.detail}"
