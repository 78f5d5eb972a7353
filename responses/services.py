"""Starting an export: the one function the page, the API and the CLI call."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs.models import Job
from jobs.services import job_create
from responses.forms import exact
from responses.writers import DEFAULT, writer_for


def _file_name(date_from: dt.datetime | None, date_to: dt.datetime | None, extension: str) -> str:
    def part(moment: dt.datetime | None, missing: str) -> str:
        # The exact instant and its offset, without characters file systems refuse.
        return f"{timezone.localtime(moment):%Y-%m-%dT%H%M%S.%f%z}" if moment else missing

    # The folder is unique; the file name says what is inside when it is downloaded.
    name = f"responses_{part(date_from, 'start')}_{part(date_to, 'end')}.{extension}"
    return f"exports/{uuid.uuid4().hex}/{name}"


@transaction.atomic
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

    ``format`` names a writer (``csv``, ``csv_raw``, ``xlsx``, ``geojson``);
    an unknown one is a ``KeyError``.
    """
    if date_from and date_to and date_from > date_to:
        raise ValueError("date_from is after date_to")
    writer = writer_for(format)
    params = {
        "email": email,
        "from": date_from.isoformat() if date_from else None,
        "to": date_to.isoformat() if date_to else None,
        "format": writer.name,
        "file": _file_name(date_from, date_to, writer.extension),
        "site": (site_url or settings.COLLECT_SITE_URL).rstrip("/"),
    }
    label = (
        f"Responses {exact(date_from) or 'from the start'} to {exact(date_to) or 'the end'}, "
        f"{writer.name}, for {email}"
    )
    return job_create(kind="export_responses", owner=by, params=params, label=label[:255])


class SendAgainRefused(Exception):
    """The export cannot be sent again; the message is for the user."""


def responses_export_send_again(*, job: Job, by: Any) -> dict[str, Any]:
    """Mail a finished export's file (or link) again to its address; returns the new ``result``.

    ``by`` must be allowed to see the job (the caller checks, as for every job
    page). Raises ``SendAgainRefused`` when the job is not a finished export or
    its file is no longer kept. A failed send is recorded on the job like the first one.
    """
    from django.core.files.storage import default_storage

    from jobs.models import State
    from responses import mail

    if job.kind != "export_responses" or job.state != State.SUCCEEDED:
        raise SendAgainRefused(
            f"Only a finished export can be sent again; this job is {job.state}."
        )
    if not job.result_file or not default_storage.exists(job.result_file):
        raise SendAgainRefused("The export's file is no longer kept; start the export again.")
    result, reason = mail.send(job)
    error = mail.failure_text(job, reason) if reason else ""
    Job.objects.filter(id=job.id).update(result=result, error=error)
    return result
