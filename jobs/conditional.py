"""Conditional GET for the jobs API: an unchanged job, or page of jobs, is a bodiless 304.

Pollers (scripts, browsers' caches) send back the ``ETag`` of their last answer
in ``If-None-Match`` (RFC 9110, sections 8.8.3 and 13.1.2); when nothing they
were shown has changed they get ``304 Not Modified`` without the jobs being
read in full or serialised.

The tag is a digest of what the answer is made of, read with a cheap query:
each shown job's id, ``updated_at`` (every change of a job row moves it:
``jobs.models.JobQuerySet.update``) and owner's name; for a list, the count of
jobs that match; the full URL (links in the answer are absolute, and the page
number and filters are in the query string); the caller (two users see
different jobs at one URL); and the settings that shape the text
(``COLLECT_RETENTION_DAYS``, ``TIME_ZONE``). It is a weak tag (``W/"…"``): it
stands for the JSON's meaning, not its bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.utils import timezone
from django.utils.cache import get_conditional_response, patch_cache_control

# Change it when the JSON of a job changes for the same row (a new field, a new
# format), so that clients holding an old tag get the new shape.
SHAPE_VERSION = "1"

# (job id, updated_at, owner's user name): what a tag is made of, per job.
JobKey = tuple[Any, datetime, str]


def shape(request: HttpRequest) -> tuple[Any, ...]:
    """What shapes a job's JSON besides its row: shape version, site address, zone, retention.

    Part of the ``ETag`` (with the full URL) and of ``serializers.rendered_jobs``'s keys.
    """
    return (
        SHAPE_VERSION,
        request.build_absolute_uri("/"),
        timezone.get_current_timezone_name(),
        settings.COLLECT_RETENTION_DAYS,
    )


def jobs_etag(request: HttpRequest, keys: Iterable[JobKey], count: int | None = None) -> str:
    """The weak ``ETag`` of an answer about the jobs ``keys`` (``count`` matching, for a list).

    ``request`` gives the URL and the caller. Returns a quoted tag such as
    ``W/"3f2a…"`` (32 hex digits, BLAKE2b).
    """
    digest = hashlib.blake2b(digest_size=16)
    seed = (
        SHAPE_VERSION,
        request.build_absolute_uri(),
        getattr(request.user, "pk", None),
        settings.COLLECT_RETENTION_DAYS,
        settings.TIME_ZONE,
        count,
    )
    digest.update(repr(seed).encode())
    for job_id, updated_at, owner in keys:
        digest.update(f"\n{job_id}|{updated_at.isoformat()}|{owner}".encode())
    return f'W/"{digest.hexdigest()}"'


def not_modified(request: HttpRequest, etag: str) -> HttpResponseBase | None:
    """A 304 (412 for a failed ``If-Match``) when the preconditions call for one, else None."""
    response = get_conditional_response(request, etag=etag)
    return None if response is None else tagged(response, etag)


def tagged(response: HttpResponseBase, etag: str) -> HttpResponseBase:
    """``response`` with its ``ETag``, and ``Cache-Control: private, no-cache``.

    ``no-cache`` lets a browser keep the answer but ask again each time (with
    ``If-None-Match``); ``private`` keeps it out of shared caches.
    """
    response.headers["ETag"] = etag
    patch_cache_control(response, private=True, no_cache=True)
    return response
