"""``collect export-responses [--email …] [--from …] [--to …] [--wait] [--user NAME]``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.cli import describe, follow, job_owner
from jobs.models import State
from responses import policy
from responses.forms import ExportForm
from responses.services import responses_export_start


class Command(BaseCommand):
    help = "Export the form responses in a date range to CSV and e-mail them (a background job)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--email",
            default="",
            help="Where the CSV (or its link) is sent (default: the user's own address).",
        )
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
        owner = job_owner(user)
        email = email or policy.own_address(owner)
        if not email:
            raise CommandError(f"--email: {policy.NO_OWN_ADDRESS}")
        form = ExportForm({"email": email, "from": date_from, "to": date_to})
        if not form.is_valid():
            lines = [
                f"--{field}: {msg}" for field, msgs in form.error_dict().items() for msg in msgs
            ]
            raise CommandError("\n".join(lines))
        try:
            job = responses_export_start(
                email=form.cleaned_data["email"],
                date_from=form.cleaned_data["date_from"],
                date_to=form.cleaned_data["date_to"],
                by=owner,
            )
        except policy.ExportNotAllowed:
            raise CommandError(policy.NOT_ALLOWED) from None
        except (policy.RecipientRefused, policy.RecipientCapReached) as exc:
            raise CommandError(f"--email: {exc}") from None
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
