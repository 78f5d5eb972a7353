"""The e-mail at the end of an export: the file attached when small, else a signed link.

A link is signed with Django's TimestampSigner (the SECRET_KEY), names the job
and its file, and expires after COLLECT_EXPORT_LINK_MAX_AGE_SECONDS. It only
works for a signed-in user who may see the job (its owner, or a user with
``jobs.manage_all_jobs``), because the file holds personal data and e-mails
get forwarded.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import smtplib
import time
import zipfile
import zlib
from collections.abc import Callable
from email import encoders
from email.mime.base import MIMEBase
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
from responses.forms import exact

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


def attachment(name: str, size: int, media_type: str) -> tuple[str, bytes, str] | None:
    """(filename, content, media type) to attach, or None when too big for a mail.

    The file goes as it is when it fits under COLLECT_EXPORT_ATTACH_MAX_BYTES;
    otherwise zipped (the archive format every system opens) if that fits. A file
    whose samples deflate to well over the limit (``_zipped_estimate``) is not
    zipped at all: it gets the link.
    """
    limit = settings.COLLECT_EXPORT_ATTACH_MAX_BYTES
    filename = name.rsplit("/", 1)[-1]
    if size <= limit:
        with default_storage.open(name, "rb") as src:
            return filename, src.read(), media_type
    if _zipped_estimate(name, size) > _HOPELESS * limit:
        return None
    packed = _CappedBuffer(limit)
    # A fixed date: the same file zips to the same bytes.
    entry = zipfile.ZipInfo(filename, date_time=(1980, 1, 1, 0, 0, 0))
    entry.compress_type = zipfile.ZIP_DEFLATED
    try:
        with (
            default_storage.open(name, "rb") as src,
            zipfile.ZipFile(packed, "w") as archive,
            archive.open(entry, "w") as dst,
        ):
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    except _Full:
        return None
    return filename + ".zip", packed.getvalue(), "application/zip"


# Zipping is not tried when samples of the file say it would come out this many times the
# limit: a 200,000-row CSV (21 MB) spent 2.7 s, a quarter of its export, compressing until
# the 5 MiB cap stopped it, only to be sent as a link anyway. Its samples said 6.08 MiB,
# the whole zipped to 5.91 MiB (3% less): a file the samples misjudge by more than 10% is
# sent as a link where it could have been zipped, never the other way round.
_HOPELESS = 1.1
_SAMPLES, _SAMPLE_BYTES = 8, 128 * 1024


def _zipped_estimate(name: str, size: int) -> float:
    """Bytes the file of ``size`` bytes would take deflated, judged from samples of it.

    Reads ``_SAMPLES`` slices of ``_SAMPLE_BYTES`` spread over the file and
    deflates each on its own at the zip's level (zlib's default), so the
    estimate errs high only by the little that separate slices lose; a file
    small enough to sample whole is estimated at 0 (always tried).
    """
    if size <= _SAMPLES * _SAMPLE_BYTES * 4:
        return 0.0
    raw = packed = 0
    with default_storage.open(name, "rb") as src:
        for i in range(_SAMPLES):
            src.seek(i * (size - _SAMPLE_BYTES) // (_SAMPLES - 1))
            chunk = src.read(_SAMPLE_BYTES)
            raw, packed = raw + len(chunk), packed + len(zlib.compress(chunk, wbits=-15))
    return size * packed / raw if raw else 0.0


def _exact_part(filename: str, content: bytes, media_type: str) -> MIMEBase:
    """An attachment in base64 whatever its type, so the mail keeps every byte.

    A text part would have its line ends rewritten on the way (a bare CR in a
    quoted CSV cell arrives as CRLF).
    """
    part = MIMEBase(*media_type.split("/", 1))
    part.set_payload(content)
    encoders.encode_base64(part)
    part.add_header("Content-Disposition", "attachment", filename=filename)
    return part


def _fenced(ctx: RunContext) -> Any:
    return Job.objects.filter(id=ctx.job.id, lease_token=ctx.job.lease_token)


def _send(job: Job, message: EmailMessage, heartbeat: Callable[[], None]) -> str:
    """Send with retries and growing waits; '' when sent, else why it failed."""
    attempts = max(1, settings.COLLECT_EXPORT_MAIL_ATTEMPTS)
    wait = settings.COLLECT_EXPORT_MAIL_BACKOFF_SECONDS
    reason = ""
    for attempt in range(1, attempts + 1):
        # A fresh lease (and a last look for a stop) just before the message
        # leaves; a worker that lost the job raises here and sends nothing.
        heartbeat()
        try:
            message.send(fail_silently=False)
            return ""
        except (smtplib.SMTPException, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            log.warning(
                "job %s: e-mail attempt %d/%d failed: %s", job.id, attempt, attempts, reason
            )
            if isinstance(exc, smtplib.SMTPRecipientsRefused) or attempt == attempts:
                break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            heartbeat()  # keeps the lease; a stop during the waits is honoured
            time.sleep(min(0.2, wait))
        wait *= 2
    return reason


def send(job: Job, heartbeat: Callable[[], None] = lambda: None) -> tuple[dict[str, Any], str]:
    """Mail the finished export's file (or its link) to the job's e-mail address.

    Returns the job's ``result`` (rows, bytes, format, email, delivery,
    attachment or link expiry, email_sent, sent_at) and why sending failed ('' if sent).
    """
    from responses.exporter import writer

    name: str = job.param("file")
    rows = int((job.checkpoint or {}).get("rows", 0))
    size = default_storage.size(name)
    kind = writer(job)
    result: dict[str, Any] = {
        "rows": rows,
        "bytes": size,
        "format": kind.name,
        "email": job.param("email"),
    }
    context: dict[str, Any] = {
        "job": job,
        "rows": rows,
        "rows_text": f"{rows:,}",  # 200,000 rather than 200000
        "format": kind.name,
        "start": exact(_moment(job.param("from"))) or "the first response",
        "stop": exact(_moment(job.param("to"))) or "the last response",
        "job_url": job.param("site", settings.COLLECT_SITE_URL).rstrip("/")
        + job.get_absolute_url(),
    }
    attached = attachment(name, size, kind.media_type)
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
        result.update(
            delivery="attachment", attachment=attached[0], attachment_bytes=len(attached[1])
        )
    message = EmailMessage(
        subject=render_to_string("responses/export_subject.txt", context).strip(),
        body=render_to_string("responses/export_mail.txt", context),
        to=[job.param("email")],
    )
    if attached is not None:
        message.attach(_exact_part(*attached))
    reason = _send(job, message, heartbeat)
    result["email_sent"] = not reason
    result["sent_at"] = None if reason else timezone.now().isoformat()
    return result, reason


def failure_text(job: Job, reason: str) -> str:
    return (
        f"The export is complete, but the e-mail to {job.param('email')} could not be "
        f"sent ({reason}). Download the file from this page."
    )[:2000]


def deliver(ctx: RunContext) -> dict[str, Any]:
    """The export kind's last step: keep the file for download, then mail it, once.

    The delivery is recorded on the job (fenced by the lease) as soon as the
    mail is accepted, so a worker that takes the job over after that (its first
    worker died or lost its lease before marking it succeeded) does not send it
    again: the window for a second mail is the moment between the SMTP server's
    acceptance and that update.
    """
    job = Job.objects.get(id=ctx.job.id)
    if (job.result or {}).get("sent_at"):
        return dict(job.result)
    # The owner downloads the file from the job page (served once the job succeeded).
    _fenced(ctx).update(result_file=job.param("file"))
    result, reason = send(job, ctx.heartbeat)
    # The export itself worked: it succeeds, with a failed delivery shown on the job.
    _fenced(ctx).update(result=result, error=failure_text(job, reason) if reason else "")
    return result


def delivery_text(result: dict[str, Any]) -> str:
    """Where the export went, for the job page and the CLI, from the job's ``result``."""
    email = result.get("email", "")
    if not result.get("email_sent"):
        return (
            f"Not sent: the e-mail to {email} could not be delivered. "
            "Download the file from the job page, or send it again."
        )
    when = timezone.localtime(dt.datetime.fromisoformat(result["sent_at"]))
    sent = f"Sent to {email} on {when:%Y-%m-%d %H:%M %Z}"
    if result.get("delivery") == "attachment":
        if result["attachment_bytes"] == result["bytes"]:
            return f"{sent}, attached as {result['attachment']} ({result['bytes']:,} bytes)."
        return (
            f"{sent}, attached zipped as {result['attachment']} "
            f"({result['attachment_bytes']:,} bytes; the file is {result['bytes']:,} bytes)."
        )
    expires = timezone.localtime(dt.datetime.fromisoformat(result["link_expires_at"]))
    return (
        f"{sent}, as a download link ({result['bytes']:,} bytes, over the attachment limit); "
        f"the link works until {expires:%Y-%m-%d %H:%M %Z}."
    )


def _moment(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None
