"""REST API: list and watch your jobs, pause, resume and stop them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
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
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import services
from jobs.kinds import kinds
from jobs.models import Job, State
from jobs.serializers import JobSerializer, StateConflictSerializer


def conflict(error: services.JobStateError) -> Response:
    return Response({"detail": str(error), "state": error.state}, status=status.HTTP_409_CONFLICT)


NOT_FOUND = OpenApiResponse(
    inline_serializer("NotFound", {"detail": serializers.CharField()}),
    description="No such job, or another user's job (the same answer).",
)
TASK_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH)
CONTROL = extend_schema(
    request=None,
    parameters=[TASK_ID],
    responses={200: JobSerializer, 404: NOT_FOUND, 409: StateConflictSerializer},
)


# The filters belong to the list only; every job id may be unknown (404).
@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("state", str, enum=[s.value for s in State]),
            OpenApiParameter("kind", str),
        ],
        responses={
            200: JobSerializer(many=True),
            400: OpenApiResponse(description="An unknown state or kind."),
            404: NOT_FOUND,
        },
    ),
    retrieve=extend_schema(parameters=[TASK_ID], responses={200: JobSerializer, 404: NOT_FOUND}),
)
class JobViewSet(viewsets.ReadOnlyModelViewSet):
    """The caller's jobs (with ``jobs.manage_all_jobs``: everybody's), newest first."""

    serializer_class = JobSerializer
    lookup_value_regex = "[0-9a-fA-F-]{32,36}"

    def get_queryset(self) -> QuerySet[Job]:
        qs = services.jobs_visible_to(self.request.user).select_related("owner")
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

    def _control(self, fn: Callable[..., Job]) -> Response:
        job = self.get_object()
        try:
            job = fn(job=job, by=self.request.user)
        except services.JobStateError as error:
            return conflict(error)
        return Response(JobSerializer(job, context={"request": self.request}).data)

    @CONTROL
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: Any = None) -> Response:
        return self._control(services.job_pause)

    @CONTROL
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: Any = None) -> Response:
        return self._control(services.job_resume)

    @CONTROL
    @action(detail=True, methods=["post"])
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
