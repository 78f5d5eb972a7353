"""Error pages: API clients get JSON, browsers get HTML (404 and 500); every 404 says the
same sentence.

Django's and DRF's own 404 texts ("Not found.", "No Job matches the given
query.") name neither the cause nor what to do; a 404 that knows more (a
file that is gone) keeps its own sentence.
"""

from __future__ import annotations

import re
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import exception_handler

from jobs.web import wants_json

# What templates/404.html says too.
NOT_FOUND = (
    "There is nothing at this address, or it belongs to someone else. Check the task id: "
    "GET /api/tasks/ lists your jobs."
)
# The texts of Http404 raised without a sentence of ours (get_object_or_404, DRF).
GENERIC = re.compile(r"(Not found\.|No \w+ matches the given query\.)?")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404 handler: JSON ``{"detail": NOT_FOUND}`` for /api/ and scripts, else HTML."""
    # A path under /api/ that matches no route (e.g. a task id that is not a UUID)
    # answers like every other API 404, so a client parses one format.
    # So does any address asked by a script (a token, or JSON asked for): the seed's
    # scripts call /stop_task/<id> with whatever id they hold.
    if request.path.startswith("/api/") or wants_json(request):
        return JsonResponse({"detail": NOT_FOUND}, status=404)
    return defaults.page_not_found(request, exception)


# What templates/500.html says too.
SERVER_ERROR = (
    "Something went wrong on our side: the request could not be completed. Nothing you did "
    "caused this, and your running jobs are not affected. Try again in a moment; if it keeps "
    "happening, tell your administrator the time it happened."
)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 handler: JSON ``{"detail": SERVER_ERROR}`` for /api/ and scripts, else HTML.

    The error itself is logged by Django (logger ``django.request``) before this runs.
    """
    if request.path.startswith("/api/") or wants_json(request):
        return JsonResponse({"detail": SERVER_ERROR}, status=500)
    return defaults.server_error(request)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler (REST_FRAMEWORK's EXCEPTION_HANDLER), with NOT_FOUND for a bare 404."""
    if isinstance(exc, Http404 | NotFound) and GENERIC.fullmatch(str(exc)):
        exc = NotFound(NOT_FOUND)
    return exception_handler(exc, context)
