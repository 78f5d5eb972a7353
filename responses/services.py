"""Starting an export: the one function the page, the API and the CLI call."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.conf import settings

from jobs import audit
from jobs.models import AuditAction, Job
from jobs.services import job_create
from responses import policy
from responses.forms import show


def _file_name(date_from: dt.datetime | None, date_to: dt.datetime | None) -> str:
    def part(moment: dt.datetime | None, missing: str) -> str:
        return show(moment).replace(" ", "T").replace(":", "") if moment else missing

    # The folder is unique; the file name says what is inside when it is downloaded.
    name = f"responses_{part(date_from, 'start')}_{part(date_to, 'end')}.csv"
    return f"exports/{uuid.uuid4().hex}/{name}"


def responses_export_start(
    *,
    email: str,
    date_from: dt.datetime | None,
    date_to: dt.datetime | None,
    by: Any,
    site_url: str = "",
) -> Job:
    """Queue an export of the responses from ``date_from`` to ``date_to`` (inclusive).

    ``email`` is where the requester wants it ("" = their own address). The
    rules of ``responses.policy`` apply and every refusal is written to the
    audit log (outside any transaction, so it stays). Raises
    ``policy.ExportNotAllowed`` (403), ``policy.RecipientRefused`` (400),
    ``policy.RecipientCapReached`` or ``jobs.services.JobRateLimited`` (429).
    """
    if date_from and date_to and date_from > date_to:
        raise ValueError("date_from is after date_to")
    try:
        policy.require_export_permission(by)
        recipient = policy.recipient_for(by, email)
        policy.check_daily_cap(recipient)
    except (policy.ExportNotAllowed, policy.RecipientRefused, policy.RecipientCapReached) as exc:
        audit.record(AuditAction.REFUSED, user=by, detail=f"export to {email or 'self'}: {exc}")
        raise
    params = {
        "email": recipient,
        "from": date_from.isoformat() if date_from else None,
        "to": date_to.isoformat() if date_to else None,
        "file": _file_name(date_from, date_to),
        "site": (site_url or settings.COLLECT_SITE_URL).rstrip("/"),
    }
    label = f"Responses {show(date_from) or 'start'} to {show(date_to) or 'end'}, for {recipient}"
    return job_create(kind="export_responses", owner=by, params=params, label=label)
