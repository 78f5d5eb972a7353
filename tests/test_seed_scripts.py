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


# What browsers send for a page, and the narrowest Accept a browser could send.
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
NOT_FOUND_PAGE = "There is nothing at this address, or it belongs to someone else."


@pytest.mark.django_db
@pytest.mark.parametrize("accept", [BROWSER_ACCEPT, "text/html"])
def test_a_browser_gets_pages_from_the_seed_urls_whatever_it_accepts(user, other_user, accept):  # type: ignore[no-untyped-def]
    import uuid

    browser = Client(HTTP_ACCEPT=accept)
    browser.force_login(user)
    mine = Job.objects.create(kind="count", owner=user, state=State.RUNNING)
    theirs = Job.objects.create(kind="count", owner=other_user, state=State.RUNNING)
    for path in (f"/stop_task/{mine.id}", f"/tasks/{mine.id}/pause/", "/import_teams/"):
        page = browser.get(path)
        assert page.status_code == 200, path
        assert page["Content-Type"] == "text/html; charset=utf-8", path
        assert "<form" in page.content.decode(), path
    assert browser.get(SEED_EXPORT).status_code == 200
    # Another user's job, or none: the site's 404 page, as /tasks/<id>/ shows it.
    for task_id in (theirs.id, uuid.uuid4()):
        for method, path in (
            ("get", f"/stop_task/{task_id}"),
            ("post", f"/stop_task/{task_id}"),
            ("get", f"/tasks/{task_id}/stop/"),
            ("post", f"/tasks/{task_id}/pause/"),
            ("get", f"/tasks/{task_id}/"),
            ("post", f"/import_teams/{task_id}/apply"),
            ("post", f"/export_data/{task_id}/send-again"),
        ):
            page = getattr(browser, method)(path)
            assert page.status_code == 404, (method, path)
            assert page["Content-Type"] == "text/html; charset=utf-8", (method, path)
            assert NOT_FOUND_PAGE in page.content.decode(), (method, path)
    # Any other error of these pages is a page too, with DRF's words and headers.
    wrong = browser.delete(f"/stop_task/{mine.id}")
    assert wrong.status_code == 405 and wrong["Content-Type"] == "text/html; charset=utf-8"
    assert "<h1>Not available here</h1>" in wrong.content.decode()
    assert "Method &quot;DELETE&quot; not allowed." in wrong.content.decode()
    assert "POST" in wrong["Allow"]
    # An action that does not exist, on one's own job, too.
    assert "<h1>Not found</h1>" in browser.get(f"/tasks/{mine.id}/dance/").content.decode()
    for job in (mine, theirs):
        job.refresh_from_db()
        assert job.state == State.RUNNING


@pytest.mark.django_db
@pytest.mark.parametrize("accept", [BROWSER_ACCEPT, "text/html", "*/*"])
def test_a_script_gets_json_from_the_seed_urls_whatever_it_accepts(user, other_user, accept):  # type: ignore[no-untyped-def]
    from collect.errors import NOT_FOUND

    client = script(user)
    theirs = Job.objects.create(kind="count", owner=other_user, state=State.RUNNING)
    answer = client.get(f"/stop_task/{theirs.id}", HTTP_ACCEPT=accept)
    assert answer.status_code == 404
    assert answer["Content-Type"] == "application/json"
    assert answer.json() == {"detail": NOT_FOUND}
    done = Job.objects.create(kind="count", owner=user, state=State.SUCCEEDED)
    answer = client.get(f"/stop_task/{done.id}", HTTP_ACCEPT=accept)
    assert answer.status_code == 409 and answer["Content-Type"] == "application/json"
    assert answer.json() == {
        "task_id": str(done.id),
        "state": "succeeded",
        "detail": "This job has already succeeded; there is nothing to stop.",
    }


@pytest.mark.django_db
def test_a_browser_form_without_its_csrf_token_gets_a_page_that_says_so(user) -> None:  # type: ignore[no-untyped-def]
    browser = Client(enforce_csrf_checks=True, HTTP_ACCEPT=BROWSER_ACCEPT)
    browser.force_login(user)
    running = Job.objects.create(kind="count", owner=user, state=State.RUNNING)
    page = browser.post(f"/stop_task/{running.id}")
    assert page.status_code == 403 and page["Content-Type"] == "text/html; charset=utf-8"
    assert (
        "This form has expired, or it was not sent from one of Collect&#x27;s pages, so nothing "
        "was done. Go back, reload the page and try again."
    ) in page.content.decode()
    running.refresh_from_db()
    assert running.state == State.RUNNING
