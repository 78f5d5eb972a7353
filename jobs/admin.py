from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from jobs import services
from jobs.models import Job


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

    @admin.action(description="Pause selected jobs")
    def pause(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        _apply(request, queryset, services.job_pause, "Pause")

    @admin.action(description="Resume selected jobs")
    def resume(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        _apply(request, queryset, services.job_resume, "Resume")

    @admin.action(description="Stop selected jobs (undoes what they wrote)")
    def stop(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        _apply(request, queryset, services.job_stop, "Stop")
