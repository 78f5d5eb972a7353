"""Export form responses: real worker, real SMTP server (aiosmtpd), real database."""

from __future__ import annotations

import datetime as dt
import os
import time
from decimal import Decimal

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from django.utils.html import escape

from jobs import services
from jobs.models import Job
from responses.fake import create_responses
from responses.models import FormResponse
from responses.views import LINK_EXPIRED, LINK_INVALID
from tests.test_export_helpers import (
    END,
    HEADER,
    START,
    UTC,
    YEAR_FROM,
    YEAR_TO,
    attached_csv,
    body,
    expected,
    file_of,
    link_path,
    one_mail,
    parse,
    start,
)
from tests.workers import wait_processed, wait_state

# The outcome depends on the database and the broker: CI runs it on each.
pytestmark = pytest.mark.servers

# Sizes: the full 100k rows for the range test; fewer where only the mechanism matters.
BIG = int(os.environ.get("COLLECT_TEST_EXPORT_ROWS", "100000"))


def test_it_mails_exactly_the_rows_of_one_year(make_worker, smtp, inbox, user, other_user):  # type: ignore[no-untyped-def]
    create_responses(BIG, start=START, end=END, seed=7)
    # Rows right on both ends, and just outside them.
    edge = {"name_of_respondent": "Edge", "gender_of_respondent": "Other"}
    pos = {"record_latitude": Decimal("1.5"), "record_longitude": Decimal("-2.25")}
    second = dt.timedelta(seconds=1)
    for ts in (YEAR_FROM - second, YEAR_FROM, YEAR_TO, YEAR_TO + second):
        FormResponse.objects.create(timestamp=ts, **edge, **pos)
    make_worker(
        env=smtp.env(COLLECT_EXPORT_BATCH_ROWS="2000", COLLECT_EXPORT_ATTACH_MAX_BYTES="2000000")
    )
    job = start(user)
    wait_state(job, "succeeded", timeout=120)

    in_year = FormResponse.objects.filter(timestamp__gte=YEAR_FROM, timestamp__lte=YEAR_TO)
    want = expected(in_year)
    assert 0.3 * BIG < len(want) - 1 < 0.37 * BIG  # one year of three
    assert job.total == job.processed == len(want) - 1
    msg = one_mail(inbox)
    assert msg["To"] == "alice@example.com"
    assert msg["Subject"] == f"Collect: your export of form responses ({len(want) - 1:,} rows)"
    assert (
        "from 2018-05-15 00:00:00.000000 +00:00 (UTC) to 2019-05-15 00:00:00.000000 +00:00 (UTC) "
        f"(both included) is ready.\nIt has {len(want) - 1:,} rows."
    ) in body(msg)
    name, data = attached_csv(msg)
    # Too big to attach as it is (COLLECT_EXPORT_ATTACH_MAX_BYTES), small enough zipped.
    assert name == "responses_2018-05-15T000000.000000+0000_2019-05-15T000000.000000+0000.csv.zip"
    got = parse(data)
    assert got[0] == HEADER
    assert [r[0] for r in got] == [r[0] for r in want]  # ids, in (timestamp, id) order
    assert got == want
    edges = [r[1] for r in got if r[3] == "Edge"]
    assert edges == ["2018-05-15T00:00:00.000000+00:00", "2019-05-15T00:00:00.000000+00:00"]
    assert data == file_of(job)
    sent_at = job.result.pop("sent_at")
    assert dt.datetime.fromisoformat(sent_at) <= job.finished_at
    attachment_bytes = job.result.pop("attachment_bytes")
    assert 0 < attachment_bytes < len(data)
    assert job.result == {
        "rows": len(want) - 1,
        "bytes": len(data),
        "format": "csv",
        "email": "alice@example.com",
        "delivery": "attachment",
        "attachment": name,
        "email_sent": True,
    }
    assert job.error == ""

    # The owner downloads it from the job page too; another user does not see the job.
    owner = Client()
    owner.force_login(user)
    page = owner.get(job.get_absolute_url())
    assert f'href="/tasks/{job.id}/result"' in page.content.decode()
    got_file = owner.get(f"/tasks/{job.id}/result")
    assert got_file.status_code == 200
    assert b"".join(got_file.streaming_content) == data
    stranger = Client()
    stranger.force_login(other_user)
    assert stranger.get(f"/tasks/{job.id}/result").status_code == 404


