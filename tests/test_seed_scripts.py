"""The seed's own scripts, unchanged: a GET with a token starts an export or stops a job.

A GET from a browser session (cookies) still changes nothing: it only shows
the page with its button.
"""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from jobs.models import CountRow, Job, State
from jobs.services import enqueue_now
from responses.fake import create_responses
from tests.conftest import make_token
from tests.test_export_helpers import END, START, one_mail
from tests.workers import wait_processed, wait_state

SEED_EXPORT = "/export_data/?email=alice@example.com&from=2017-05-15%2000:00&to=2020-05-15%2000:00"


def script(user):  # type: ignore[no-untyped-def]
    client = APIClient()  # no cookies: what `curl -H "Authorization: Token …"` sends
    client.credentials(HTTP_AUTHORIZATION=f"Token {make_token(user)}")
    return client


@pytest.mark.servers  # real worker, real broker, real database
def test_a_token_get_on_export_data_starts_the_export_and_mails_it(make_worker, smtp, inbox, user):  # type: ignore[no-untyped-def]
    create_responses(30, start=START, end=END, seed=5)
    make_worker(env=smtp.env())
    answer = script(user).get(SEED_EXPORT)
    assert answer.status_code == 202
    body = answer.json()
    assert set(body) == {"task_id", "state", "url"} and body["state"] == "queued"
    job = wait_state(Job.objects.get(id=body["task_id"]), "succeeded")
    assert job.processed == 30
    assert one_mail(inbox)["To"] == "alice@example.com"


@pytest.mark.servers
def test_a_token_get_on_stop_task_stops_the_job_and_undoes_it(worker, user):  # type: ignore[no-untyped-def]
    job = Job.objects.create(kind="count", owner=user, params={"n": 100000, "delay": 0.05})
    enqueue_now(job.id)
    wait_processed(job, 30)
    answer = script(user).get(f"/stop_task/{job.id}")
    assert answer.status_code == 200
    assert answer.json() == {"task_id": str(job.id), "state": "stopping"}
    wait_state(job, "stopped")
    assert not CountRow.objects.filter(job_id=job.id).exists()
    # Again: already stopped is a harmless 200; a finished job is a 409 with its state.
    assert script(user).get(f"/stop_task/{job.id}").json()["state"] == "stopped"
    done = Job.objects.create(kind="count", owner=user, state=State.SUCCEEDED)
    refused = script(user).get(f"/stop_task/{done.id}")
    assert refused.status_code == 409 and refused.json()["state"] == "succeeded"


@pytest.mark.django_db
def test_a_cookie_get_changes_nothing(user) -> None:  # type: ignore[no-untyped-def]
    browser = Client()
    browser.force_login(user)
    running = Job.objects.create(kind="count", owner=user, state=State.RUNNING)
    page = browser.get(f"/stop_task/{running.id}")
    assert page.status_code == 200 and "<form" in page.content.decode()
    running.refresh_from_db()
    assert running.state == State.RUNNING
    export_page = browser.get(SEED_EXPORT)
    assert export_page.status_code == 200
    assert Job.objects.count() == 1
    # The same with a JSON Accept header but no token: still only the page.
    assert browser.get(SEED_EXPORT, HTTP_ACCEPT="application/json").status_code == 200
    assert Job.objects.count() == 1


@pytest.mark.django_db
def test_a_script_gets_json_where_a_browser_gets_a_page(user) -> None:  # type: ignore[no-untyped-def]
    """A token client never receives an HTML page: a bad task id, the upload page's GET."""
    from collect.errors import NOT_FOUND

    client = script(user)
    for path in ("/stop_task/not-a-uuid", "/tasks/not-a-uuid/", "/no/such/page/"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert answer["Content-Type"] == "application/json", path
        assert answer.json() == {"detail": NOT_FOUND}, path
    upload_page = client.get("/import_teams/")
    assert upload_page.status_code == 405 and "POST" in upload_page["Allow"]
    assert upload_page.json()["detail"].startswith(
        'This address takes an upload: POST the file as the multipart field "file"'
    )
    browser = Client()
    browser.force_login(user)
    assert "text/html" in browser.get("/stop_task/not-a-uuid")["Content-Type"]
    assert "<form" in browser.get("/import_teams/").content.decode()
