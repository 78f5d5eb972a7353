"""``collect export-responses --email … [--from …] [--to …] [--wait] [--user NAME]``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.cli import describe, follow
from jobs.models import State
from responses.forms import ExportForm
from responses.services import responses_export_start


class Command(BaseCommand):
    help = "Export the form responses in a date range to CSV and e-mail them (a background job)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True, help="Where the CSV (or its link) is sent.")
        parser.add_argument(
            "--from", dest="date_from", default="", help="Inclusive; YYYY-MM-DD[ HH:MM]."
        )
        parser.add_argument(
            "--to", dest="date_to", default="", help="Inclusive; YYYY-MM-DD[ HH:MM]."
        )
        parser.add_argument("--wait", action="store_true", help="Show progress until it ends.")
        parser.add_argument(
            "--user", default="", help="The job's owner (default: the first superuser)."
        )

    def handle(
        self,
        *args: Any,
        email: str,
        date_from: str,
        date_to: str,
        wait: bool,
        user: str,
        **opts: Any,
    ) -> None:
        form = ExportForm({"email": email, "from": date_from, "to": date_to})
        if not form.is_valid():
            lines = [
                f"--{field}: {msg}" for field, msgs in form.error_dict().items() for msg in msgs
            ]
            raise CommandError("\n".join(lines))
        job = responses_export_start(
            email=form.cleaned_data["email"],
            date_from=form.cleaned_data["date_from"],
            date_to=form.cleaned_data["date_to"],
            by=self._owner(user),
        )
        self.stdout.write(f"Export queued: task id {job.id}")
        if not wait:
            return
        job = follow(job)
        self.stdout.write(f"{job.id}: {job.state} ({job.processed} rows)")
        if job.error:
            self.stderr.write(job.error)
        if job.state != State.SUCCEEDED:
            raise CommandError(
                f"The export ended {job.state}: {describe(job)['error'] or 'no error given'}"
            )

    def _owner(self, username: str) -> Any:
        users = get_user_model()._default_manager
        if username:
            try:
                return users.get_by_natural_key(username)
            except users.model.DoesNotExist:
                raise CommandError(f"No user named {username!r}.") from None
        owner = users.filter(is_superuser=True).order_by("pk").first()
        if owner is None:
            raise CommandError("No superuser exists to own the job; name one with --user.")
        return owner
