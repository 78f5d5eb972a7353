"""Let scripts use an API token on the plain pages too (downloads, job pages).

A browser never sends ``Authorization: Token …`` by itself, so a request that
carries one is not a cross-site forgery risk and skips the CSRF check, as in
DRF. A wrong token is refused outright rather than treated as anonymous.
The admin never accepts a token: there a script has no business, and the
CSRF exemption that a token brings must not reach it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from rest_framework import exceptions
from rest_framework.authentication import get_authorization_header

from collect.tokens import TokenAuthentication


class TokenAuthMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/admin/"):
            return self.get_response(request)
        header = get_authorization_header(request).split()  # type: ignore[arg-type]
        if header and header[0].lower() == b"token":
            try:
                if b"\x00" in b"".join(header):
                    # Never looked up: PostgreSQL refuses NUL in a query (a 500 otherwise).
                    raise exceptions.AuthenticationFailed("Invalid token.")
                found = TokenAuthentication().authenticate(request)
            except exceptions.AuthenticationFailed as exc:
                return JsonResponse(
                    {"detail": str(exc.detail)}, status=401, headers={"WWW-Authenticate": "Token"}
                )
            if found:
                request.token_authenticated = found  # type: ignore[attr-defined]  # for DRF
                request.user = found[0]
                request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]
        return self.get_response(request)


# An active session's idle timeout restarts at most this often (or a tenth of the
# idle time, if shorter): Django's SESSION_SAVE_EVERY_REQUEST would write the
# session on every request, and the live pages poll every second.
SESSION_RENEW_SECONDS = 60
SESSION_SEEN_KEY = "collect_seen"


def session_seen(session: Any) -> None:
    """Note in ``session`` that its user was active now (the session is then saved)."""
    session[SESSION_SEEN_KEY] = time.time()


class SessionRenewMiddleware:
    """Sessions end after ``COLLECT_SESSION_IDLE_SECONDS`` without a request.

    The session's expiry is its last save plus ``SESSION_COOKIE_AGE``; a request
    more than a minute (or a tenth of the idle time) after the last save saves
    it again, cookie included.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = request.session
        if not session.is_empty():
            last = session.get(SESSION_SEEN_KEY, 0)
            every = min(SESSION_RENEW_SECONDS, settings.SESSION_COOKIE_AGE / 10)
            if time.time() - last >= every:
                session_seen(session)
        return self.get_response(request)


class PermissionsPolicyMiddleware:
    """Add the Permissions-Policy header (W3C Permissions Policy): no camera, microphone, ..."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", settings.COLLECT_PERMISSIONS_POLICY)
        return response


class JobLimitMiddleware:
    """Turn ``TooManyRequests`` from any view (page, API, seed URL) into a 429.

    Raised for too many jobs a minute (``JobRateLimited``) and for the daily
    cap on exports to one recipient; ``Retry-After`` says when (RFC 9110).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        from jobs.services import JobRateLimited, TooManyRequests
        from jobs.web import wants_json

        if not isinstance(exc, TooManyRequests):
            return None
        headers = {"Retry-After": str(exc.retry_after)}
        if wants_json(request) or request.path.startswith("/api/"):
            return JsonResponse({"detail": str(exc)}, status=429, headers=headers)
        title = "Too many jobs at once" if isinstance(exc, JobRateLimited) else "Not now"
        response = TemplateResponse(
            request,
            "error.html",
            {"message": str(exc), "title": title},
            status=429,
            headers=headers,
        )
        return response.render()
