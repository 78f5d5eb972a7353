"""REST API: list and watch your jobs, pause, resume and stop them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from jobs import services
from jobs.models import Job, State
from jobs.serializers import JobSerializer, StateConflictSerializer


def conflict(error: services.JobStateError) -> Response:
    return Response({"detail": str(error), "state": error.state}, status=status.HTTP_409_CONFLICT)


@extend_schema(
    parameters=[
        OpenApiParameter("state", str, enum=[s.value for s in State]),
        OpenApiParameter("kind", str),
    ]
)
class JobViewSet(viewsets.ReadOnlyModelViewSet):
    """The caller's jobs (staff: everybody's), newest first."""

    serializer_class = JobSerializer
    lookup_value_regex = "[0-9a-fA-F-]{32,36}"

    def get_queryset(self) -> QuerySet[Job]:
        qs = services.jobs_visible_to(self.request.user).select_related("owner")
        state = self.request.query_params.get("state")
        kind = self.request.query_params.get("kind")
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

    @extend_schema(request=None, responses={200: JobSerializer, 409: StateConflictSerializer})
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: Any = None) -> Response:
        return self._control(services.job_pause)

    @extend_schema(request=None, responses={200: JobSerializer, 409: StateConflictSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: Any = None) -> Response:
        return self._control(services.job_resume)

    @extend_schema(request=None, responses={200: JobSerializer, 409: StateConflictSerializer})
    @action(detail=True, methods=["post"])
    def stop(self, request: Request, pk: Any = None) -> Response:
        return self._control(services.job_stop)
