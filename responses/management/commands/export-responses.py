"""``collect export-responses [--email …] [--from …] [--to …] [--format F] [--wait] [--user U]``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.cli import describe, follow, job_owner
from jobs.models import State
from responses import mail, policy
from responses.forms import ExportForm
from responses.services import responses_export_start
from responses.writers import CHOICES, DEFAULT


class Command(BaseCommand):
    help = "Export the form responses in a date range to a file and e-mail it (a background job)."

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
        parser.add_argument(
            "--format",
            default=DEFAULT,
            choices=[name for name, _ in CHOICES],
            help="csv (for Excel, the default), csv_raw, xlsx or geojson.",
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
        format: str,
        **opts: Any,
    ) -> None:
        owner = job_owner(user)
        email = email or policy.own_address(owner)
        if not email:
            raise CommandError(f"--email: {policy.NO_OWN_ADDRESS}")
        form = ExportForm({"email": email, "from": date_from, "to": date_to, "format": format})
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
                format=form.cleaned_data["format"],
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
        if job.state == State.SUCCEEDED and job.result:
            self.stdout.write(mail.delivery_text(job.result))
        if job.error:
            self.stderr.write(job.error)
        if job.state != State.SUCCEEDED:
            raise CommandError(
                f"The export ended {job.state}: {describe(job)['error'] or 'no error given'}"
            )
