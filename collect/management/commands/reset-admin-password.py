"""``collect reset-admin-password [--user NAME]``: a new random password, printed once.

For the person who missed the password that ``collect serve`` printed on the
first start. Django's ``changepassword`` asks for one instead (interactive).
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Give a superuser (default: the first one) a new random password and print it once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", default="", help="The superuser's name (default: the first).")

    def handle(self, *args: Any, user: str, **options: Any) -> None:
        users = get_user_model()._default_manager.filter(is_superuser=True).order_by("pk")
        admin = users.filter(username=user).first() if user else users.first()
        if admin is None:
            if user:
                raise CommandError(f"No superuser named {user!r}.")
            raise CommandError("There is no superuser yet: `collect serve` creates one.")
        # 16 characters from a 64-symbol alphabet: 96 bits (NIST SP 800-63B allows any).
        password = secrets.token_urlsafe(12)
        admin.set_password(password)
        admin.save(update_fields=["password"])
        self.stdout.write(f"user name: {admin.get_username()}\npassword:  {password}")
        self.stdout.write(
            "(shown only this once; sessions of this user stay logged in until they expire)"
        )
