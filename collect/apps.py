"""The project's own app: its templates, commands and signal receivers."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class CollectConfig(AppConfig):
    name = "collect"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        user_logged_in.connect(_logged_in, dispatch_uid="collect-session-seen")


def _logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    # A login saves the session anyway: start its idle clock in the same write.
    from collect.middleware import session_seen

    if request is not None and hasattr(request, "session"):
        session_seen(request.session)
