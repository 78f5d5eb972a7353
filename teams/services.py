"""Starting a team import: the one function the page, the API and the CLI call."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction

from jobs.models import Job
from jobs.retention import check_quota
from jobs.services import job_create
from teams.readers.encodings import is_known

ON_ERROR_CHOICES = ("fail", "skip")


class ImportRequestError(ValueError):
    """The request to start an import is wrong (HTTP 400); the message is for the user."""


def teams_import_start(
    *,
    file: File[Any],
    by: Any,
    on_error: str = "fail",
    batch_size: int | None = None,
    encoding: str = "",
    sheet: str = "",
) -> Job:
    """Store the uploaded CSV file or workbook and queue the job that imports it.

    ``encoding`` (a Python codec name such as ``cp1252``; empty: detected) is
    how a CSV file without a byte order mark is read; ``sheet`` is the name of
    the workbook sheet to import (empty: the first).

    The file is saved under a generated name (the user's file name is only the
    job's label, never a path). A temporary upload is moved, not copied, when
    storage and upload folder share a disk. ``batch_size`` overrides the
    COLLECT_IMPORT_BATCH_SIZE setting for this job (tuning, tests).
    """
    if on_error not in ON_ERROR_CHOICES:
        raise ImportRequestError('on_error must be "fail" or "skip".')
    if batch_size is not None and batch_size < 1:
        raise ImportRequestError("The batch size must be 1 or more.")
    encoding, sheet = encoding.strip(), sheet.strip()
    if encoding and not is_known(encoding):
        raise ImportRequestError(
            f'"{encoding[:50]}" is not an encoding Collect knows. Leave it empty to have it '
            "detected, or give one such as utf-8, cp1252 (Windows Western), cp1251, latin-1."
        )
    check_quota(user=by, incoming=int(file.size or 0))
    original = (file.name or "teams.csv").replace("\\", "/").rsplit("/", 1)[-1]
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
                },
                label=original,
            )
    except BaseException:
        default_storage.delete(stored)
        raise
