from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from jobs import services
from jobs.models import AuditEntry, Job


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
class JobAdmin(admin.ModelAdmin):
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
class AuditEntryAdmin(admin.ModelAdmin):
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
