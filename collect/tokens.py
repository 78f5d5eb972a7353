"""API tokens for scripts: hashed at rest, expiring, revoked by a password change.

django-rest-knox keeps only a SHA-512 digest of each token (and its first 15
characters to find it), with an expiry (``COLLECT_API_TOKEN_DAYS``); the token
itself is shown once, when it is made. Clients send it as before:
``Authorization: Token <token>`` (RFC 6750's bearer usage with DRF's scheme name).
Why knox rather than DRF's own tokens: DRF stores the key in clear and never
expires it; knox does both, and is the maintained library for it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.models import AuthToken
from knox.signals import token_expired
from rest_framework import exceptions

INVALID = "Invalid token."


class TokenAuthentication(KnoxTokenAuthentication):
    """knox's authentication, also refusing (401, not 500) a token that is not plain text.

    ``TokenAuthMiddleware`` authenticates every request that carries a token (so
    plain Django views see the user too) and keeps the answer on the request; DRF
    then asks again, and gets that answer instead of knox's two more queries.
    """

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        done = getattr(getattr(request, "_request", request), "token_authenticated", None)
        if done is not None:
            return done
        return super().authenticate(request)

    def authenticate_credentials(self, token: bytes) -> tuple[Any, Any]:
        try:
            token.decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(INVALID) from None
        if b"\x00" in token:
            # Never looked up: PostgreSQL refuses NUL in a query.
            raise exceptions.AuthenticationFailed(INVALID)
        return super().authenticate_credentials(token)

    def _cleanup_token(self, auth_token: AuthToken) -> bool:
        """Delete ``auth_token`` and return True if it has expired (then it is refused).

        knox here also read all of the user's other tokens to delete the expired
        ones: a query on every request made with a token. The workers' periodic
        sweep deletes expired tokens instead (``delete_expired_tokens``).
        """
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            username = auth_token.user.get_username()
            auth_token.delete()
            token_expired.send(sender=self.__class__, username=username, source="auth_token")
            return True
        return False


class TokenScheme(KnoxTokenScheme):
    """How the OpenAPI schema (``/api/schema/``) describes this authentication."""

    target_class = "collect.tokens.TokenAuthentication"
    name = "tokenAuth"


def token_create(*, user: AbstractBaseUser) -> tuple[str, dt.datetime | None]:
    """Make a new API token for ``user``: (the token, shown only now; when it expires, UTC)."""
    instance, token = AuthToken.objects.create(user=user)
    return token, instance.expiry


def delete_expired_tokens(now: dt.datetime | None = None) -> int:
    """Delete every API token whose expiry has passed; returns how many.

    Run by every worker's periodic sweep (jobs/signals.py). An expired token is
    refused whether or not it has been deleted yet.
    """
    deleted, _ = AuthToken.objects.filter(expiry__lt=now or timezone.now()).delete()
    return deleted


class RevokeTokensOnPasswordChange:
    """Deletes a user's API tokens when their password changes.

    Listed in ``AUTH_PASSWORD_VALIDATORS`` for Django's ``password_changed`` hook,
    which every way of changing a password goes through (the password change
    and reset pages, the admin, ``changepassword``, ``set_password`` + ``save``).
    It validates nothing.
    """

    def validate(self, password: str, user: Any = None) -> None:
        return None

    def password_changed(self, password: str, user: Any = None) -> None:
        if user is not None and user.pk is not None:
            AuthToken.objects.filter(user=user).delete()

    def get_help_text(self) -> str:
        return ""
