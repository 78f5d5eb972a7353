"""The export page (the seed's ``/export_data/``), its API twin and the e-mailed download link."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.schemas.inspectors import ViewInspector

from jobs import audit, files
from jobs.models import AuditAction, State
from jobs.retention import files_deleted_message
from jobs.serializers import AcceptedSerializer, RateLimitedSerializer, accepted
from jobs.services import jobs_visible_to
from jobs.web import PageOrJsonView, from_script
from responses import mail, policy
from responses.forms import ExportForm
from responses.services import (
    SendAgainRefused,
    responses_export_send_again,
    responses_export_start,
)
from responses.writers import CHOICES

LINK_EXPIRED = (
    "This download link has expired. Download the file from the export's job page, "
    "or start the export again."
)
LINK_INVALID = (
    "This download link is not valid: it was changed or cut short. "
    "Open the link exactly as it is in the e-mail."
)

FIELDS = ("email", "from", "to", "format")

ExportRequestSerializer = inline_serializer(
    "ExportRequest",
    fields={
        "email": serializers.EmailField(
            help_text="Your own address, or one in COLLECT_EXPORT_RECIPIENT_DOMAINS."
        ),
        # null and "" both mean no limit.
        "from": serializers.CharField(
            required=False, allow_null=True, help_text="Inclusive; YYYY-MM-DD[ HH:MM]"
        ),
        "to": serializers.CharField(
            required=False, allow_null=True, help_text="Inclusive; YYYY-MM-DD[ HH:MM]"
        ),
        "format": serializers.ChoiceField(
            choices=CHOICES, required=False, help_text="The file's format; default csv."
        ),
    },
)


def not_allowed(view: PageOrJsonView, request: Request) -> HttpResponse:
    """The 403 for a user without ``responses.export_responses``: JSON or the styled page."""
    if view.json(request):
        return Response({"detail": policy.NOT_ALLOWED}, status=status.HTTP_403_FORBIDDEN)
    return render(request._request, "403.html", {"exception": policy.NOT_ALLOWED}, status=403)


class _FormatIsAField(DefaultContentNegotiation):
    """``?format=`` is the export's file format here, not DRF's choice of renderer (JSON only)."""

    def select_renderer(
        self, request: Request, renderers: Any, format_suffix: str | None = None
    ) -> Any:
        return super().select_renderer(request, renderers, format_suffix or "json")


class ExportView(PageOrJsonView):
    """``GET`` shows the form prefilled from the query string; ``POST`` starts the export.

    A GET with an API token (the seed's scripts) starts the export too and
    answers 202; a GET from a cookie session never changes anything.

    Both need ``responses.export_responses`` (403 otherwise); where the file
    may go is checked by the service (``responses.policy``).
    """

    schema: ViewInspector | None = None  # a page: the API has POST /api/exports/responses/
    content_negotiation_class = _FormatIsAField

    def get(self, request: Request) -> HttpResponse:
        if from_script(request):
            # The seed's scripts start an export with a GET and a token: keep them working.
            return self.start(request, request.query_params)
        if not policy.may_export(request.user):
            return self.refused(request)
        initial = {name: request.query_params.get(name, "") for name in FIELDS}
        initial["email"] = initial["email"] or policy.own_address(request.user)
        warning, blocked = "", False
        own = policy.own_address(request.user)
        if initial["email"]:
            # A prefilled link may come from someone else: say before the button
            # that this address cannot receive the file, or is not one's own.
            try:
                policy.recipient_for(request.user, initial["email"])
            except policy.RecipientRefused as exc:
                warning, blocked = str(exc), True
            else:
                if initial["email"].strip().casefold() != own.casefold():
                    warning = (
                        f"This page was opened with the address {initial['email'].strip()}, "
                        f"which is not your own ({own or 'none'}). Check it before you start "
                        "the export: the file holds personal data."
                    )
        return self.page(request, ExportForm(initial=initial), warning=warning, blocked=blocked)

    def page(
        self,
        request: Request,
        form: ExportForm,
        status: int = 200,
        warning: str = "",
        blocked: bool = False,
    ) -> HttpResponse:
        context = {
            "form": form,
            "warning": warning,
            "blocked": blocked or bool(form.errors.get("email")),
            "own_address": policy.own_address(request.user),
            "allowed_domains": policy.allowed_domains(),
        }
        return render(request._request, "responses/export.html", context, status=status)

    def refused(self, request: Request) -> HttpResponse:
        return not_allowed(self, request)

    @extend_schema(
        request=ExportRequestSerializer,
        responses={
            202: AcceptedSerializer,
            400: OpenApiResponse(description="A message per field: email, from or to."),
            403: OpenApiResponse(description="No permission to export form responses."),
            429: RateLimitedSerializer,
        },
    )
    def post(self, request: Request) -> HttpResponse:
        return self.start(request, request.data)

    def start(self, request: Request, data: Any) -> HttpResponse:
        if not policy.may_export(request.user):
            # Before the form: no permission is the answer, whatever was sent.
            audit.record(AuditAction.REFUSED, user=request.user, detail="export: no permission")
            return self.refused(request)
        form = ExportForm({name: data.get(name) for name in FIELDS})
        if not form.is_valid():
            return self.invalid(request, form)
        try:
            job = responses_export_start(
                email=form.cleaned_data["email"],
                date_from=form.cleaned_data["date_from"],
                date_to=form.cleaned_data["date_to"],
                by=request.user,
                site_url=request.build_absolute_uri("/"),
                format=form.cleaned_data["format"],
            )
        except policy.ExportNotAllowed:
            return self.refused(request)
        except policy.RecipientRefused as exc:
            form.add_error("email", str(exc))
            return self.invalid(request, form)
        if self.json(request):
            return Response(accepted(job, request), status=status.HTTP_202_ACCEPTED)
        return redirect(job.get_absolute_url())

    def invalid(self, request: Request, form: ExportForm) -> HttpResponse:
        if self.json(request):
            return Response(form.error_dict(), status=status.HTTP_400_BAD_REQUEST)
        return self.page(request, form, status=400)


class ExportApiView(ExportView):
    """``POST /api/exports/responses/``: start an export (JSON answers only)."""

    http_method_names = ["post", "options"]
    schema = AutoSchema()

    def json(self, request: Request) -> bool:
        return True


def _refused(request: HttpRequest, message: str, status: int) -> HttpResponse:
    return render(request, "responses/download_refused.html", {"message": message}, status=status)


@login_required
@require_GET
def download(request: HttpRequest, token: str) -> HttpResponseBase:
    """Serve the file of a signed link to whoever may see the job, while the link is valid."""
    try:
        signed = mail.read_token(token)
    except signing.SignatureExpired:
        return _refused(request, LINK_EXPIRED, 410)
    except signing.BadSignature:
        return _refused(request, LINK_INVALID, 400)
    # Another user's job is a 404, as everywhere else.
    job = get_object_or_404(jobs_visible_to(request.user), id=signed.get("job"))
    name = signed.get("file", "")
    if job.files_deleted_at is not None:
        return _refused(request, files_deleted_message(job), 410)
    if job.state != State.SUCCEEDED or name != job.result_file:
        raise Http404("This export has no file to download (it was stopped or removed).")
    try:
        response = files.serve(name, name.rsplit("/", 1)[-1])
    except Http404:
        raise Http404("The export file is gone; start the export again.") from None
    audit.record(AuditAction.DOWNLOAD, user=request.user, job_id=job.id, detail="e-mailed link")
    return response


class SendAgainView(PageOrJsonView):
    """``POST``: mail a finished export again (the job page's "Send again" button, or the API).

    A browser goes back to the job page; a JSON client gets the new ``result``.
    Another user's job is a 404; an export that is not finished or whose file
    is gone is a 409 with ``detail`` (and ``state``).
    """

    schema: ViewInspector | None = None
    http_method_names = ["post", "options"]

    def post(self, request: Request, task_id: str) -> HttpResponseBase:
        job = get_object_or_404(jobs_visible_to(request.user), id=task_id)
        try:
            result = responses_export_send_again(job=job, by=request.user)
        except policy.ExportNotAllowed:
            return not_allowed(self, request)
        except SendAgainRefused as refused:
            if self.json(request):
                return Response({"detail": str(refused), "state": job.state}, status=409)
            return _refused(request._request, str(refused), 409)
        if self.json(request):
            return Response(result)
        return redirect(job.get_absolute_url())


class SendAgainApiView(SendAgainView):
    """``POST /api/exports/responses/<task_id>/send-again/`` (JSON answers only)."""

    schema = AutoSchema()

    def json(self, request: Request) -> bool:
        return True

    @extend_schema(
        request=None,
        responses={
            200: OpenApiResponse(description="The export's new result (where it went)."),
            403: OpenApiResponse(description="No permission to export form responses."),
            404: OpenApiResponse(description="No such export of yours."),
            409: OpenApiResponse(
                description="Not finished, its file is gone, the address is no longer "
                "allowed, or it was sent again too often."
            ),
            429: RateLimitedSerializer,
        },
    )
    def post(self, request: Request, task_id: str) -> HttpResponseBase:
        return super().post(request, task_id)
