"""``collect drf_create_token USER``: a new API token, printed once (it is stored hashed)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from collect.tokens import token_create


class Command(BaseCommand):
    help = "Make a new API token for a user and print it (only now: it is stored hashed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "-r", "--reset", action="store_true", help="Revoke the user's other tokens first."
        )

    def handle(self, *args: Any, username: str, reset: bool, **options: Any) -> None:
        User = get_user_model()
        try:
            user = User.objects.get_by_natural_key(username)
        except User.DoesNotExist:
            raise CommandError(
                f"There is no user {username!r}. Create one first (collect createsuperuser)."
            ) from None
        if reset:
            user.auth_token_set.all().delete()  # type: ignore[attr-defined]
        token, expiry = token_create(user=user)
        self.stdout.write(f"Generated token {token} for user {username}")
        if expiry is not None:
            self.stderr.write(f"It works until {expiry:%Y-%m-%d %H:%M} UTC; keep it secret.")
