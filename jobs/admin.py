from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from jobs import services
from jobs.models import AuditEntry, Job

# What a staff user reads when the address filters by a date Python cannot step to
# or move to UTC (?at__year=9999 asks for "before 10000-01-01").
BAD_DATE_FILTER = (
    "This list cannot be filtered by that date: it is at or past the edge of the years 1 "
    "to 9999 (in UTC). The list is shown without its filters; choose the dates again."
)


class _ChangeList(ChangeList):
    """Django's change list, where a date filter out of range is a bad filter, not a 500.

    The date hierarchy asks for "before the next day, month or year" (an
    OverflowError or a ValueError past 9999-12-31) and a date filter's value is
    moved to UTC only when the query runs (an OverflowError for
    ``9999-12-31T23:59:59-12:00``). Both now raise IncorrectLookupParameters,
    which the admin answers as any other bad filter: the list without filters.
    """

    def get_filters(self, request: HttpRequest) -> Any:
        try:
            return super().get_filters(request)
        except (OverflowError, ValueError) as exc:
            stepped = self.date_hierarchy and f"{self.date_hierarchy}__year" in request.GET
            if isinstance(exc, ValueError) and not stepped:
                raise
            messages.warning(request, BAD_DATE_FILTER)
            raise IncorrectLookupParameters(exc) from exc

    def get_results(self, request: HttpRequest) -> None:
        try:
            super().get_results(request)
        except OverflowError as exc:
            messages.warning(request, BAD_DATE_FILTER)
            raise IncorrectLookupParameters(exc) from exc


class _Admin(admin.ModelAdmin):
    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return _ChangeList


def _apply(
    request: HttpRequest, queryset: QuerySet[Job], fn: Callable[..., Job], verb: str
) -> None:
    done, refused = 0, []
    for job in queryset:
        try:
            fn(job=job, by=request.user)
            done += 1
        except services.JobStateError as error:
            refused.append(f"{job.id}: {error}")
    if done:
        messages.success(request, f"{verb} requested for {done} job(s).")
    for line in refused:
        messages.warning(request, line)


@admin.register(Job)
class JobAdmin(_Admin):
    list_display = ["id", "kind", "label", "owner", "state", "processed", "total", "created_at"]
    list_filter = ["state", "kind"]
    search_fields = ["id", "label", "owner__username"]
    readonly_fields = [f.name for f in Job._meta.fields]
    actions = ["pause", "resume", "stop"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Job]:
        # The same rule as every page: others' jobs only with jobs.manage_all_jobs.
        return services.jobs_visible_to(request.user)

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Job:
        """The job, from ``get_queryset``; another user's job (or none) is a 404, as on every
        page, rather than the admin's redirect to its index ("… doesn't exist")."""
        job = super().get_object(request, object_id, from_field)
        if job is None:
            raise Http404("No such job, or another user's.")
        return job

    @admin.action(description="Pause selected jobs")
    def pause(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        _apply(request, queryset, services.job_pause, "Pause")

    @admin.action(description="Resume selected jobs")
    def resume(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        _apply(request, queryset, services.job_resume, "Resume")

    @admin.action(description="Stop selected jobs (undoes what they wrote)")
    def stop(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        _apply(request, queryset, services.job_stop, "Stop")


@admin.register(AuditEntry)
class AuditEntryAdmin(_Admin):
    """The audit log, read-only: nobody adds, changes or deletes an entry here."""

    list_display = ["at", "username", "action", "job_id", "client_address", "detail"]
    list_filter = ["action", ("user", admin.RelatedOnlyFieldListFilter), "at"]
    # Filter by job: search for its task id (or a user name, an address, a word).
    search_fields = ["=job_id", "username", "client_address", "detail"]
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
