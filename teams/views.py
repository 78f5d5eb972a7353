"""The import page (``/import_teams/``), its API twin and the sample file."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.views.decorators.http import require_GET
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from collect.tokens import TokenAuthentication
from jobs.retention import QuotaExceeded
from jobs.serializers import AcceptedSerializer, RateLimitedSerializer, accepted
from jobs.web import PageOrJsonView
from teams.csvformat import COLUMNS, HEADER
from teams.models import MANAGER_MAX, NAME_MAX
from teams.services import ON_ERROR_CHOICES, ImportRequestError, teams_import_start
from teams.uploads import UploadTooLarge, guard_upload

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
            f"encoding) or an Excel .xlsx workbook, whose header names the columns {HEADER}."
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


def _context(**extra: Any) -> dict[str, Any]:
    return {
        "columns": COLUMNS,
        "header": HEADER,
        "name_max": NAME_MAX,
        "manager_max": MANAGER_MAX,
        "limit": filesizeformat(settings.COLLECT_UPLOAD_MAX_BYTES),
        "field_max": filesizeformat(settings.COLLECT_IMPORT_MAX_FIELD_BYTES),
        **extra,
    }


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
        )


class ImportTeamsView(_StartImport, PageOrJsonView):
    """``GET``: the upload page. ``POST``: start the import (browsers go to the job page)."""

    authentication_classes = AUTHENTICATION
    parser_classes = [MultiPartParser, FormParser]
    schema = None  # a page: the API has POST /api/imports/teams/

    def get(self, request: Request) -> HttpResponse:
        return render(request._request, "teams/import.html", _context())

    def post(self, request: Request) -> HttpResponseBase:
        job = self.start(request)
        if self.json(request):
            return Response(accepted(job, request), status=status.HTTP_202_ACCEPTED)
        messages.success(request._request, f"Import started. Task id: {job.id}")
        return redirect(job.get_absolute_url())

    def handle_exception(self, exc: Exception) -> HttpResponseBase:  # type: ignore[override]
        if isinstance(exc, UploadTooLarge | ImportRequestError | QuotaExceeded):
            code = 400 if isinstance(exc, ImportRequestError) else 413
            message = str(exc.detail if isinstance(exc, UploadTooLarge) else exc)
            if _headers_want_json(self.request):
                return Response({"detail": message}, status=code)
            return render(
                self.request._request, "teams/import.html", _context(error=message), status=code
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
        except QuotaExceeded as error:
            return Response(
                {"detail": error.message}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
            )
        return Response(accepted(job, request), status=status.HTTP_202_ACCEPTED)


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
