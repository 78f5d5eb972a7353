"""A base for pages that scripts use too (the seed's URLs).

They accept a browser session (CSRF enforced) or an API token, answer HTML
to browsers and JSON to JSON clients, and send anonymous browsers to log in.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseBase
from rest_framework import exceptions
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from collect.parsers import ObjectJSONParser
from collect.tokens import TokenAuthentication


def from_script(request: Any) -> bool:
    """Whether the request was authenticated by an API token (a script, not a browser).

    A browser never sends ``Authorization: Token …`` by itself, so such a
    request cannot be a cross-site forgery; the seed's scripts may therefore
    act with a plain GET (``/export_data/?…``, ``/stop_task/<id>``), while a
    GET from a cookie session only ever shows a page.
    """
    return isinstance(getattr(request, "successful_authenticator", None), TokenAuthentication)


def wants_json(request: Any) -> bool:
    """Token clients and clients that ask for JSON get JSON; browsers get pages."""
    if from_script(request):
        return True
    # A token that a middleware (not DRF) accepted: a script as well.
    if request.META.get("HTTP_AUTHORIZATION", "").lower().startswith("token "):
        return True
    accept = request.META.get("HTTP_ACCEPT", "")
    if "application/json" in accept and "text/html" not in accept:
        return True
    return request.META.get("CONTENT_TYPE", "").startswith("application/json")


class PageOrJsonView(APIView):
    parser_classes = [MultiPartParser, FormParser, ObjectJSONParser]
    renderer_classes = [JSONRenderer]

    def handle_exception(self, exc: Exception) -> HttpResponseBase:  # type: ignore[override]
        anonymous = isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed)
        browser = not wants_json(self.request) and "HTTP_AUTHORIZATION" not in self.request.META
        if anonymous and browser:
            return redirect_to_login(self.request.get_full_path())
        return super().handle_exception(exc)

    def json(self, request: Request) -> bool:
        return wants_json(request)
