"""``collect export-responses [--email …] [--from …] [--to …] [--format F] [--wait] [--json]``.

Without ``--wait`` it prints the task id alone (``ID=$(collect export-responses …)``);
with it, a progress bar and then where the file went. Exit status 1 when the
job fails or is stopped; ``--json`` prints the job as JSON instead.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.cli import follow, job_owner, page_url, report, started
from jobs.formatting import duration, thousands
from jobs.models import Job, State
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
        parser.add_argument("--json", action="store_true", help="Print the job as JSON.")
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
        json: bool,
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
        if not wait:
            started(self, job, as_json=json, what="Export")
            return
        job = follow(job)
        report(self, job, summary(job), as_json=json)


def summary(job: Job) -> list[str]:
    """What a person reads when the export ends: how many rows, and where the file went."""
    if job.state == State.SUCCEEDED:
        took = f" in {duration(job.run_seconds)}" if job.run_seconds else ""
        lines = [f"Exported {thousands(job.processed)} responses{took}."]
        if job.result:
            lines.append(mail.delivery_text(job.result))
        lines.append(f"The job and its file: {page_url(job)}")
        return lines
    if job.state == State.STOPPED:
        return [
            f"Stopped: the partial file ({thousands(job.processed)} rows) was deleted "
            "and nothing was sent."
        ]
    if job.state == State.FAILED:
        return [f"The export failed: {job.error or 'no reason was recorded.'}"]
    return [f"The export goes on in the background: {page_url(job)}"]
