"""REST API: list and watch your jobs, pause, resume and stop them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponseBase
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import conditional, services
from jobs.kinds import kinds
from jobs.models import Job, State
from jobs.serializers import JobSerializer, StateConflictSerializer, rendered_jobs


def conflict(error: services.JobStateError) -> Response:
    return Response({"detail": str(error), "state": error.state}, status=status.HTTP_409_CONFLICT)


NOT_FOUND = OpenApiResponse(
    inline_serializer("NotFound", {"detail": serializers.CharField()}),
    description="No such job, or another user's job (the same answer).",
)
TASK_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH)
# Conditional GET (jobs.conditional): send back the last answer's ETag, get a 304 if unchanged.
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match",
    str,
    OpenApiParameter.HEADER,
    description="The ETag of an earlier answer: 304 without a body if nothing in it changed.",
)
ETAG = OpenApiParameter(
    "ETag",
    str,
    OpenApiParameter.HEADER,
    response=[200, 304],
    description="A weak tag of this answer, for If-None-Match.",
)
NOT_MODIFIED = OpenApiResponse(description="Nothing changed since the answer whose ETag was sent.")
CONTROL = extend_schema(
    request=None,
    parameters=[TASK_ID],
    responses={200: JobSerializer, 404: NOT_FOUND, 409: StateConflictSerializer},
)


# Job columns that the API's answers do not show: a list does not read them.
UNSHOWN = (
    # not "checkpoint": Job.has_parts reads it for every job shown
    "samples",
    "checking",
    # not "worker", "lease_token", "lease_expires_at": a running job's time left
    # reads them (Job.unattended)
    "attempts",
    "run_seconds",
    "enqueued_at",
)


# The filters belong to the list only; every job id may be unknown (404).
@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("state", str, enum=[s.value for s in State]),
            OpenApiParameter("kind", str),
            OpenApiParameter(
                "page",
                str,
                description="A page number from 1, or `last`; 50 jobs a page (the answer's "
                "`count`, `next` and `previous` say more).",
            ),
            IF_NONE_MATCH,
            ETAG,
        ],
        responses={
            200: JobSerializer(many=True),
            304: NOT_MODIFIED,
            400: OpenApiResponse(
                description="An unknown state or kind, or a page that is no number."
            ),
            404: OpenApiResponse(
                description="A page past the end; the message says how many there are."
            ),
        },
    ),
    retrieve=extend_schema(
        parameters=[TASK_ID, IF_NONE_MATCH, ETAG],
        responses={200: JobSerializer, 304: NOT_MODIFIED, 404: NOT_FOUND},
    ),
)
class JobViewSet(viewsets.ReadOnlyModelViewSet):
    """The caller's jobs (with ``jobs.manage_all_jobs``: everybody's), newest first."""

    serializer_class = JobSerializer
    lookup_value_regex = "[0-9a-fA-F-]{32,36}"
    # The rate limits count the control actions apart (collect/throttling.py).
    throttle_bucket = ""

    def get_queryset(self) -> QuerySet[Job]:
        qs = services.jobs_visible_to(self.request.user).select_related("owner")
        if self.action == "list":
            qs = qs.filter(parent=None)  # parts are listed on their job (``parts``)
        state = self.request.query_params.get("state")
        kind = self.request.query_params.get("kind")
        # Refused, not ignored: a typo must not look like "no jobs". Checking also keeps
        # odd bytes (NUL, which PostgreSQL refuses in text) out of the query.
        if state and state not in State.values:
            raise serializers.ValidationError(
                {"state": [f"Unknown state {state!r}; use one of {', '.join(State.values)}."]}
            )
        if kind and kind not in kinds():
            raise serializers.ValidationError(
                {"kind": [f"Unknown kind {kind!r}; use one of {', '.join(sorted(kinds()))}."]}
            )
        if state:
            qs = qs.filter(state=state)
        if kind:
            qs = qs.filter(kind=kind)
        return qs

    def list(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:  # type: ignore[override]
        """One page of jobs; a 304 if the page's jobs and the count have not changed.

        The page is first read as keys only (id, ``updated_at``, owner; and the
        count), which is all the ``ETag`` needs; only when it differs from the
        client's are the jobs read in full, without the columns the answer does
        not show, and serialised: only those not already in ``rendered_jobs``
        (finished jobs, as written for an earlier request with the same key).
        """
        queryset = self.filter_queryset(self.get_queryset())
        keys = self.paginate_queryset(queryset.values_list("id", "updated_at", "owner__username"))
        pages = self.paginator
        # The settings' pagination: a page size is set, so there is always a page.
        assert (
            keys is not None and isinstance(pages, PageNumberPagination) and pages.page is not None
        )
        etag = conditional.jobs_etag(request, keys, pages.page.paginator.count)
        unchanged = conditional.not_modified(request, etag)
        if unchanged is not None:
            return unchanged
        context = conditional.shape(request)
        shown: dict[Any, dict[str, Any]] = {}
        for key in keys:
            hit = rendered_jobs.get((key, context))
            if hit is not None:
                shown[key[0]] = hit
        missing = [k[0] for k in keys if k[0] not in shown]
        if missing:
            jobs = list(queryset.filter(id__in=missing).defer(*UNSHOWN))
            for job, data in zip(jobs, self.get_serializer(jobs, many=True).data, strict=True):
                shown[job.id] = data
                if rendered_jobs.cacheable(job):
                    key = (job.id, job.updated_at, job.owner.get_username())
                    rendered_jobs.put((key, context), data)
        # In the page's order; a job deleted since the keys were read is left out.
        page = [shown[k[0]] for k in keys if k[0] in shown]
        return conditional.tagged(self.get_paginated_response(page), etag)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:  # type: ignore[override]
        """One job; a 304 if it has not changed since the answer whose ETag the client sent."""
        job = self.get_object()
        etag = conditional.jobs_etag(request, [(job.id, job.updated_at, job.owner.get_username())])
        unchanged = conditional.not_modified(request, etag)
        if unchanged is not None:
            return unchanged
        return conditional.tagged(Response(self.get_serializer(job).data), etag)

    def _control(self, fn: Callable[..., Job]) -> Response:
        job = self.get_object()
        try:
            job = fn(job=job, by=self.request.user)
        except services.JobStateError as error:
            return conflict(error)
        return Response(JobSerializer(job, context={"request": self.request}).data)

    @CONTROL
    @action(detail=True, methods=["post"], throttle_bucket="control")
    def pause(self, request: Request, pk: Any = None) -> Response:
        return self._control(services.job_pause)

    @CONTROL
    @action(detail=True, methods=["post"], throttle_bucket="control")
    def resume(self, request: Request, pk: Any = None) -> Response:
        return self._control(services.job_resume)

    @CONTROL
    @action(detail=True, methods=["post"], throttle_bucket="control")
    def stop(self, request: Request, pk: Any = None) -> Response:
        return self._control(services.job_stop)


class ApiRoot(APIView):
    """``GET /api/``: links to every endpoint (a router root lists only its own views)."""

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        def link(name: str) -> str:
            return request.build_absolute_uri(reverse(name))

        return Response(
            {
                "tasks": link("api-task-list"),
                "import_teams": link("api-import-teams"),
                "export_responses": link("api-responses-export"),
                "schema": link("schema"),
                "docs": link("api-docs"),
            }
        )
