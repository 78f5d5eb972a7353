"""``/teams/``: the imported teams, searchable, filtered by the import that wrote them.

Pages are keyset (cursor) pages on the primary key, through DRF's
``CursorPagination``, so the tenth-million row costs what the first does: no
``OFFSET``, no ``COUNT(*)``. The search is a case-insensitive substring of
the name, evaluated while walking the key in order: it stops after one page
of matches, so common words are instant and a word that matches almost
nothing reads the table once.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

from jobs.models import Job
from jobs.services import jobs_visible_to
from teams.models import Team

PAGE_ROWS = 50
BAD_CURSOR = "This page link is damaged or cut short; the list starts again at the first team."
# The largest primary key (a BigAutoField): a cursor position beyond it is no key of ours.
_MAX_ID = 2**63 - 1


class TeamPages(CursorPagination):
    """Keyset pages of ``PAGE_ROWS`` teams in id order; the cursor is ``?cursor=``.

    A cursor that is not one this page wrote (cut short, edited, base64 that is
    not ours, a position that is no id) starts the list again at the first page
    and sets ``damaged``, as ``/responses/`` does with its page links, instead of
    DRF's ``NotFound`` (a 500 in a page that is not a DRF view) or a query that
    cannot be run.
    """

    page_size = PAGE_ROWS
    ordering = "id"
    damaged = False

    def decode_cursor(self, request: Request) -> Cursor | None:
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            cursor = None
        else:
            if cursor is None or cursor.position is None or _is_id(str(cursor.position)):
                return cursor
        self.damaged = True
        return None


def _is_id(position: str) -> bool:
    return position.isascii() and position.isdigit() and int(position) <= _MAX_ID


def _relative(url: str | None) -> str | None:
    """DRF builds absolute links; a page links within itself."""
    if not url:
        return None
    return url[url.index("/", url.index("//") + 2) :]


@login_required
@require_GET
def team_list(request: HttpRequest) -> HttpResponse:
    """Query parameters: ``q`` (part of the name), ``job`` (the import's task id), ``cursor``.

    ``job`` must be an import the user may see (their own, or any with
    ``jobs.manage_all_jobs``): another's is a 404, as on every job page. The
    Import column links only to such imports and names no one else's task id.
    """
    # No name holds a NUL (the import refuses it), and PostgreSQL refuses one in a query.
    q = request.GET.get("q", "").replace("\x00", "").strip()[:200]
    raw_job = request.GET.get("job", "").strip()
    teams = Team.objects.only("id", "name", "manager", "members", "job_id")
    job: Any = None
    job_error = ""
    if raw_job:
        try:
            job_id = uuid.UUID(raw_job)
        except ValueError:
            job_error = f"“{raw_job}” is not a task id; it looks like 8c1e…-… (36 characters)."
        else:
            job = get_object_or_404(jobs_visible_to(request.user), id=job_id)
            # A job run in parts (jobs/parts.py): its parts wrote the rows.
            parts = Job.objects.filter(parent_id=job_id).values_list("id", flat=True)
            teams = teams.filter(job_id__in=[job_id, *parts])
    if q:
        teams = teams.filter(name__icontains=q)
    pages = TeamPages()
    rows: list[Team] = [] if job_error else (pages.paginate_queryset(teams, Request(request)) or [])
    job_ids = {team.job_id for team in rows if team.job_id}
    visible = set(jobs_visible_to(request.user).filter(id__in=job_ids).values_list("id", flat=True))
    context = {
        "cursor_error": BAD_CURSOR if pages.damaged else "",
        "teams": rows,
        "visible_jobs": visible,
        "q": q,
        "job": job,
        "job_id": raw_job,
        "job_error": job_error,
        "next": None if job_error else _relative(pages.get_next_link()),
        "previous": None if job_error else _relative(pages.get_previous_link()),
    }
    return render(request, "teams/list.html", context)
