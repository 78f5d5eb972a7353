"""The import page (``/import_teams/``), its API twin and the sample file."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from collect.tokens import TokenAuthentication
from jobs.formatting import size
from jobs.retention import QuotaExceeded
from jobs.serializers import AcceptedSerializer, RateLimitedSerializer, accepted
from jobs.services import jobs_visible_to
from jobs.web import PageOrJsonView
from teams.csvformat import COLUMNS, HEADER, OPTIONAL
from teams.models import MANAGER_MAX, NAME_MAX
from teams.services import (
    ON_ERROR_CHOICES,
    ApplyRefused,
    ImportRequestError,
    UpsertNotAllowed,
    may_upsert,
    parse_flag,
    teams_import_apply,
    teams_import_start,
)
from teams.uploads import UploadTooLarge, guard_upload
from teams.upsert import KEYS, MODES

NO_FILE = 'No file was uploaded. Send the CSV file in the multipart form field "file".'
SAMPLE_ROWS = [
    (
        "Platform",
        "Keeps the lights on. Collect also reads semicolon, tab or | separated files, UTF-16 and "
        "legacy encodings, and Excel .xlsx workbooks; spaces around values are trimmed.",
        "ada",
        "Ada Lovelace,Grace Hopper",
    ),
    ("Data, and more data", 'Says "yes" to\nmulti-line notes', "linus", "Linus,Guido"),
    ("Équipe Été", "Unicode is fine: 東京, Zürich", "zoë", "Zoë,Ørjan"),
]
# Token first: an anonymous script gets 401 with WWW-Authenticate, not 403.
AUTHENTICATION = [TokenAuthentication, SessionAuthentication]


class ImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text=(
            f"A CSV file (comma, semicolon, tab or | separated; UTF-8, UTF-16 or a legacy "
            f"encoding) or an Excel .xlsx workbook, whose header names the column name and "
            f"any of {', '.join(OPTIONAL)} (a column left out is empty in a new team and left "
            "as it is in an updated one)."
        )
    )
    on_error = serializers.ChoiceField(
        choices=ON_ERROR_CHOICES,
        default="fail",
        help_text="fail: import nothing if any row is bad; skip: leave bad rows out.",
    )
    encoding = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text=(
            "CSV only: the encoding of a file without a byte order mark, such as cp1252 or "
            "latin-1. Empty: detected (UTF-8, else the legacy encoding found)."
        ),
    )
    sheet = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Workbooks only: the name of the sheet to import. Empty: the first sheet.",
    )
    mode = serializers.ChoiceField(
        choices=MODES,
        default="create",
        help_text=(
            "create: every row is a new team. upsert: a row whose key matches a team updates "
            "it (unchanged rows are not written), a new key creates a team."
        ),
    )
    key = serializers.ChoiceField(
        choices=KEYS,
        required=False,
        help_text="upsert only: the column that finds a row's team. Default: name.",
    )
    dry_run = serializers.BooleanField(
        default=False,
        help_text=(
            "true: check and match every row, write nothing; the job's result holds the counts "
            "and the first 100 changes."
        ),
    )
    parallelism = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=64,
        help_text=(
            "create only: how many parts the import runs as, on different workers at once. "
            "Default: the server's COLLECT_IMPORT_PARALLELISM (1 unless set)."
        ),
    )


def _context(user: Any, **extra: Any) -> dict[str, Any]:
    return {
        "may_upsert": may_upsert(user),
        "columns": COLUMNS,
        "header": HEADER,
        "name_max": NAME_MAX,
        "manager_max": MANAGER_MAX,
        "limit": size(settings.COLLECT_UPLOAD_MAX_BYTES),
        "field_max": size(settings.COLLECT_IMPORT_MAX_FIELD_BYTES),
        "keys": KEYS,
        "parallelism": settings.COLLECT_IMPORT_PARALLELISM,
        **extra,
    }


# What a script's GET of the upload page answers (405: only POST acts here).
SCRIPT_GET = (
    'This address takes an upload: POST the file as the multipart field "file" '
    "(options: on_error, encoding, sheet, mode, key, dry_run, parallelism). "
    "The same is POST /api/imports/teams/; GET /api/tasks/ lists your jobs."
)


def _headers_want_json(request: Any) -> bool:
    """JSON or not, judged on headers alone (the body may not be read yet)."""
    meta = request.META
    accept = meta.get("HTTP_ACCEPT", "")
    return "HTTP_AUTHORIZATION" in meta or (
        "application/json" in accept and "text/html" not in accept
    )


class _StartImport:
    """What the page and the API share: the size guard and the start itself."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if request.method == "POST":
            guard_upload(request._request)
        super().initial(request, *args, **kwargs)  # type: ignore[misc]

    def start(self, request: Request) -> Any:
        upload = request.FILES.get("file")
        if upload is None:
            raise ImportRequestError(NO_FILE)
        on_error = str(request.data.get("on_error") or "fail").strip().lower()
        return teams_import_start(
            file=upload,
            by=request.user,
            on_error=on_error,
            encoding=str(request.data.get("encoding") or ""),
            sheet=str(request.data.get("sheet") or ""),
            mode=str(request.data.get("mode") or "create"),
            key=str(request.data.get("key") or ""),
            dry_run=parse_flag(request.data.get("dry_run"), name="dry_run"),
            parallelism=request.data.get("parallelism") or None,
        )


