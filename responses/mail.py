"""The e-mail at the end of an export: the CSV attached when small, else a signed link.

A link is signed with Django's TimestampSigner (the SECRET_KEY), names the job
and its file, and expires after COLLECT_EXPORT_LINK_MAX_AGE_SECONDS. It only
works for a signed-in user who may see the job (its owner, or a user with
``jobs.manage_all_jobs``), because the file holds personal data and e-mails
get forwarded.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import logging
import smtplib
import time
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.files.storage import default_storage
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from jobs.kinds import RunContext
from jobs.models import Job
from responses.forms import show

log = logging.getLogger(__name__)

LINK_SALT = "responses.export.download"


def download_token(job: Job) -> str:
    return signing.TimestampSigner(salt=LINK_SALT).sign_object(
        {"job": str(job.id), "file": job.param("file")}, compress=True
    )


def read_token(token: str) -> dict[str, str]:
    """The signed content; ``SignatureExpired`` or ``BadSignature`` when not valid."""
    max_age = settings.COLLECT_EXPORT_LINK_MAX_AGE_SECONDS
    value = signing.TimestampSigner(salt=LINK_SALT).unsign_object(token, max_age=max_age)
    if not isinstance(value, dict):
        raise signing.BadSignature("not a download link")
    return value


class _Full(Exception):
    pass


class _CappedBuffer(io.BytesIO):
    """Raise once more than ``cap`` bytes are written: compressing stops early."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap

    def write(self, data: Any) -> int:
        if self.tell() + len(data) > self.cap:
            raise _Full
        return super().write(data)


def attachment(name: str, size: int) -> tuple[str, bytes, str] | None:
    """(filename, content, mimetype) to attach, or None when too big for a mail."""
    limit = settings.COLLECT_EXPORT_ATTACH_MAX_BYTES
    filename = name.rsplit("/", 1)[-1]
    packed = _CappedBuffer(min(limit, size))
    try:
        with (
            default_storage.open(name, "rb") as src,
            gzip.GzipFile(filename=filename, mode="wb", fileobj=packed, mtime=0) as gz,
        ):
            while chunk := src.read(1 << 20):
                gz.write(chunk)
        # Gzip when it is smaller (CSV usually shrinks 3 to 5 times); a tiny file does not.
        return filename + ".gz", packed.getvalue(), "application/gzip"
    except _Full:
        pass
    if size <= limit:
        with default_storage.open(name, "rb") as src:
            return filename, src.read(), "text/csv"
    return None


def _fenced(ctx: RunContext) -> Any:
    return Job.objects.filter(id=ctx.job.id, lease_token=ctx.job.lease_token)


def _send(ctx: RunContext, message: EmailMessage) -> str:
    """Send with retries and growing waits; '' when sent, else why it failed."""
    attempts = max(1, settings.COLLECT_EXPORT_MAIL_ATTEMPTS)
    wait = settings.COLLECT_EXPORT_MAIL_BACKOFF_SECONDS
    reason = ""
    for attempt in range(1, attempts + 1):
        try:
            message.send(fail_silently=False)
            return ""
        except (smtplib.SMTPException, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            log.warning(
                "job %s: e-mail attempt %d/%d failed: %s", ctx.job.id, attempt, attempts, reason
            )
            if isinstance(exc, smtplib.SMTPRecipientsRefused) or attempt == attempts:
                break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            ctx.heartbeat()  # keeps the lease; a stop during the waits is honoured
            time.sleep(min(0.2, wait))
        wait *= 2
    return reason


def deliver(ctx: RunContext) -> dict[str, Any]:
    job = Job.objects.get(id=ctx.job.id)
    name: str = job.param("file")
    rows = int((job.checkpoint or {}).get("rows", 0))
    size = default_storage.size(name)
    # The owner downloads the file from the job page (served once the job succeeded).
    _fenced(ctx).update(result_file=name)
    result: dict[str, Any] = {"rows": rows, "bytes": size, "email": job.param("email")}
    context: dict[str, Any] = {
        "job": job,
        "rows": rows,
        "start": show(_moment(job.param("from"))) or "the first response",
        "stop": show(_moment(job.param("to"))) or "the last response",
        "job_url": job.param("site", settings.COLLECT_SITE_URL).rstrip("/")
        + job.get_absolute_url(),
    }
    attached = attachment(name, size)
    if attached is None:
        token = download_token(job)
        base = job.param("site", settings.COLLECT_SITE_URL).rstrip("/")
        expires = timezone.now() + dt.timedelta(
            seconds=settings.COLLECT_EXPORT_LINK_MAX_AGE_SECONDS
        )
        context["link"] = base + reverse("responses-download", args=[token])
        context["expires"] = timezone.localtime(expires).strftime("%Y-%m-%d %H:%M %Z")
        result.update(delivery="link", link_expires_at=expires.isoformat())
    else:
        context["attachment"] = attached[0]
        result.update(delivery="attachment", attachment=attached[0])
    message = EmailMessage(
        subject=render_to_string("responses/export_subject.txt", context).strip(),
        body=render_to_string("responses/export_mail.txt", context),
        to=[job.param("email")],
    )
    if attached is not None:
        message.attach(*attached)
    reason = _send(ctx, message)
    result["email_sent"] = not reason
    if reason:
        # The export itself worked: it succeeds, with the failed delivery shown on the job.
        _fenced(ctx).update(
            error=(
                f"The export is complete, but the e-mail to {job.param('email')} could not be "
                f"sent ({reason}). Download the file from this page."
            )[:2000]
        )
    return result


def _moment(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None
