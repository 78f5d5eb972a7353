"""Starting a team import: the one function the page, the API and the CLI call."""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction

from jobs.formatting import state_phrase
from jobs.models import Job
from jobs.parts import MAX_PARTS
from jobs.retention import check_quota
from jobs.services import job_create
from teams.readers.encodings import is_known
from teams.upsert import CREATE, KEYS, MODES, UPSERT

ON_ERROR_CHOICES = ("fail", "skip")
# C0 and C1 control characters (a NUL, line breaks, tabs): in no sheet name or file label.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# Django's own permission to edit a team (the admin's "Can change team"): an upsert
# rewrites teams that other people's imports created, so it needs what the admin's
# change form would need. A create import only adds teams and needs none.
UPSERT_PERMISSION = "teams.change_team"
UPSERT_NOT_ALLOWED = (
    'Updating existing teams (mode "upsert") needs the permission "Can change team" '
    "(teams.change_team), which your account does not have. Ask an administrator to grant "
    'it, or import with mode "create", which only adds new teams.'
)


class ImportRequestError(ValueError):
    """The request to start an import is wrong (HTTP 400); the message is for the user."""


class UpsertNotAllowed(PermissionDenied):
    """The user lacks ``teams.change_team`` and asked for an upsert (HTTP 403)."""

    def __init__(self) -> None:
        super().__init__(UPSERT_NOT_ALLOWED)


def may_upsert(user: Any) -> bool:
    """Whether ``user`` may start an upsert (or its dry run): ``teams.change_team``."""
    return bool(getattr(user, "is_authenticated", False) and user.has_perm(UPSERT_PERMISSION))


def teams_import_start(
    *,
    file: File[Any],
    by: Any,
    on_error: str = "fail",
    batch_size: int | None = None,
    encoding: str = "",
    sheet: str = "",
    mode: str = CREATE,
    key: str = "",
    dry_run: bool = False,
    parallelism: int | None = None,
) -> Job:
    """Store the uploaded CSV file or workbook and queue the job that imports it.

    ``encoding`` (a Python codec name such as ``cp1252``; empty: detected) is
    how a CSV file without a byte order mark is read; ``sheet`` is the name of
    the workbook sheet to import (empty: the first).

    ``mode`` is ``create`` (every row is a new team) or ``upsert`` (a row whose
    ``key`` column, ``name`` by default or ``manager``, matches a team updates
    it; a new key creates one). ``dry_run`` checks and matches every row,
    writes nothing and ends with the counts and the first changes in ``result``.
    An upsert, its dry run included (it shows other people's teams' values),
    needs ``teams.change_team``: else ``UpsertNotAllowed`` (403). A ``key``
    with mode ``create`` is an ``ImportRequestError`` (400).

    The file is saved under a generated name (the user's file name is only the
    job's label, never a path). A temporary upload is moved, not copied, when
    storage and upload folder share a disk. ``batch_size`` overrides the
    COLLECT_IMPORT_BATCH_SIZE setting for this job (tuning, tests).

    ``parallelism`` (1 to 64; None: the COLLECT_IMPORT_PARALLELISM setting) is
    how many parts a create import runs as, on different workers at once
    (``jobs.parts``). An upsert and a dry run run in one part: asking them for
    more is an ``ImportRequestError``.
    """
    if on_error not in ON_ERROR_CHOICES:
        raise ImportRequestError('on_error must be "fail" or "skip".')
    if batch_size is not None and batch_size < 1:
        raise ImportRequestError("The batch size must be 1 or more.")
    encoding, sheet = encoding.strip(), sheet.strip()
    mode, key = check_mode(mode=mode, key=key)
    if mode == UPSERT and not may_upsert(by):
        raise UpsertNotAllowed
    if encoding and not is_known(encoding):
        raise ImportRequestError(
            f'"{encoding[:50]}" is not an encoding Collect knows. Leave it empty to have it '
            "detected, or give one such as utf-8, cp1252 (Windows Western), cp1251, latin-1."
        )
    if CONTROL.search(sheet):
        # Excel allows no such character in a sheet name; PostgreSQL stores no NUL in JSON.
        raise ImportRequestError(
            "The sheet name contains a control character (such as a NUL or a line break), "
            "which no sheet name has. Type the name as the workbook's tab shows it, or leave "
            "it empty to import the first sheet."
        )
    parallelism = check_parallelism(parallelism, single=mode == UPSERT or dry_run)
    check_quota(user=by, incoming=int(file.size or 0))
    original = (file.name or "teams.csv").replace("\\", "/").rsplit("/", 1)[-1]
    # Only shown as the job's label: control characters (a NUL, which PostgreSQL's text and
    # JSON refuse; line breaks) are dropped rather than refusing a file for its name.
    original = CONTROL.sub("", original) or "teams.csv"
    stored = default_storage.save(f"imports/teams/{uuid.uuid4().hex}.csv", file)
    try:
        with transaction.atomic():
            return job_create(
                kind="import_teams",
                owner=by,
                params={
                    "file": stored,
                    "filename": original,
                    "size": default_storage.size(stored),
                    "on_error": on_error,
                    # None: the COLLECT_IMPORT_BATCH_SIZE setting when the batch runs.
                    "batch_size": batch_size,
                    "encoding": encoding or None,
                    "sheet": sheet or None,
                    "mode": mode,
                    "key": key or None,
                    "dry_run": dry_run or None,  # None: not shown on the job page
                    # Parts run at once (jobs.parts); only set when more than one.
                    **({"parallelism": parallelism} if parallelism > 1 else {}),
                },
                label=original,
            )
    except BaseException:
        default_storage.delete(stored)
        raise


