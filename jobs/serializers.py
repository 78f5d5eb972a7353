from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from jobs.models import Job
from jobs.retention import files_deleted_message


class JobSerializer(serializers.ModelSerializer):
    task_id = serializers.UUIDField(source="id", read_only=True)
    percent = serializers.FloatField(read_only=True, allow_null=True)
    eta_seconds = serializers.FloatField(read_only=True, allow_null=True)
    owner = serializers.CharField(source="owner.get_username", read_only=True)
    files_deleted = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "task_id",
            "kind",
            "label",
            "owner",
            "state",
            "params",
            "processed",
            "total",
            "percent",
            "rate",
            "eta_seconds",
            "created_at",
            "started_at",
            "finished_at",
            "error",
            "problems",
            "problem_count",
            "result",
            "files_deleted_at",
            "files_deleted",
            "links",
        ]
        read_only_fields = fields

    def get_files_deleted(self, job: Job) -> str | None:
        """When and why the job's kept files were deleted (COLLECT_RETENTION_DAYS), or null."""
        return files_deleted_message(job) or None

    def get_links(self, job: Job) -> dict[str, str | None]:
        request = self.context.get("request")

        def url(name: str) -> str:
            path = reverse(name, args=[job.id])
            return request.build_absolute_uri(path) if request else path

        kept = job.files_deleted_at is None
        return {
            "self": url("api-task-detail"),
            "page": url("job-detail"),
            "pause": url("api-task-pause"),
            "resume": url("api-task-resume"),
            "stop": url("api-task-stop"),
            "result": url("job-result") if job.result_file and kept else None,
            "error_report": url("job-error-report") if job.error_report_file and kept else None,
        }


class AcceptedSerializer(serializers.Serializer):
    """What starting a job answers: 202 and where to watch it."""

    task_id = serializers.UUIDField()
    state = serializers.CharField()
    url = serializers.URLField()


class RateLimitedSerializer(serializers.Serializer):
    """429: the user started COLLECT_JOBS_PER_MINUTE jobs in the last minute (see Retry-After)."""

    detail = serializers.CharField()


class StateConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    state = serializers.CharField()


def accepted(job: Job, request: Any) -> dict[str, Any]:
    return {
        "task_id": str(job.id),
        "state": job.state,
        "url": request.build_absolute_uri(reverse("api-task-detail", args=[job.id])),
    }
