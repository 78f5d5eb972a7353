"""The audit log: who started, paused, resumed, stopped or downloaded what, and who was refused.

Entries are written by the service functions (``jobs.services``,
``responses.services``) and the download views, so every way in (pages, API,
seed URLs, admin actions, the command line) is recorded by the same line of
code. The client's address comes from the request being served, which
``AuditContextMiddleware`` makes known for the length of the request; a
command-line action has none.

Writing an entry never fails the action it records (OWASP Logging Cheat
Sheet: logging must not become a denial of service): a failure is logged and
swallowed, inside a savepoint so that an enclosing transaction goes on.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse

from jobs.models import AuditAction, AuditEntry

log = logging.getLogger(__name__)

_client_address: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "collect_client_address", default=None
)


def client_address(request: HttpRequest) -> str | None:
    """The client's IP address (``REMOTE_ADDR``, which the web server sets), or None."""
    return request.META.get("REMOTE_ADDR") or None


class AuditContextMiddleware:
    """Make the current request's client address known to ``record`` (a context variable)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _client_address.set(client_address(request))
        try:
            return self.get_response(request)
        finally:
            _client_address.reset(token)


def record(
    action: AuditAction | str,
    *,
    user: Any,
    job_id: Any = None,
    detail: str = "",
    address: str | None = None,
    username: str = "",
) -> AuditEntry | None:
    """Write one audit entry; returns it, or None if it could not be written.

    ``user`` is a user, None or anonymous (a failed login, the system), or a
    string naming a non-web actor ("command line"); ``username`` then says
    what name was used, if any. ``address`` overrides the
    address of the request being served. ``detail`` is cut to 500 characters.
    Never raises.
    """
    authenticated = getattr(user, "is_authenticated", False)
    if authenticated:
        username = user.get_username()
    elif isinstance(user, str):  # the command line names itself ("command line")
        username = username or user
    try:
        with transaction.atomic():
            return AuditEntry.objects.create(
                action=action,
                user=user if authenticated else None,
                username=username[:150],
                job_id=job_id,
                client_address=address or _client_address.get(),
                detail=detail[:500],
            )
    except Exception:
        log.exception("audit: could not record %s by %s on job %s", action, user, job_id)
        return None


def job_history(job_id: Any, limit: int = 50) -> list[AuditEntry]:
    """The newest ``limit`` entries about one job, newest first (for its page)."""
    return list(AuditEntry.objects.filter(job_id=job_id).select_related("user")[:limit])


def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **_: Any
) -> None:
    """Receiver of Django's ``user_login_failed``: record the name tried and the address."""
    record(
        AuditAction.LOGIN_FAILED,
        user=None,
        username=str(credentials.get("username", "")),
        address=client_address(request) if request is not None else None,
    )
