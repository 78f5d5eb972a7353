"""A base for pages that scripts use too (the seed's URLs).

They accept a browser session (CSRF enforced) or an API token, answer HTML
to browsers and JSON to JSON clients, and send anonymous browsers to log in.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseBase
from django.shortcuts import render
from rest_framework import exceptions
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
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


# What a browser reads when a form it sent fails the CSRF check (DRF says "CSRF Failed: …").
CSRF_FAILED = (
    "This form has expired, or it was not sent from one of Collect's pages, so nothing was "
    "done. Go back, reload the page and try again."
)
# The heading of the page a browser gets for an error of these views, by status.
ERROR_TITLES = {
    400: "This request cannot be used",
    405: "Not available here",
    413: "Too large",
    415: "Not a form this page takes",
    429: "Too many requests",
}


class PageOrJsonView(APIView):
    """Answers a page (HTML) or JSON, as ``json()`` decides, whatever the Accept header.

    Its JSON answers are JSON for every client, and a browser that accepts only
    ``text/html`` gets the page rather than a 406. Errors follow the same rule:
    a browser gets an HTML page (the site's 404 page for an unknown or another
    user's job), a script the JSON ``{"detail": …}``.
    """

    parser_classes = [MultiPartParser, FormParser, ObjectJSONParser]
    renderer_classes = [JSONRenderer]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # The view chooses between page and JSON itself (json()); negotiation never refuses.
        return super().perform_content_negotiation(request, force=True)

    def handle_exception(self, exc: Exception) -> HttpResponseBase:  # type: ignore[override]
        anonymous = isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed)
        browser = not wants_json(self.request) and "HTTP_AUTHORIZATION" not in self.request.META
        if anonymous and browser:
            return redirect_to_login(self.request.get_full_path())
        response = super().handle_exception(exc)
        if browser and not self.json(self.request):
            return self.error_page(exc, response)
        return response

    def error_page(self, exc: Exception, answer: Response) -> HttpResponseBase:
        """The HTML page for the error that DRF answered as ``answer`` (JSON)."""
        from collect.errors import not_found  # collect.errors imports this module

        request = self.request._request
        if answer.status_code == 404:
            return not_found(request, exc)
        data = answer.data
        if isinstance(data, dict) and "detail" in data:
            message = str(data["detail"])
        else:
            message = " ".join(str(m) for m in (data.values() if isinstance(data, dict) else data))
        if isinstance(exc, exceptions.PermissionDenied) and message.startswith("CSRF Failed"):
            message = CSRF_FAILED
        if answer.status_code == 403:
            page = render(request, "403.html", {"exception": message}, status=403)
        else:
            title = ERROR_TITLES.get(answer.status_code, "This request cannot be completed")
            context = {"title": title, "message": message}
            page = render(request, "error.html", context, status=answer.status_code)
        for header in ("Retry-After", "Allow"):
            if header in answer:
                page[header] = answer[header]
        return page

    def json(self, request: Request) -> bool:
        return wants_json(request)
