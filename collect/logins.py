"""Logins that resist guessing: the lockout page, and a throttle on password-reset mails.

django-axes counts failed logins (login page and admin, both call
``authenticate()``) per user name and per client address, logs each failure
with the address, and calls ``lockout_response`` once either is locked out.
Password-reset requests never fail, so axes does not see them: ``ThrottledPasswordResetView``
counts them per client address and per e-mail address in the cache, and past
``COLLECT_PASSWORD_RESETS_PER_HOUR`` sends no more mail (OWASP Forgot Password
Cheat Sheet: the answer stays the same, so it tells nothing about accounts).
"""

from __future__ import annotations

import hashlib
import logging
import math
from typing import Any

from django.conf import settings
from django.contrib.auth.views import PasswordResetView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from collect.throttling import hit, log_outage

logger = logging.getLogger("collect.logins")

RESET_WINDOW_SECONDS = 3600


def lockout_minutes() -> int:
    """The cool-off time (``COLLECT_LOGIN_LOCKOUT_MINUTES``) in whole minutes, at least 1."""
    return max(1, math.ceil(float(settings.AXES_COOLOFF_TIME) * 60))


def lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """The page a locked-out login gets (HTTP 429), for the login form and the admin alike."""
    logger.warning(
        "Login locked out: user name %r, client address %s",
        (credentials or {}).get("username", ""),
        request.META.get("REMOTE_ADDR", ""),
    )
    context = {"failure_limit": settings.AXES_FAILURE_LIMIT, "minutes": lockout_minutes()}
    return render(request, "registration/locked_out.html", context, status=429)


def _over_limit(key: str) -> bool:
    """Count one more request under ``key`` in this hour; True when over the limit.

    True as well when the counters cannot be reached (Redis down): no mail is
    sent rather than an unlimited number, and an error is logged.
    """
    try:
        count = hit(key, RESET_WINDOW_SECONDS)
    except Exception as error:
        log_outage(error, "Password-reset mails are not sent")
        return True
    return count > settings.COLLECT_PASSWORD_RESETS_PER_HOUR


class ThrottledPasswordResetView(PasswordResetView):
    """Django's password reset, sending at most N mails an hour per address and per e-mail."""

    def form_valid(self, form: Any) -> HttpResponse:
        address = self.request.META.get("REMOTE_ADDR", "")
        email = form.cleaned_data["email"].strip().lower()
        email_key = hashlib.sha256(email.encode()).hexdigest()
        # Both counters move on every request, so neither can be dodged alone.
        by_address = _over_limit(f"password-reset:addr:{address}")
        by_email = _over_limit(f"password-reset:email:{email_key}")
        if by_address or by_email:
            logger.warning(
                "Password reset throttled: client address %s (%s)",
                address,
                "address" if by_address else "e-mail address",
            )
            # The same page as a sent mail: it must not reveal the throttle per account.
            return super(PasswordResetView, self).form_valid(form)
        return super().form_valid(form)
