"""Where an export went (job page, API, CLI), "Send again", and what the requests accept."""

from __future__ import annotations

import datetime as dt
import io
import os
from decimal import Decimal
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from jobs.models import AuditEntry, Job
from responses.exporter import in_range
from responses.fake import create_responses
from responses.models import FormResponse
from tests.test_export_helpers import END, START, UTC, one_mail, start
from tests.workers import wait_state


def sent_words(job: Job, name: str) -> str:
    """The sentence the job page and the CLI show, built from the job's result."""
    sent = timezone.localtime(dt.datetime.fromisoformat(job.result["sent_at"]))
    size = default_storage.size(job.result_file)
    return (
        f"Sent to alice@example.com on {sent:%Y-%m-%d %H:%M} UTC, "
        f"attached as {name} ({size:,} bytes)."
    )


@pytest.fixture
def web_mail(settings: Any, smtp: Any) -> None:
    """The web process sends "Send again" itself: to the real SMTP server of the test."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    settings.COLLECT_EXPORT_MAIL_ATTEMPTS = 1


@pytest.mark.servers  # "Send again" counts against the daily cap under row locks
def test_it_says_where_the_export_went_and_sends_it_again(  # type: ignore[no-untyped-def]
    make_worker, smtp, inbox, user, other_user, web_mail, api
):
    create_responses(50, start=START, end=END, seed=21)
    make_worker(env=smtp.env())
    job = start(user, None, None)
    wait_state(job, "succeeded")
    first = one_mail(inbox)
    words = sent_words(job, "responses_start_end.csv")
    assert job.result["delivery"] == "attachment" and job.result["email"] == "alice@example.com"

    owner = Client()
    owner.force_login(user)
    page = owner.get(job.get_absolute_url()).content.decode()
    assert escape(words) in page
    assert "Send again to alice@example.com" in page
    api_view = owner.get(f"/api/tasks/{job.id}/", HTTP_ACCEPT="application/json").json()
    assert api_view["result"] == job.result

    # Another user cannot send it; the owner can, and the same file arrives again.
    stranger = Client()
    stranger.force_login(other_user)
    assert stranger.post(f"/export_data/{job.id}/send-again").status_code == 404
    inbox.clear()
    again = owner.post(f"/export_data/{job.id}/send-again")
    assert again.status_code == 302 and again["Location"] == job.get_absolute_url()
    second = one_mail(inbox)
    assert second["Subject"] == first["Subject"]
    (a,), (b,) = list(first.iter_attachments()), list(second.iter_attachments())
    assert a.get_payload(decode=True) == b.get_payload(decode=True)
    job.refresh_from_db()
    assert job.result["sent_at"] > api_view["result"]["sent_at"]

    # A script does the same through the API and gets the new result.
    inbox.clear()
    by_api = api.post(f"/api/exports/responses/{job.id}/send-again/")
    assert by_api.status_code == 200
    job.refresh_from_db()
    assert by_api.json() == job.result and job.result["email_sent"] is True
    one_mail(inbox)

    # Once the file is gone there is nothing to send.
    default_storage.delete(job.result_file)
    gone = owner.post(f"/export_data/{job.id}/send-again")
    assert gone.status_code == 409
    assert (
        escape("The export's file is no longer kept; start the export again.")
        in gone.content.decode()
    )


def test_it_refuses_to_send_an_export_that_is_not_finished(browser_client, api, user):  # type: ignore[no-untyped-def]
    job = start(user, None, None)
    refusal = "Only a finished export can be sent again; this export is queued."
    answer = browser_client.post(f"/export_data/{job.id}/send-again")
    assert answer.status_code == 409
    assert refusal in answer.content.decode()
    by_api = api.post(f"/api/exports/responses/{job.id}/send-again/")
    assert by_api.status_code == 409
    assert by_api.json() == {"detail": refusal, "state": "queued"}
    Job.objects.filter(id=job.id).update(state="failed")
    failed = api.post(f"/api/exports/responses/{job.id}/send-again/").json()["detail"]
    assert failed == "Only a finished export can be sent again; this export has failed."


def test_send_again_on_an_import_says_only_exports_are_sent(browser_client, api, user):  # type: ignore[no-untyped-def]
    job = Job.objects.create(
        kind="import_teams", owner=user, label="teams.csv", state="succeeded", params={}
    )
    refusal = (
        "Only exports are sent by e-mail; this job (Import teams) sends nothing, so there is "
        "nothing to send again."
    )
    by_api = api.post(f"/api/exports/responses/{job.id}/send-again/")
    assert (by_api.status_code, by_api.json()) == (409, {"detail": refusal, "state": "succeeded"})
    answer = browser_client.post(f"/export_data/{job.id}/send-again")
    assert answer.status_code == 409
    assert escape(refusal) in answer.content.decode()
    assert "is succeeded" not in answer.content.decode()
    # Refused and recorded, as every refused "Send again" is.
    details = AuditEntry.objects.filter(action="refused", job_id=job.id).values_list(
        "detail", flat=True
    )
    assert list(details) == [f"send again: {refusal}"] * 2


def test_the_cli_says_where_the_export_went(make_worker, smtp, inbox, user):  # type: ignore[no-untyped-def]
    create_responses(30, start=START, end=END, seed=22)
    make_worker(env=smtp.env())
    out = io.StringIO()
    call_command(
        "export-responses",
        "--email=alice@example.com",
        "--format=geojson",
        f"--user={user.username}",
        "--wait",
        stdout=out,
    )
    job = Job.objects.get()
    assert job.state == "succeeded" and job.result_file.endswith("/responses_start_end.geojson")
    lines = out.getvalue().splitlines()
    assert lines[-3].startswith("Exported 30 responses in ")
    assert lines[-2] == sent_words(job, "responses_start_end.geojson")
    assert lines[-1] == f"The job and its file: http://localhost:8000/tasks/{job.id}/"
    one_mail(inbox)


@pytest.mark.parametrize("url", ["/export_data/", "/api/exports/responses/"])
def test_a_format_is_chosen_or_refused_by_name(api, url):  # type: ignore[no-untyped-def]
    bad = api.post(url, {"email": "a@example.com", "format": "pdf"}, format="json")
    assert bad.status_code == 400
    assert bad.json() == {"format": ["Choose a format: csv, csv_raw, xlsx or geojson."]}
    ok = api.post(url, {"email": "a@example.com", "format": "xlsx"}, format="json")
    assert ok.status_code == 202
    job = Job.objects.get()
    assert job.params["format"] == "xlsx"
    assert os.path.basename(job.params["file"]) == "responses_start_end.xlsx"


@pytest.mark.servers  # microseconds at the range's ends: how each database stores and compares them
def test_a_range_given_to_the_minute_covers_the_whole_minute(browser_client):  # type: ignore[no-untyped-def]
    day = dt.datetime(2020, 5, 15, tzinfo=UTC)
    instants = {
        "before": day - dt.timedelta(microseconds=1),
        "first": day,
        "23:59:00": day.replace(hour=23, minute=59),
        "23:59:30": day.replace(hour=23, minute=59, second=30),
        "last": day.replace(hour=23, minute=59, second=59, microsecond=999_999),
        "after": day + dt.timedelta(days=1),
    }
    for name, ts in instants.items():
        FormResponse.objects.create(
            timestamp=ts, name_of_respondent=name, gender_of_respondent="Male",
            record_latitude=Decimal(0), record_longitude=Decimal(0),
        )  # fmt: skip
    page = browser_client.post(
        "/export_data/",
        {"email": "a@example.com", "from": "2020-05-15 00:00", "to": "2020-05-15 23:59"},
    )
    assert page.status_code == 302
    job = Job.objects.get()
    assert job.params["to"] == "2020-05-15T23:59:59.999999+00:00"
    assert job.label == (
        "Responses 2020-05-15 00:00:00.000000 +00:00 (UTC) to "
        "2020-05-15 23:59:59.999999 +00:00 (UTC), csv, for a@example.com"
    )
    assert os.path.basename(job.params["file"]) == (
        "responses_2020-05-15T000000.000000+0000_2020-05-15T235959.999999+0000.csv"
    )
    got = sorted(in_range(job).values_list("name_of_respondent", flat=True))
    assert got == sorted(["first", "23:59:00", "23:59:30", "last"])


def test_the_page_offers_every_format(browser_client):  # type: ignore[no-untyped-def]
    html = browser_client.get("/export_data/", {"email": "a@example.com", "format": "xlsx"})
    text = html.content.decode()
    assert '<option value="csv">CSV for Excel (UTF-8 with BOM)</option>' in text
    assert (
        '<option value="csv_raw">CSV for programs (RFC 4180, values exactly as stored)</option>'
        in text
    )
    assert '<option value="xlsx" selected>Excel workbook (XLSX)</option>' in text
    assert '<option value="geojson">GeoJSON (points for a map)</option>' in text