def test_it_mails_a_header_only_csv_for_an_empty_range(make_worker, smtp, inbox, user):  # type: ignore[no-untyped-def]
    create_responses(200, start=START, end=END, seed=1)
    make_worker(env=smtp.env())
    job = start(user, dt.datetime(2030, 1, 1, tzinfo=UTC), dt.datetime(2030, 12, 31, tzinfo=UTC))
    wait_state(job, "succeeded")
    assert (job.total, job.processed) == (0, 0)
    msg = one_mail(inbox)
    assert msg["Subject"] == "Collect: your export of form responses (0 rows)"
    assert (
        "No form responses were recorded in that range, so the file has only its header."
        in body(msg)
    )
    name, data = attached_csv(msg)
    assert name == "responses_2030-01-01T000000.000000+0000_2030-12-31T000000.000000+0000.csv"
    assert data == b"\xef\xbb\xbf" + (",".join(HEADER) + "\r\n").encode()


def test_it_neutralises_formula_cells_and_keeps_numbers(make_worker, smtp, inbox, user):  # type: ignore[no-untyped-def]
    ts = dt.datetime(2019, 1, 1, 12, 0, tzinfo=UTC)
    names = ['=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)", "\tTab", "\rCR", "O'Brien, Jr."]
    for i, name in enumerate(names):
        FormResponse.objects.create(
            timestamp=ts + dt.timedelta(minutes=i),
            user=user,
            name_of_respondent=name,
            gender_of_respondent="Female",
            reading_books=True,
            mobile_no="+441234567890",
            record_latitude=Decimal("-33.868820"),
            record_longitude=Decimal("-151.209296"),
        )
    make_worker(env=smtp.env())
    job = start(user, None, None)
    wait_state(job, "succeeded")
    rows = parse(attached_csv(one_mail(inbox))[1])[1:]
    assert [r[3] for r in rows] == [
        '\'=HYPERLINK("http://x")',
        "+1",
        "'-2+3",
        "'@SUM(A1)",
        "\tTab",
        "\rCR",
        "O'Brien, Jr.",
    ]
    assert {(r[2], r[5], r[6], r[7], r[8], r[9]) for r in rows} == {
        ("alice", "true", "false", "+441234567890", "-33.868820", "-151.209296")
    }


def test_it_stops_mid_export_without_mail_or_file(make_worker, smtp, inbox, user):  # type: ignore[no-untyped-def]
    create_responses(20_000, start=START, end=END, seed=2)
    make_worker(
        env=smtp.env(COLLECT_EXPORT_BATCH_ROWS="200", COLLECT_EXPORT_THROTTLE_SECONDS="0.05")
    )
    job = start(user, None, None)
    wait_processed(job, 1000)
    path = default_storage.path(job.param("file"))
    assert os.path.getsize(path) > 0
    services.job_stop(job=job, by=user)
    wait_state(job, "stopped")
    assert 1000 <= job.processed < 20_000
    assert not os.path.exists(path)
    assert not os.path.exists(os.path.dirname(path))
    assert job.result_file == ""
    time.sleep(1)
    assert inbox.messages == []


def test_it_pauses_and_resumes_to_an_exact_file(make_worker, smtp, inbox, user):  # type: ignore[no-untyped-def]
    create_responses(20_000, start=START, end=END, seed=3)
    make_worker(
        env=smtp.env(COLLECT_EXPORT_BATCH_ROWS="300", COLLECT_EXPORT_THROTTLE_SECONDS="0.03")
    )
    job = start(user, None, None)
    wait_processed(job, 3000)
    services.job_pause(job=job, by=user)
    wait_state(job, "paused")
    paused_at = job.processed
    assert paused_at < 20_000
    assert os.path.getsize(default_storage.path(job.param("file"))) == job.checkpoint["size"]
    time.sleep(0.5)
    assert Job.objects.get(id=job.id).processed == paused_at  # really paused
    services.job_resume(job=Job.objects.get(id=job.id), by=user)
    wait_state(job, "succeeded", timeout=120)
    data = attached_csv(one_mail(inbox))[1]
    assert parse(data) == expected(FormResponse.objects.all())
    assert data == file_of(job)


def test_it_survives_a_killed_worker_with_an_exact_file(make_worker, smtp, inbox, user):  # type: ignore[no-untyped-def]
    create_responses(20_000, start=START, end=END, seed=4)
    env = smtp.env(COLLECT_EXPORT_BATCH_ROWS="300", COLLECT_EXPORT_THROTTLE_SECONDS="0.03")
    first = make_worker(env=env)
    job = start(user, None, None)
    wait_processed(job, 3000)
    first.kill()
    job.refresh_from_db()
    assert job.state == "running" and job.processed < 20_000
    # A write that the dead worker never committed: the next run must cut it off.
    with open(default_storage.path(job.param("file")), "ab") as fh:
        fh.write(b"99999999,torn line without an e")
    make_worker(env=env)
    wait_state(job, "succeeded", timeout=120)
    assert job.attempts >= 2
    data = attached_csv(one_mail(inbox))[1]
    assert parse(data) == expected(FormResponse.objects.all())
    assert data == file_of(job)


def test_it_sends_a_signed_link_for_a_large_export(
    make_worker, smtp, inbox, user, other_user, settings
):  # type: ignore[no-untyped-def]
    create_responses(3000, start=START, end=END, seed=5)
    make_worker(env=smtp.env(COLLECT_EXPORT_ATTACH_MAX_BYTES="20000"))
    job = start(user, None, None, site_url="http://collect.example:8000/")
    wait_state(job, "succeeded")
    msg = one_mail(inbox)
    assert list(msg.iter_attachments()) == []
    text = body(msg)
    assert "The file is too large to attach. Download it here (sign in as alice; " in text
    assert "http://collect.example:8000/export_data/download/" in text
    assert job.result["delivery"] == "link"
    url = link_path(msg)

    owner = Client()
    owner.force_login(user)
    got = owner.get(url)
    assert got.status_code == 200
    assert got["Content-Disposition"] == 'attachment; filename="responses_start_end.csv"'
    data = b"".join(got.streaming_content)
    assert data == file_of(job)
    assert parse(data) == expected(FormResponse.objects.all())

    stranger = Client()
    stranger.force_login(other_user)
    assert stranger.get(url).status_code == 404
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")

    head, _, signature = url.rpartition(":")
    tampered = owner.get(f"{head}:{'A' if signature[0] != 'A' else 'B'}{signature[1:]}")
    assert tampered.status_code == 400
    assert escape(LINK_INVALID) in tampered.content.decode()
    assert LINK_INVALID == (
        "This download link is not valid: it was changed or cut short. "
        "Open the link exactly as it is in the e-mail."
    )

    settings.COLLECT_EXPORT_LINK_MAX_AGE_SECONDS = 1
    time.sleep(2.1)
    expired = owner.get(url)
    assert expired.status_code == 410
    assert escape(LINK_EXPIRED) in expired.content.decode()
    assert LINK_EXPIRED == (
        "This download link has expired. Download the file from the export's job page, "
        "or start the export again."
    )


def test_it_retries_the_mail_and_then_shows_the_failure(make_worker, smtp, inbox, user):  # type: ignore[no-untyped-def]
    create_responses(500, start=START, end=END, seed=6)
    make_worker(env=smtp.env())
    inbox.refuse_next = 2  # two 451s, then accepted: the third attempt delivers
    job = start(user, None, None)
    wait_state(job, "succeeded")
    assert inbox.refused == 2
    one_mail(inbox)
    assert job.error == "" and job.result["email_sent"] is True

    inbox.clear()
    inbox.refuse_next = 3  # every attempt refused
    job = start(user, None, None)
    wait_state(job, "succeeded", timeout=60)
    assert inbox.refused == 3 and inbox.messages == []
    assert job.result["email_sent"] is False
    assert job.error == (
        "The export is complete, but the e-mail to alice@example.com could not be sent "
        "(SMTPDataError: (451, b'4.3.0 Try again later')). Download the file from this page."
    )
    owner = Client()
    owner.force_login(user)
    got = owner.get(f"/tasks/{job.id}/result")
    assert got.status_code == 200
    assert b"".join(got.streaming_content) == file_of(job)
