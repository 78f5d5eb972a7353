from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

from jobs import parts
from jobs.kinds import kinds
from jobs.models import Job
from jobs.retention import files_deleted_message

# A job id that no real job has, standing in for the id in cached link templates.
_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"
# The plan's mark for a DateTimeField written as DRF's default ISO 8601 text.
_ISO_DATETIME = "<iso datetime>"


def _plain_iso(field: Any) -> bool:
    """A ``DateTimeField`` of a plain attribute, in DRF's ISO 8601 format, in the current zone."""
    if not isinstance(field, serializers.DateTimeField) or hasattr(field, "timezone"):
        return False
    output = getattr(field, "format", api_settings.DATETIME_FORMAT)
    return isinstance(output, str) and output.lower() == ISO_8601 and len(field.source_attrs) == 1


def iso_datetime(value: Any, zone: Any, field: Any) -> str | None:
    """``value`` as DRF's ``DateTimeField.to_representation`` writes it, for an aware datetime.

    DRF's own path (``enforce_timezone``, then ``isoformat``) took 37 µs a value,
    a quarter of a jobs list's CPU for 150 dates; this is the same text (ISO 8601
    in the current time zone, ``Z`` for UTC) from ``astimezone`` + ``isoformat``.
    Anything else (None, a naive datetime, no time zone) goes through ``field``.
    """
    if value is None:
        return None
    if zone is None or value.tzinfo is None:
        return str(field.to_representation(value))
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


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
        zone = timezone.get_current_timezone() if settings.USE_TZ else None
        for name, attr, method, field in self._plan():
            if method == _ISO_DATETIME:
                out[name] = iso_datetime(getattr(instance, attr), zone, field)
                continue
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
                elif _plain_iso(field):
                    plan.append((name, field.source_attrs[0], _ISO_DATETIME, field))
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


class RenderedJobs:
    """A bounded, thread-safe, per-process cache of finished jobs as the API writes them.

    A finished job's JSON changes only when its row does: it is then stored under
    ``(id, updated_at, owner's user name)``, the key ``jobs.conditional`` already reads
    for the ``ETag`` (every change of a job row moves ``updated_at``), and under
    what else shapes the text: the site's address (the links), the time zone,
    ``COLLECT_RETENTION_DAYS`` and ``conditional.SHAPE_VERSION`` (``context``). A
    running job is never stored: its speed and time left depend on the clock and
    its parts' progress on other rows. The jobs list reads and serialises only
    the jobs it misses: in a list of 50 jobs, most of them finished, that was
    ~40% of the request's CPU (reading model instances and writing them out).

    ``size`` entries at most (least recently used dropped first); a stored value
    is a dict that nobody may change (the renderer only reads it).
    """

    def __init__(self, size: int = 2000) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def cacheable(job: Job) -> bool:
        """Whether ``job``'s JSON depends on its row alone: finished, and not made of parts."""
        return job.is_terminal and not job.has_parts

    def get(self, key: Hashable) -> dict[str, Any] | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: dict[str, Any]) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


rendered_jobs = RenderedJobs()


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
