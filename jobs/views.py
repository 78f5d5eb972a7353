"""Job pages: the list, one job, its control buttons and its files."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from jobs import services
from jobs.kinds import kinds
from jobs.models import Job, State
from jobs.web import PageOrJsonView

ACTIONS: dict[str, Callable[..., Job]] = {
    "pause": services.job_pause,
    "resume": services.job_resume,
    "stop": services.job_stop,
}


def _job_for(request: Any, task_id: Any) -> Job:
    return get_object_or_404(services.jobs_visible_to(request.user), id=task_id)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("job-list")


@login_required
@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    qs = services.jobs_visible_to(request.user).select_related("owner")
    state = request.GET.get("state", "")
    kind = request.GET.get("kind", "")
    if state:
        qs = qs.filter(state=state)
    if kind:
        qs = qs.filter(kind=kind)
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "jobs/list.html",
        {
            "page": page,
            "jobs": page.object_list,
            "states": [s.value for s in State],
            "kinds": sorted(kinds()),
            "state": state,
            "kind": kind,
        },
    )


@login_required
@require_GET
def job_detail(request: HttpRequest, task_id: Any) -> HttpResponse:
    job = _job_for(request, task_id)
    return render(request, "jobs/detail.html", {"job": job})


class JobActionView(PageOrJsonView):
    """``GET`` shows a confirmation page; ``POST`` pauses, resumes or stops the job.

    ``/stop_task/<task_id>`` (the seed's URL) is this view with ``action=stop``.
    """

    def get(self, request: Request, task_id: Any, action: str) -> HttpResponse:
        job = _job_for(request, task_id)
        return render(request._request, "jobs/confirm.html", {"job": job, "action": action})

    def post(self, request: Request, task_id: Any, action: str) -> HttpResponse:
        if action not in ACTIONS:
            raise Http404
        job = _job_for(request, task_id)
        try:
            job = ACTIONS[action](job=job, by=request.user)
        except services.JobStateError as error:
            if self.json(request):
                return Response(
                    {"task_id": str(job.id), "state": error.state, "detail": str(error)},
                    status=status.HTTP_409_CONFLICT,
                )
            messages.error(request._request, str(error))
            return redirect(job)
        if self.json(request):
            return Response({"task_id": str(job.id), "state": job.state})
        messages.success(request._request, f"Job {job.id}: {job.state}.")
        return redirect(request.POST.get("next") or job.get_absolute_url())


def _serve(job: Job, name: str, filename: str) -> FileResponse:
    if not name:
        raise Http404("This job has no such file.")
    try:
        fh = default_storage.open(name, "rb")
    except FileNotFoundError:
        raise Http404("The file is gone.") from None
    return FileResponse(fh, as_attachment=True, filename=filename)


@login_required
@require_GET
def job_result(request: HttpRequest, task_id: Any) -> HttpResponse:
    job = _job_for(request, task_id)
    if job.state != State.SUCCEEDED:
        return HttpResponse(
            f"The result is not ready: the job is {job.state}.",
            status=409,
            content_type="text/plain",
        )
    return _serve(job, job.result_file, job.result_file.rsplit("/", 1)[-1])


@login_required
@require_GET
def job_error_report(request: HttpRequest, task_id: Any) -> HttpResponse:
    job = _job_for(request, task_id)
    return _serve(job, job.error_report_file, f"errors-{job.id}.csv")