def check_parallelism(value: Any, *, single: bool) -> int:
    """How many parts the import runs as (``teams_import_start``), or ``ImportRequestError``.

    ``value`` may be a form's text; None or "" means the COLLECT_IMPORT_PARALLELISM
    setting (which an upsert or a dry run, run in one part, ignores).
    """
    if value is None or str(value).strip() == "":
        return 1 if single else int(settings.COLLECT_IMPORT_PARALLELISM)
    try:
        parts = int(str(value).strip())
    except ValueError:
        parts = 0
    if not 1 <= parts <= MAX_PARTS:
        raise ImportRequestError(
            f"parallelism must be a whole number from 1 to {MAX_PARTS} (the parts the import "
            f'runs as, on different workers at once), not "{str(value)[:20]}".'
        )
    if single and parts > 1:
        raise ImportRequestError(
            f"An upsert or a dry run runs in one part; parallelism {parts} works for mode "
            '"create" only. Leave parallelism out, or send 1.'
        )
    return parts


def check_mode(*, mode: str, key: str) -> tuple[str, str]:
    """The import mode and key as stored, or ``ImportRequestError`` with what to send instead."""
    mode, key = (mode or CREATE).strip().lower(), (key or "").strip().lower()
    if mode not in MODES:
        raise ImportRequestError(
            f'"{mode[:50]}" is not an import mode. Send mode "create" (add every row as a new '
            'team) or "upsert" (update the teams whose key matches, add the others).'
        )
    if mode == CREATE:
        if key:
            raise ImportRequestError(
                f'A key ("{key[:50]}") is used only by mode "upsert", to find the team a row '
                'updates; mode "create" adds every row as a new team. Leave the key out, or '
                'send mode "upsert".'
            )
        return mode, ""
    key = key or KEYS[0]
    if key not in KEYS:
        raise ImportRequestError(
            f'"{key[:50]}" cannot be the key: teams are matched on {" or ".join(KEYS)} '
            "(a column of the file that names one team). Send one of these, or leave the key "
            "out to match on name."
        )
    return mode, key


def parse_flag(value: Any, *, name: str) -> bool:
    """``true``/``false`` (also 1/0, yes/no, on/off, empty) from a form or a query; else 400."""
    if isinstance(value, bool):
        return value
    text = str(value or "").strip().lower()
    if text in {"", "0", "false", "no", "off"}:
        return False
    if text in {"1", "true", "yes", "on"}:
        return True
    raise ImportRequestError(f'{name} must be "true" or "false", not "{text[:20]}".')


class ApplyRefused(Exception):
    """The dry run cannot be imported for real (HTTP 409); the message is for the user.

    ``applied_as`` is the task id of the import already started from it, if any.
    """

    def __init__(self, message: str, *, applied_as: str = "") -> None:
        super().__init__(message)
        self.applied_as = applied_as


def teams_import_apply(*, job: Job, by: Any) -> Job:
    """Start the real import of a finished dry run, on a copy of the same upload, once.

    The caller has checked that ``by`` may see ``job``. The copy gives the new
    job its own file: the retention sweep deletes each job's upload with it.
    The dry run's row is locked while the import starts and its ``params``
    get ``applied_as`` (the new task id), so a second apply, even at the same
    moment, is refused. Raises ``ApplyRefused`` when the job is not a finished
    dry run, found nothing to change, was already applied or its file is no
    longer kept; ``QuotaExceeded`` when the copy would pass the quota;
    ``UpsertNotAllowed`` when ``by`` may not upsert.
    """
    from jobs.models import State

    with transaction.atomic():
        job = Job.objects.select_for_update().get(id=job.id)
        if job.kind != "import_teams" or not job.param("dry_run") or job.state != State.SUCCEEDED:
            if job.kind != "import_teams":
                why = "this job is not a team import"
            elif not job.param("dry_run"):
                why = "this import is not a dry run: it wrote its teams itself"
            else:
                why = f"this dry run {state_phrase(job.state)}"
            raise ApplyRefused(
                f"Only a finished dry run of a team import can be imported for real; {why}."
            )
        applied = str(job.param("applied_as") or "")
        if applied:
            raise ApplyRefused(
                f"These changes were already imported (task id {applied}). To import the file "
                "again, upload it for a new dry run.",
                applied_as=applied,
            )
        result = job.result or {}
        if not (result.get("created") or result.get("updated")):
            raise ApplyRefused(
                "This dry run found nothing to change, so there is nothing to import."
            )
        name = job.param("file")
        if job.files_deleted_at is not None or not name or not default_storage.exists(name):
            raise ApplyRefused(
                "The file of this dry run is no longer kept. Upload it again to import it."
            )
        with default_storage.open(name, "rb") as fh:
            new = teams_import_start(
                file=File(fh, name=job.param("filename") or "teams.csv"),
                by=by,
                on_error=job.param("on_error") or "fail",
                batch_size=job.param("batch_size"),
                encoding=job.param("encoding") or "",
                sheet=job.param("sheet") or "",
                mode=job.param("mode") or CREATE,
                key=(job.param("key") or "") if job.param("mode") == UPSERT else "",
                dry_run=False,
            )
        Job.objects.filter(id=job.id).update(params={**job.params, "applied_as": str(new.id)})
    return new
