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
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request

from jobs.models import Job
from jobs.services import jobs_visible_to
from teams.models import Team

PAGE_ROWS = 50


class TeamPages(CursorPagination):
    """Keyset pages of ``PAGE_ROWS`` teams in id order; the cursor is ``?cursor=``."""

    page_size = PAGE_ROWS
    ordering = "id"


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
    q = request.GET.get("q", "").strip()[:200]
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
