"""Error pages: API clients get JSON, browsers get HTML."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    # A path under /api/ that matches no route (e.g. a task id that is not a UUID)
    # answers like every other API 404, so a client parses one format.
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)
