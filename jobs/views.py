"""Job pages: the list, one job, its control buttons and its files."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotAllowed,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from jobs import audit, files, parts, services
from jobs.formatting import state_phrase
from jobs.kinds import kinds
from jobs.models import ACTIVE, AuditAction, Job, State
from jobs.retention import files_deleted_message
from jobs.web import PageOrJsonView, from_script

PER_PAGE = 20
# What the person reads after pressing a button: an event with its time, which
# stays true while the live part of the page moves on to the next state.
DONE = {
    State.PAUSING: "At {time} you asked to pause “{label}”; it pauses after its current batch.",
    State.PAUSED: "At {time} you paused “{label}”.",
    State.QUEUED: "At {time} you resumed “{label}”; it goes on where it stopped.",
    State.RUNNING: "At {time} you resumed “{label}”.",
    State.STOPPING: "At {time} you asked to stop “{label}”; what it wrote is removed.",
    State.STOPPED: "At {time} you stopped “{label}”; nothing it wrote is left.",
    # It ended meanwhile (a resumed job that then finished, say): never "was succeeded".
    State.SUCCEEDED: "By {time} “{label}” had succeeded.",
    State.FAILED: "By {time} “{label}” had failed.",
}
ACTIONS: dict[str, Callable[..., Job]] = {
    "pause": services.job_pause,
    "resume": services.job_resume,
    "stop": services.job_stop,
}


def _job_for(request: Any, task_id: Any) -> Job:
    job = get_object_or_404(services.jobs_visible_to(request.user), id=task_id)
    return parts.add_up(job)  # a job made of parts shows their progress


def _fragment(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A polled fragment: GET only, never cached, and no login page swapped into a table.

    When the session has ended, htmx is told to reload the page, which then
    sends the person to the login form as any page does.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        if not request.user.is_authenticated:
            response = HttpResponse("Log in again.", status=401, content_type="text/plain")
            response["HX-Refresh"] = "true"
            return response
        response = view(request, *args, **kwargs)
        add_never_cache_headers(response)
        return response

    return wrapper


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("job-list")


def _list_context(request: HttpRequest) -> dict[str, Any]:
    # Parts are shown on their job's page (jobs/parts.py), not as jobs of their own.
    qs = services.jobs_visible_to(request.user).select_related("owner").filter(parent=None)
    states = [s.value for s in State]
    known_kinds = sorted(kinds())
    # Unknown filter values are ignored rather than showing an empty list.
    state = request.GET.get("state", "")
    state = state if state in states else ""
    kind = request.GET.get("kind", "")
    kind = kind if kind in known_kinds else ""
    if state:
        qs = qs.filter(state=state)
    if kind:
        qs = qs.filter(kind=kind)
    page = Paginator(qs.order_by("-created_at", "-id"), PER_PAGE).get_page(request.GET.get("page"))
    query = urlencode({k: v for k, v in (("state", state), ("kind", kind)) if v})
    here = reverse("job-list") + (
        f"?{query}&page={page.number}" if query else f"?page={page.number}"
    )
    return {
        "page": page,
        "jobs": [parts.add_up(job) for job in page.object_list],
        "states": states,
        "kinds": [
            (k, kinds()[k].verbose_name) for k in known_kinds if kinds()[k].offered or k == kind
        ],
        "state": state,
        "kind": kind,
        "query": query,
        "here": here,
        "fragment_url": reverse("job-list-fragment") + here[len(reverse("job-list")) :],
        "live": any(job.state in ACTIVE for job in page.object_list),
        "show_owner": request.user.has_perm("jobs.manage_all_jobs"),
    }


@login_required
@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    return render(request, "jobs/list.html", _list_context(request))


@_fragment
def job_list_fragment(request: HttpRequest) -> HttpResponse:
    return render(request, "jobs/_list_live.html", _list_context(request))


def _detail_context(request: HttpRequest, task_id: Any) -> dict[str, Any]:
    job = _job_for(request, task_id)
    return {"job": job, "live": job.state in ACTIVE, "here": job.get_absolute_url()}


@login_required
@require_GET
def job_detail(request: HttpRequest, task_id: Any) -> HttpResponse:
    context = _detail_context(request, task_id)
    context["history"] = audit.job_history(context["job"].id)
    return render(request, "jobs/detail.html", context)


@_fragment
def job_detail_fragment(request: HttpRequest, task_id: Any) -> HttpResponse:
    return render(request, "jobs/_detail_live.html", _detail_context(request, task_id))


def _next_url(request: HttpRequest, job: Job) -> str:
    """Back to the page the button was on, if it is one of ours."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return job.get_absolute_url()


class JobActionView(PageOrJsonView):
    """``GET`` shows a confirmation page; ``POST`` pauses, resumes or stops the job.

    ``/stop_task/<task_id>`` (the seed's URL) is this view with ``action=stop``;
    there a GET with an API token stops the job, as the seed's scripts expect.
    It is a page (the API has ``/api/tasks/<id>/stop/``), so not in the schema.
    """

    schema = None
    throttle_bucket = "control"  # counted apart from polls (collect/throttling.py)

    def get(self, request: Request, task_id: Any, action: str) -> HttpResponse:
        if action not in ACTIONS:
            raise Http404
        match = request.resolver_match
        if from_script(request) and match is not None and match.url_name == "stop-task":
            # The seed's scripts stop a job with a GET and a token: keep them working.
            return self.post(request, task_id, action)
        job = _job_for(request, task_id)
        back = request.query_params.get("next", "")
        if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
            back = job.get_absolute_url()
        context = {
            "job": job,
            "action": action,
            "back": back,
            "impossible": services.action_refusal(job=job, action=action),
        }
        return render(request._request, "jobs/confirm.html", context)

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
            return redirect(_next_url(request._request, job))
        if self.json(request):
            return Response({"task_id": str(job.id), "state": job.state})
        done = DONE.get(State(job.state), "At {time} “{label}” was {state}.")
        at = timezone.localtime().strftime("%H:%M:%S")
        messages.success(
            request._request, done.format(time=at, label=job.label or job.id, state=job.state)
        )
        return redirect(_next_url(request._request, job))


def _serve(request: HttpRequest, job: Job, name: str, filename: str) -> HttpResponseBase:
    if job.files_deleted_at is not None:
        return HttpResponse(files_deleted_message(job), status=410, content_type="text/plain")
    if not name:
        raise Http404("This job has no such file.")
    response = files.serve(name, filename)
    audit.record(AuditAction.DOWNLOAD, user=request.user, job_id=job.id, detail=filename)
    return response


@login_required
@require_GET
def job_result(request: HttpRequest, task_id: Any) -> HttpResponseBase:
    job = _job_for(request, task_id)
    if job.state != State.SUCCEEDED:
        said = (
            f"There is no result: this job {state_phrase(job.state)}."
            if job.is_terminal
            else f"The result is not ready yet: this job {state_phrase(job.state)}."
        )
        return HttpResponse(said, status=409, content_type="text/plain")
    return _serve(request, job, job.result_file, job.result_file.rsplit("/", 1)[-1])


@login_required
@require_GET
def job_error_report(request: HttpRequest, task_id: Any) -> HttpResponseBase:
    job = _job_for(request, task_id)
    return _serve(request, job, job.error_report_file, f"errors-{job.id}.csv")
