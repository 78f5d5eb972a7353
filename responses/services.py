"""Starting an export: the one function the page, the API and the CLI call."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from jobs import audit
from jobs.models import AuditAction, Job
from jobs.services import job_create
from responses import policy
from responses.forms import exact
from responses.writers import DEFAULT, writer_for


def _file_name(date_from: dt.datetime | None, date_to: dt.datetime | None, extension: str) -> str:
    def part(moment: dt.datetime | None, missing: str) -> str:
        # The exact instant and its offset, without characters file systems refuse;
        # the year with its four digits (strftime's %Y writes year 1 as "1" on glibc).
        if moment is None:
            return missing
        local = timezone.localtime(moment)
        return f"{local.year:04d}{local:-%m-%dT%H%M%S.%f%z}"

    # The folder is unique; the file name says what is inside when it is downloaded.
    name = f"responses_{part(date_from, 'start')}_{part(date_to, 'end')}.{extension}"
    return f"exports/{uuid.uuid4().hex}/{name}"


def responses_export_start(
    *,
    email: str,
    date_from: dt.datetime | None,
    date_to: dt.datetime | None,
    by: Any,
    site_url: str = "",
    format: str = DEFAULT,
) -> Job:
    """Queue an export of the responses from ``date_from`` to ``date_to`` (inclusive).

    ``email`` is where the requester wants it ("" = their own address). The
    rules of ``responses.policy`` apply and every refusal is written to the
    audit log (outside any transaction, so it stays). Raises
    ``policy.ExportNotAllowed`` (403), ``policy.RecipientRefused`` (400),
    ``policy.RecipientCapReached`` or ``jobs.services.JobRateLimited`` (429).
    ``format`` names a writer (``csv``, ``csv_raw``, ``xlsx``, ``geojson``);
    an unknown one is a ``KeyError``.
    """
    if date_from and date_to and date_from > date_to:
        raise ValueError("date_from is after date_to")
    writer = writer_for(format)
    try:
        policy.require_export_permission(by)
        recipient = policy.recipient_for(by, email)
        # One address's mails, and one requester's exports, are counted one at a time:
        # concurrent requests would otherwise each count before the others' jobs exist.
        with policy.recipient_locked(recipient):
            _lock(get_user_model(), by.pk)
            policy.check_daily_cap(recipient)
            return _create(by, recipient, date_from, date_to, site_url, writer)
    except REFUSALS as exc:
        audit.record(AuditAction.REFUSED, user=by, detail=f"export to {email or 'self'}: {exc}")
        raise


REFUSALS = (policy.ExportNotAllowed, policy.RecipientRefused, policy.RecipientCapReached)


def _lock(model: Any, pk: Any) -> None:
    """Lock one row until the transaction ends (``SELECT … FOR UPDATE``)."""
    list(model._default_manager.select_for_update().filter(pk=pk).values_list("pk", flat=True))


def _create(
    by: Any,
    recipient: str,
    date_from: dt.datetime | None,
    date_to: dt.datetime | None,
    site_url: str,
    writer: Any,
) -> Job:
    params = {
        "email": recipient,
        "from": date_from.isoformat() if date_from else None,
        "to": date_to.isoformat() if date_to else None,
        "format": writer.name,
        "file": _file_name(date_from, date_to, writer.extension),
        "site": (site_url or settings.COLLECT_SITE_URL).rstrip("/"),
    }
    label = (
        f"Responses {exact(date_from) or 'from the start'} to {exact(date_to) or 'the end'}, "
        f"{writer.name}, for {recipient}"
    )
    return job_create(kind="export_responses", owner=by, params=params, label=label[:255])


class SendAgainRefused(Exception):
    """The export cannot be sent again; the message is for the user."""


def responses_export_send_again(*, job: Job, by: Any) -> dict[str, Any]:
    """Mail a finished export's file (or link) again to its address; returns the new ``result``.

    ``by`` must be allowed to see the job (the caller checks, as for every job
    page) and to export (``policy.ExportNotAllowed`` otherwise, 403); the
    address is checked again against today's rules and the daily cap
    (``policy.RecipientCapReached``, 429), and one export is sent again at most
    ``policy.MAX_SENDS_AGAIN`` times. Raises ``SendAgainRefused`` (409) when
    the job is not a finished export, its file is no longer kept, the address
    is no longer allowed or the sends are used up. Refusals are audited. A
    failed send is recorded on the job like the first one.
    """
    from django.core.files.storage import default_storage

    from responses import mail

    refusal = policy.send_again_refusal(job)  # not an export, or not finished
    if refusal:
        audit.record(AuditAction.REFUSED, user=by, job_id=job.id, detail=f"send again: {refusal}")
        raise SendAgainRefused(refusal)
    if not job.result_file or not default_storage.exists(job.result_file):
        raise SendAgainRefused("The export's file is no longer kept; start the export again.")
    recipient = job.param("email", "")
    try:
        policy.require_export_permission(by)
        policy.recipient_for(job.owner, recipient)  # the rules may have changed since
        with policy.recipient_locked(recipient):
            # Counted under locks on the address and on the job, and recorded before
            # the locks go (the mail is sent after): concurrent clicks, on this export
            # or on another one for the same address, cannot each see the old count.
            policy.check_daily_cap(recipient)
            _lock(Job, job.id)
            job.refresh_from_db(fields=["result"])
            sends_again = int((job.result or {}).get("sends_again", 0))
            if sends_again >= policy.MAX_SENDS_AGAIN:
                raise SendAgainRefused(
                    f"This export was already sent again {sends_again} times, the most "
                    "allowed. Download it from this page, or start a new export."
                )
            Job.objects.filter(id=job.id).update(
                result={**(job.result or {}), "sends_again": sends_again + 1}
            )
            audit.record(AuditAction.SEND_AGAIN, user=by, job_id=job.id, detail=f"to {recipient}")
    except (*REFUSALS, SendAgainRefused) as exc:
        audit.record(AuditAction.REFUSED, user=by, job_id=job.id, detail=f"send again: {exc}")
        if isinstance(exc, policy.RecipientRefused):
            raise SendAgainRefused(str(exc)) from None
        raise  # no permission: 403; the cap: 429
    result, reason = mail.send(job)
    error = mail.failure_text(job, reason) if reason else ""
    with transaction.atomic():
        # Another click may have claimed a send meanwhile (and sent it sooner): the
        # count only grows, or a slow mail would give back a send already used.
        _lock(Job, job.id)
        job.refresh_from_db(fields=["result"])
        claimed = int((job.result or {}).get("sends_again", 0))
        result["sends_again"] = max(claimed, sends_again + 1)
        Job.objects.filter(id=job.id).update(result=result, error=error)
    return result
