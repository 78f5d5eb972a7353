from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from jobs import parts
from jobs.kinds import kinds
from jobs.models import Job
from jobs.retention import files_deleted_message

# A job id that no real job has, standing in for the id in cached link templates.
_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"


class JobSerializer(serializers.ModelSerializer):
    task_id = serializers.UUIDField(source="id", read_only=True)
    percent = serializers.FloatField(read_only=True, allow_null=True)
    eta_seconds = serializers.FloatField(read_only=True, allow_null=True)
    owner = serializers.SerializerMethodField()
    params = serializers.SerializerMethodField()
    files_deleted = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()
    parts = serializers.SerializerMethodField()
    part_of = serializers.UUIDField(source="parent_id", read_only=True, allow_null=True)

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
            "parts",
            "part_of",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Job) -> dict[str, Any]:
        """DRF's ``Serializer.to_representation`` without its generic per-value lookups.

        A jobs list is 50 jobs of 21 fields, and DRF finds each value through
        ``Field.get_attribute`` (a walk over ``source_attrs`` with a callable check)
        and a generator of readable fields: about half of a list request's time
        in a profile. Here a plain attribute is read with ``getattr``, a method
        field calls this serializer's ``get_…`` method, and anything else
        (a callable value) goes through the field as before; a None value is
        None, as in DRF: the same JSON. The plan is made once per class
        (``_plan``), so a request no longer builds the fields from the model
        (``ModelSerializer.get_fields``, ~1 ms a request).
        """
        if instance.has_parts:
            parts.add_up(instance)  # the progress of a job made of parts is theirs
        out: dict[str, Any] = {}
        for name, attr, method, field in self._plan():
            if method:
                out[name] = getattr(self, method)(instance)
                continue
            value = getattr(instance, attr)
            if callable(value):
                value = field.get_attribute(instance)
            out[name] = None if value is None else field.to_representation(value)
        return out

    @classmethod
    def _plan(cls) -> list[tuple[str, str, str, Any]]:
        """(name, attribute, ``get_…`` method or "", field) per readable field, made once.

        The fields come from one instance made for the purpose; only their
        ``to_representation`` (which reads no context) and ``get_attribute`` are
        used, never their parent.
        """
        plan: list[tuple[str, str, str, Any]] | None = cls.__dict__.get("_plan_cache")
        if plan is None:
            plan = []
            for field in cls()._readable_fields:
                name = str(field.field_name)
                if isinstance(field, serializers.SerializerMethodField):
                    plan.append((name, "", str(field.method_name), field))
                else:
                    assert len(field.source_attrs) == 1, field.source  # a plain attribute
                    plan.append((name, field.source_attrs[0], "", field))
            setattr(cls, "_plan_cache", plan)  # noqa: B010 (per class: a subclass has its own)
        return plan

    # Read here rather than as source="owner.get_username": DRF inspects a method
    # source's signature for every value, a tenth of a jobs list's time.
    def get_owner(self, job: Job) -> str:
        """The user name of the job's owner."""
        return job.owner.get_username()

    def get_parts(self, job: Job) -> list[dict[str, Any]]:
        """A job run in parts (``jobs.parts``): each part's task id, number, state, progress."""
        return parts.summary(job) if job.has_parts else []

    def get_files_deleted(self, job: Job) -> str | None:
        """When and why the job's kept files were deleted (COLLECT_RETENTION_DAYS), or null."""
        return files_deleted_message(job) or None

    def get_links(self, job: Job) -> dict[str, str | None]:
        # reverse() and build_absolute_uri() once per URL name and serializer (a list shares
        # one), then the job's id is put in: they were 40% of a jobs-list request's time.
        templates: dict[str, str] = self.__dict__.setdefault("_link_templates", {})
        request = self.context.get("request")
        job_id = str(job.id)

        def url(name: str) -> str:
            if name not in templates:
                path = reverse(name, args=[_PLACEHOLDER])
                templates[name] = request.build_absolute_uri(path) if request else path
            return templates[name].replace(_PLACEHOLDER, job_id)

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

    def get_params(self, job: Job) -> dict[str, Any]:
        """The job's parameters, less those its kind keeps for itself (``internal_params``)."""
        kind = kinds().get(job.kind)
        internal = kind.internal_params if kind is not None else frozenset()
        return {k: v for k, v in (job.params or {}).items() if k not in internal}


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
