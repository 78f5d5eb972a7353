"""The files jobs keep (uploads, exports, error reports): for how long, and how much per user.

Retention: every worker's periodic sweep (jobs/signals.py) deletes the files
of jobs that ended more than ``COLLECT_RETENTION_DAYS`` ago, through Django's
storage API (a local folder or an object store alike), and records when on the
job, so its page, the API and a download can say so instead of failing
obscurely. Quota: a user's kept files may not grow past
``COLLECT_USER_QUOTA_BYTES``; a new upload that would pass it is refused
before its body is stored (HTTP 413, RFC 9110 section 15.5.14).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Q
from django.utils import timezone

from jobs.formatting import duration, size
from jobs.kinds import get_kind
from jobs.models import TERMINAL, Job, State

log = logging.getLogger(__name__)

# Jobs handled per sweep: a long backlog is worked off over several sweeps.
SWEEP_LIMIT = 200


class QuotaExceeded(Exception):
    """A new upload would take the user's kept files past their quota (HTTP 413)."""

    def __init__(self, *, used: int, incoming: int, limit: int) -> None:
        self.used, self.incoming, self.limit = used, incoming, limit
        days = settings.COLLECT_RETENTION_DAYS
        wait = f"files are deleted {retention_period()} after their job ends, or " if days else ""
        self.message = (
            f"This upload ({size(incoming)}) would take your stored files to "
            f"{size(used + incoming)}, over your quota of {size(limit)} "
            f"(you use {size(used)}). Wait until older files are deleted ({wait}"
            "ask the person who runs Collect for a larger quota), or upload a smaller file."
        )
        super().__init__(self.message)


def retention_period() -> str:
    """``COLLECT_RETENTION_DAYS`` as people say it: ``30 days``, ``1 day``, ``2 s``."""
    days = float(settings.COLLECT_RETENTION_DAYS)
    if days >= 1 and days == int(days):
        return f"{int(days)} day{'' if days == 1 else 's'}"
    return duration(days * 86400)


def _kept(job: Job) -> list[str]:
    """What the job still keeps, as users call it: ``export file``, ``error report``."""
    kept = []
    label = get_kind(job.kind).kept_file
    if label and job.state == State.SUCCEEDED:
        kept.append(label)
    if job.error_report_file:
        kept.append("error report")
    return kept


def files_deleted_message(job: Job) -> str:
    """``The export file was deleted on 2026-12-01 after 30 days.``; empty if nothing was."""
    if job.files_deleted_at is None:
        return ""
    kept = _kept(job) or ["file"]
    what = " and the ".join(kept)
    day = timezone.localtime(job.files_deleted_at).date().isoformat()
    verb = "were" if len(kept) > 1 else "was"
    return f"The {what} {verb} deleted on {day} after {retention_period()}."


def retention_sweep(now: datetime | None = None) -> int:
    """Delete the kept files of jobs that ended over ``COLLECT_RETENTION_DAYS`` ago.

    Returns how many jobs had their files deleted. Several workers may sweep at
    once: deleting a file twice is harmless, and only one of them records the
    deletion (a compare-and-set on ``files_deleted_at``).
    """
    days = float(settings.COLLECT_RETENTION_DAYS)
    if days <= 0:
        return 0
    now = now or timezone.now()
    due = (
        # A part's files are its whole job's (jobs.parts): swept with that job.
        Job.objects.filter(
            state__in=TERMINAL, finished_at__lt=now - timedelta(days=days), parent=None
        )
        .filter(files_deleted_at=None)
        .filter(Q(state=State.SUCCEEDED) | ~Q(error_report_file=""))
    )
    deleted = 0
    for job in due[:SWEEP_LIMIT]:
        if job.state == State.SUCCEEDED:
            get_kind(job.kind).discard(job)  # the upload, or the export file
        if job.error_report_file:
            default_storage.delete(job.error_report_file)
        if Job.objects.filter(id=job.id, files_deleted_at=None).update(files_deleted_at=now):
            deleted += 1
            log.info("job %s: its files were deleted after %s", job.id, retention_period())
    return deleted


def kept_bytes(user: Any) -> int:
    """Bytes of the files the user's jobs keep now (uploads and exports), per their kinds."""
    jobs = (
        Job.objects.filter(owner=user, files_deleted_at=None, parent=None)  # parts share its files
        .exclude(state__in=[State.STOPPED, State.FAILED])  # their files were discarded
        .only("kind", "state", "params", "result", "checkpoint")
    )
    return sum(get_kind(job.kind).kept_bytes(job) for job in jobs.iterator())


def check_quota(*, user: Any, incoming: int) -> None:
    """Raise ``QuotaExceeded`` if ``incoming`` more bytes would take ``user`` past the quota."""
    limit = settings.COLLECT_USER_QUOTA_BYTES
    if not limit or not getattr(user, "is_authenticated", False):
        return
    used = kept_bytes(user)
    if used + incoming > limit:
        raise QuotaExceeded(used=used, incoming=incoming, limit=limit)