class ImportTeamsView(_StartImport, PageOrJsonView):
    """``GET``: the upload page. ``POST``: start the import (browsers go to the job page)."""

    authentication_classes = AUTHENTICATION
    parser_classes = [MultiPartParser, FormParser]
    schema = None  # a page: the API has POST /api/imports/teams/

    def get(self, request: Request) -> HttpResponseBase:
        if self.json(request):  # a script: there is no page for it here
            return Response({"detail": SCRIPT_GET}, status=status.HTTP_405_METHOD_NOT_ALLOWED)
        return render(request._request, "teams/import.html", _context(request.user))

    def post(self, request: Request) -> HttpResponseBase:
        job = self.start(request)
        if self.json(request):
            return Response(accepted(job, request), status=status.HTTP_202_ACCEPTED)
        at = timezone.localtime().strftime("%H:%M:%S")
        messages.success(request._request, f"At {at} you started this import (task id {job.id}).")
        return redirect(job.get_absolute_url())

    def handle_exception(self, exc: Exception) -> HttpResponseBase:  # type: ignore[override]
        if isinstance(exc, UploadTooLarge | ImportRequestError | QuotaExceeded | UpsertNotAllowed):
            code = (
                400 if isinstance(exc, ImportRequestError)
                else 403 if isinstance(exc, UpsertNotAllowed)
                else 413
            )  # fmt: skip
            message = str(exc.detail if isinstance(exc, UploadTooLarge) else exc)
            if _headers_want_json(self.request):
                return Response({"detail": message}, status=code)
            return render(
                self.request._request,
                "teams/import.html",
                _context(self.request.user, error=message),
                status=code,
            )
        return super().handle_exception(exc)


class ImportTeamsApi(_StartImport, APIView):
    """Start importing teams from a CSV file or a workbook; watch the job at ``url``."""

    authentication_classes = AUTHENTICATION
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": ImportRequestSerializer},
        responses={
            202: AcceptedSerializer,
            400: inline_serializer("ImportError", {"detail": serializers.CharField()}),
            403: OpenApiResponse(
                description="mode upsert without the permission teams.change_team."
            ),
            413: inline_serializer("UploadTooLarge", {"detail": serializers.CharField()}),
            415: OpenApiResponse(description="The body is not multipart form data."),
            429: RateLimitedSerializer,
        },
        summary="Import teams from a CSV file or an Excel workbook",
    )
    def post(self, request: Request) -> Response:
        try:
            job = self.start(request)
        except ImportRequestError as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        except UpsertNotAllowed as error:
            return Response({"detail": str(error)}, status=status.HTTP_403_FORBIDDEN)
        except QuotaExceeded as error:
            return Response(
                {"detail": error.message}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
            )
        return Response(accepted(job, request), status=status.HTTP_202_ACCEPTED)


class ApplyDryRunView(PageOrJsonView):
    """``POST``: import a finished dry run for real (its page's "Import these changes").

    A browser goes to the new job's page; a JSON client gets 202 with the new
    job. Another user's job is a 404; a job that is not a finished dry run, or
    whose file is gone, is a 409 with ``detail``.
    """

    authentication_classes = AUTHENTICATION
    schema: AutoSchema | None = None
    http_method_names = ["post", "options"]

    def post(self, request: Request, task_id: str) -> HttpResponseBase:
        job = get_object_or_404(jobs_visible_to(request.user), id=task_id)
        try:
            new = teams_import_apply(job=job, by=request.user)
        except UpsertNotAllowed as refused:
            if self.json(request):
                return Response({"detail": str(refused)}, status=status.HTTP_403_FORBIDDEN)
            return render(request._request, "403.html", {"exception": str(refused)}, status=403)
        except (ApplyRefused, QuotaExceeded) as refused:
            message = refused.message if isinstance(refused, QuotaExceeded) else str(refused)
            code = 413 if isinstance(refused, QuotaExceeded) else 409
            if self.json(request):
                answer = {"detail": message, "state": job.state}
                if isinstance(refused, ApplyRefused) and refused.applied_as:
                    answer["applied_as"] = refused.applied_as
                return Response(answer, status=code)
            messages.error(request._request, message)
            return redirect(job.get_absolute_url())
        if self.json(request):
            return Response(accepted(new, request), status=status.HTTP_202_ACCEPTED)
        at = timezone.localtime().strftime("%H:%M:%S")
        messages.success(
            request._request,
            f"At {at} you started this import from the dry run's file (task id {new.id}).",
        )
        return redirect(new.get_absolute_url())


class ApplyDryRunApi(ApplyDryRunView):
    """``POST /api/imports/teams/<task_id>/apply/``: import a finished dry run for real."""

    schema = AutoSchema()

    def json(self, request: Request) -> bool:
        return True

    @extend_schema(
        request=None,
        responses={
            202: AcceptedSerializer,
            404: OpenApiResponse(description="No such job of yours."),
            403: OpenApiResponse(description="An upsert without the permission teams.change_team."),
            409: OpenApiResponse(
                description="Not a finished dry run, nothing to change, already imported "
                "(applied_as: that import's task id), or its file is gone."
            ),
            413: OpenApiResponse(description="The copy of the file would pass your quota."),
        },
        summary="Import a finished dry run for real, from the same file",
    )
    def post(self, request: Request, task_id: str) -> HttpResponseBase:
        return super().post(request, task_id)


@login_required
@require_GET
def sample_csv(request: HttpRequest) -> HttpResponse:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(SAMPLE_ROWS)
    response = HttpResponse(out.getvalue().encode("utf-8"), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="teams-sample.csv"'
    return response
