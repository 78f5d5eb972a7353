"""The job pages and their live fragments, through Django's test client."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from jobs.formatting import duration, thousands
from jobs.models import Job, State

pytestmark = pytest.mark.django_db
POLL = 'hx-trigger="every 1s"'


def make(owner: User, **fields) -> Job:  # type: ignore[no-untyped-def]
    fields.setdefault("kind", "count")
    fields.setdefault("state", State.RUNNING)
    return Job.objects.create(owner=owner, **fields)


def text(response) -> str:  # type: ignore[no-untyped-def]
    """The page as a person reads it: tags (and a bar's fallback text) removed, spaces collapsed."""
    html = response if isinstance(response, str) else response.content.decode()
    html = re.sub(r"<progress[^>]*>.*?</progress>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def test_it_writes_numbers_and_durations_for_people() -> None:
    assert thousands(1234567) == "1,234,567"
    assert thousands(321.6) == "322"
    assert [duration(s) for s in (0, 0.4, 45, 125, 3600 + 180 + 9, 2 * 86400 + 4 * 3600)] == [
        "0 s", "less than 1 s", "45 s", "2 min 5 s", "1 h 3 min", "2 d 4 h",
    ]  # fmt: skip


def test_home_sends_people_to_their_jobs(browser_client) -> None:  # type: ignore[no-untyped-def]
    response = browser_client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/tasks/"


def test_the_list_shows_progress_rate_and_time_left(browser_client, user) -> None:  # type: ignore[no-untyped-def]
    started = timezone.now() - timedelta(seconds=4)
    make(user, label="teams.csv", kind="import_teams", processed=1234, total=5000,
         rate=321.4, started_at=started)  # fmt: skip
    page = text(browser_client.get("/tasks/"))
    assert "teams.csv Import teams running 24.7% · 1,234 of 5,000 rows" in page
    assert "321 rows/s about 12 s left" in page
    assert f"Started {timezone.localtime(started):%H:%M:%S}" in page
    assert "Import teams Teams Responses Export responses" in page  # in every page's menu


def test_each_state_gets_the_buttons_that_make_sense(browser_client, user) -> None:  # type: ignore[no-untyped-def]
    expected = {
        State.QUEUED: ["Pause", "Stop…"],
        State.RUNNING: ["Pause", "Stop…"],
        State.PAUSING: ["Resume", "Stop…"],
        State.PAUSED: ["Resume", "Stop…"],
        State.STOPPING: [],
        State.STOPPED: [],
        State.SUCCEEDED: [],
        State.FAILED: [],
    }
    for state, buttons in expected.items():
        job = make(user, state=state, label=f"job-{state}")
        html = browser_client.get(f"/tasks/{job.id}/").content.decode()
        found = re.findall(
            r'<button type="submit"[^>]*id="(?:pause|resume|stop)-[^"]+"[^>]*>([^<]+)<', html
        )
        assert found == buttons, state


def test_stop_goes_through_the_confirmation_page(browser_client, user) -> None:  # type: ignore[no-untyped-def]
    job = make(user, label="big.csv")
    html = browser_client.get("/tasks/").content.decode()
    assert f'<form method="get" action="/stop_task/{job.id}">' in html
    confirm = browser_client.get(f"/stop_task/{job.id}?next=/tasks/%3Fstate%3Drunning%26page%3D1")
    assert "Stop this job? Count “big.csv” is running with 0 rows done." in text(confirm)
    assert 'name="next" value="/tasks/?state=running&amp;page=1"' in confirm.content.decode()
    job.refresh_from_db()
    assert job.state == State.RUNNING
    done = browser_client.post(f"/stop_task/{job.id}", {"next": "/tasks/?state=running&page=1"})
    assert done["Location"] == "/tasks/?state=running&page=1"
    job.refresh_from_db()
    assert job.state == State.STOPPING
    page = text(browser_client.get(done["Location"]))
    said = r"At \d\d:\d\d:\d\d you asked to stop “big.csv”; what it wrote is removed\."
    assert re.search(said, page)


def test_buttons_never_send_people_to_another_site(browser_client, user) -> None:  # type: ignore[no-untyped-def]
    job = make(user)
    response = browser_client.post(f"/tasks/{job.id}/pause/", {"next": "https://evil.example/"})
    assert response["Location"] == f"/tasks/{job.id}/"
    confirm = browser_client.get(f"/stop_task/{job.id}?next=https://evil.example/")
    assert f'name="next" value="/tasks/{job.id}/"' in confirm.content.decode()


def test_an_impossible_action_says_why(browser_client, user) -> None:  # type: ignore[no-untyped-def]
    job = make(user, state=State.SUCCEEDED)
    response = browser_client.post(f"/tasks/{job.id}/pause/", {"next": "/tasks/"}, follow=True)
    assert "This job has already succeeded; there is nothing to pause." in text(response)


def test_the_list_polls_only_while_something_is_active(browser_client, user) -> None:  # type: ignore[no-untyped-def]
    job = make(user, state=State.RUNNING)
    for url in ("/tasks/", "/tasks/fragment/"):
        html = browser_client.get(url).content.decode()
        assert POLL in html
        assert 'hx-get="/tasks/fragment/?page=1"' in html
    Job.objects.filter(id=job.id).update(state=State.PAUSED)
    for url in ("/tasks/", "/tasks/fragment/"):
        html = browser_client.get(url).content.decode()
        assert "hx-trigger" not in html
        assert "hx-get" not in html  # without a trigger, a click would fetch it


def test_the_detail_page_polls_only_while_the_job_is_active(browser_client, user) -> None:  # type: ignore[no-untyped-def]
    job = make(user, state=State.QUEUED)
    for url in (f"/tasks/{job.id}/", f"/tasks/{job.id}/fragment/"):
        assert (
            f'hx-get="/tasks/{job.id}/fragment/" {POLL}' in browser_client.get(url).content.decode()
        )
    Job.objects.filter(id=job.id).update(state=State.SUCCEEDED, processed=5, total=5)
    for url in (f"/tasks/{job.id}/", f"/tasks/{job.id}/fragment/"):
        assert "hx-trigger" not in browser_client.get(url).content.decode()


def test_the_fragment_is_the_live_part_only(browser_client, user) -> None:  # type: ignore[no-untyped-def]
    job = make(user, processed=10, total=40)
    html = browser_client.get(f"/tasks/{job.id}/fragment/").content.decode()
    assert html.lstrip().startswith('<div id="job-live"')
    assert "<html" not in html
    assert "25% · 10 of 40 rows" in text(html)
    response = browser_client.get(f"/tasks/{job.id}/fragment/")
    assert "no-cache" in response["Cache-Control"]


def test_fragments_answer_only_the_owner(
    client, user, other_user, staff_user, manager_user
) -> None:  # type: ignore[no-untyped-def]
    job = make(user, label="mine.csv")
    for outsider in (other_user, staff_user):
        client.force_login(outsider)
        assert client.get(f"/tasks/{job.id}/fragment/").status_code == 404
        assert client.get(f"/tasks/{job.id}/").status_code == 404
        assert "mine.csv" not in client.get("/tasks/fragment/").content.decode()
    client.force_login(manager_user)
    assert client.get(f"/tasks/{job.id}/fragment/").status_code == 200
    assert "mine.csv" in client.get("/tasks/fragment/").content.decode()


def test_an_ended_session_makes_the_page_reload_not_swap_in_a_login_form(user) -> None:  # type: ignore[no-untyped-def]
    job = make(user)
    for url in (f"/tasks/{job.id}/fragment/", "/tasks/fragment/"):
        response = Client().get(url)
        assert response.status_code == 401
        assert response["HX-Refresh"] == "true"


def test_the_fragment_answers_quickly(browser_client, user, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    for i in range(30):
        make(user, label=f"f{i}.csv", processed=i, total=30)
    job = Job.objects.first()
    assert job is not None
    # session, user, the user's and their groups' permissions (jobs.manage_all_jobs),
    # the job(s), the count
    with django_assert_max_num_queries(6):
        browser_client.get("/tasks/fragment/")
    with django_assert_max_num_queries(5):
        browser_client.get(f"/tasks/{job.id}/fragment/")
    began = time.perf_counter()
    for _ in range(10):
        assert browser_client.get(f"/tasks/{job.id}/fragment/").status_code == 200
    assert (time.perf_counter() - began) / 10 < 0.25


def test_filters_by_state_and_kind(browser_client, user) -> None:  # type: ignore[no-untyped-def]
    make(user, label="a-running-count", state=State.RUNNING)
    make(user, label="a-failed-import", kind="import_teams", state=State.FAILED)
    make(user, label="a-failed-count", state=State.FAILED)
    page = text(browser_client.get("/tasks/?state=failed&kind=import_teams"))
    assert "a-failed-import" in page
    assert "a-failed-count" not in page and "a-running-count" not in page
    page = text(browser_client.get("/tasks/?state=failed"))
    assert "a-failed-import" in page and "a-failed-count" in page
    assert "a-running-count" not in page
    assert "No jobs match these filters." in text(browser_client.get("/tasks/?state=paused"))
    # A value that is not a state or kind is ignored rather than hiding everything.
    assert "a-running-count" in text(browser_client.get("/tasks/?state=bogus&kind=nope"))
    # The engine's test kind is not offered as a filter; a dry run says it is one.
    html = browser_client.get("/tasks/").content.decode()
    assert '<option value="import_teams"' in html and '<option value="count"' not in html
    make(
        user,
        label="a-dry-run",
        kind="import_teams",
        state=State.SUCCEEDED,
        params={"dry_run": True},
    )
    page = text(browser_client.get("/tasks/?kind=import_teams"))
    assert "a-dry-run Import teams · dry run, nothing written" in page, page
    assert page.count("dry run, nothing written") == 1  # not on the real import


def test_pages_of_twenty_newest_first(browser_client, user) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    for i in range(25):
        job = make(user, label=f"job-{i:02d}", state=State.SUCCEEDED)
        Job.objects.filter(id=job.id).update(created_at=now - timedelta(minutes=i))
    first = text(browser_client.get("/tasks/?state=succeeded"))
    labels = re.findall(r"job-\d\d", first)
    assert labels == [f"job-{i:02d}" for i in range(20)]
    assert "Page 1 of 2 (25 jobs) Older →" in first
    html = browser_client.get("/tasks/?state=succeeded").content.decode()
    assert 'href="?state=succeeded&amp;page=2"' in html
    second = text(browser_client.get("/tasks/?state=succeeded&page=2"))
    assert re.findall(r"job-\d\d", second) == [f"job-{i:02d}" for i in range(20, 25)]
    assert "← Newer Page 2 of 2 (25 jobs)" in second


def test_the_detail_page_shows_parameters_problems_and_files(browser_client, user) -> None:  # type: ignore[no-untyped-def]
    job = make(
        user, kind="import_teams", label="teams.csv", state=State.FAILED, processed=0, total=3,
        params={"file": "imports/teams/x.csv", "filename": "teams.csv", "size": 20480,
                "on_error": "fail", "batch_size": None},
        error="2 rows have problems; nothing was imported.",
        problems=[
            {"row": 2, "column": "manager", "value": "x" * 25, "message": "At most 20 characters."},
            {"row": 3, "column": "name", "value": "", "message": "A name is required."},
        ],
        problem_count=2, error_report_file="reports/x.csv",
    )  # fmt: skip
    page = text(browser_client.get(f"/tasks/{job.id}/"))
    assert "Parameters File teams.csv File size 20,480 bytes Bad rows fail" in page
    assert "imports/teams/x.csv" not in page
    assert "What went wrong 2 rows have problems; nothing was imported." in page
    assert "Problems found: 2" in page
    assert "2 manager xxxxxxxxxxxxxxxxxxxxxxxxx At most 20 characters." in page
    assert "3 name A name is required." in page
    assert "Download the full error report (CSV)" in page
    html = browser_client.get(f"/tasks/{job.id}/").content.decode()
    assert f'href="/tasks/{job.id}/errors.csv"' in html
    assert "/result" not in html


def test_a_finished_export_links_its_file(browser_client, user) -> None:  # type: ignore[no-untyped-def]
    job = make(user, kind="export_responses", state=State.SUCCEEDED, processed=7, total=7,
               result_file="exports/responses-2025.csv", run_seconds=125.2,
               finished_at=timezone.now())  # fmt: skip
    page = text(browser_client.get(f"/tasks/{job.id}/"))
    assert "Download the result (responses-2025.csv)" in page
    assert "100% · 7 of 7 rows" in page
    assert "Working time 2 min 5 s" in page
    assert "took 2 min 5 s" in text(browser_client.get("/tasks/"))


def test_the_detail_page_charts_throughput(browser_client, user) -> None:  # type: ignore[no-untyped-def]
    job = make(user, processed=600, total=1000, rate=200,
               samples=[[1.0, 100], [2.0, 300], [3.0, 600]])  # fmt: skip
    html = browser_client.get(f"/tasks/{job.id}/").content.decode()
    svg = re.search(r"<svg.*?</svg>", html, re.S)
    assert svg is not None
    assert 'role="img"' in svg.group(0)
    summary = "Throughput over 3 s of work: on average 200 rows/s, at most 300 rows/s."
    assert f'<title id="chart-title">{summary}</title>' in svg.group(0)
    assert "<polyline" in svg.group(0)
    fresh = make(user, samples=[[1.0, 5]])
    assert "The chart appears after a few seconds of work." in text(
        browser_client.get(f"/tasks/{fresh.id}/")
    )


def test_error_pages_are_styled_with_a_way_back(browser_client, rf) -> None:  # type: ignore[no-untyped-def]
    from django.views.defaults import server_error

    missing = browser_client.get("/no/such/page/")
    assert missing.status_code == 404
    html = missing.content.decode()
    assert "collect.css" in html and 'href="/">Back to your jobs</a>' in html
    assert "There is nothing at this address" in html
    broken = server_error(rf.get("/"))
    assert broken.status_code == 500
    html = broken.content.decode()
    assert "Something went wrong on our side" in html and "collect.css" in html
