"""What the job pages say matches what happened: finished jobs, undone writes, the check."""

from __future__ import annotations

import html
import io
import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from jobs import services
from jobs.models import Job, State
from teams.models import Team
from tests.test_import_helpers import start
from tests.test_pages import make, text
from tests.workers import wait_for, wait_state

FINISHED = [State.SUCCEEDED, State.FAILED, State.STOPPED]


@pytest.mark.django_db
@pytest.mark.parametrize(("state", "verb"), [(State.STOPPED, "Stopped"), (State.FAILED, "Failed")])
def test_an_undone_job_says_nothing_was_kept(
    browser_client: Client, user: User, state, verb
) -> None:  # type: ignore[no-untyped-def]
    job = make(user, state=state, processed=855_000, total=3_000_000, finished_at=timezone.now())
    said = f"{verb}: 855,000 rows were written and removed; nothing was kept."
    for url in (f"/tasks/{job.id}/", "/tasks/"):
        page = text(browser_client.get(url))
        assert said in page
        assert "3,000,000" not in page
    early = make(user, state=state, processed=0, total=None, finished_at=timezone.now())
    assert f"{verb} before anything was written; nothing was kept." in text(
        browser_client.get(f"/tasks/{early.id}/")
    )


@pytest.mark.django_db
@pytest.mark.parametrize("state", FINISHED)
def test_a_finished_job_offers_no_control_and_its_stop_page_says_so(
    browser_client: Client, user: User, state: str
) -> None:
    job = make(user, state=state, processed=10, total=10, finished_at=timezone.now())
    html = browser_client.get(f"/tasks/{job.id}/").content.decode()
    for button in ("Pause", "Resume", "Stop"):
        assert f'id="{button.lower()}-{job.id}"' not in html
    # Too short to chart, and it will never be longer: no promise of a chart.
    page = text(html)
    assert "The chart appears" not in page
    assert "The job ran too briefly to chart." in page

    stop = browser_client.get(f"/stop_task/{job.id}")
    assert stop.status_code == 200
    said = text(stop)
    assert "This job has already finished" in said
    why = {
        State.SUCCEEDED: "This job has already succeeded; there is nothing to stop.",
        State.FAILED: "This job has already failed; there is nothing to stop.",
        State.STOPPED: "This job has already been stopped; there is nothing to stop.",
    }[State(state)]
    assert why in said
    assert "Stop the job" not in said
    assert "removes everything" not in said
    job.refresh_from_db()
    assert job.state == state


@pytest.mark.django_db
def test_confirmation_pages_offer_only_changes_that_do_something(
    browser_client: Client, user: User
) -> None:
    stopping = make(user, state=State.STOPPING)
    page = text(browser_client.get(f"/stop_task/{stopping.id}"))
    assert "This job is already being stopped; there is nothing to stop." in page
    assert "Stop the job" not in page
    paused = make(user, state=State.PAUSED)
    page = text(browser_client.get(f"/tasks/{paused.id}/pause/"))
    assert "This job is already paused; there is nothing to pause." in page
    assert "Resume the job" in text(browser_client.get(f"/tasks/{paused.id}/resume/"))
    running = make(user, state=State.RUNNING)
    assert "Stop the job" in text(browser_client.get(f"/stop_task/{running.id}"))


@pytest.mark.django_db
def test_messages_are_events_with_their_time(browser_client: Client, user: User) -> None:
    job = make(user, label="big.csv")
    page = text(browser_client.post(f"/tasks/{job.id}/pause/", follow=True))
    # The live part says "pausing" now and "paused" later; the message stays true either way.
    assert re.search(r"At \d\d:\d\d:\d\d you asked to pause “big.csv”", page)
    assert "Pausing “" not in page


@pytest.mark.django_db
def test_the_check_shows_its_own_progress(browser_client: Client, user: User) -> None:
    checking = {"done": 4_000_000, "total": 10_000_000, "unit": "bytes", "rate": 2_000_000}
    job = make(user, kind="import_teams", total=None, processed=0, checking=checking)
    page = text(browser_client.get(f"/tasks/{job.id}/fragment/"))
    assert "checking the file: 40% · 3.8 MiB of 9.5 MiB checked" in page
    assert "Checking at 1.9 MiB/s Time left to check about 3 s" in page
    assert "counting the rows" not in page
    rows = make(
        user, total=None, checking={"done": 1_200, "total": 9_000, "unit": "rows", "rate": 400}
    )
    page = text(browser_client.get(f"/tasks/{rows.id}/fragment/"))
    assert "checking the file: 13.3% · 1,200 of 9,000 rows checked" in page
    assert "Checking at 400 rows/s Time left to check about 20 s" in page


@pytest.mark.django_db
def test_a_finished_import_links_the_teams_it_added(browser_client: Client, user: User) -> None:
    job = make(user, kind="import_teams", state=State.SUCCEEDED, processed=3, total=3,
               result={"imported": 3, "skipped": 1}, finished_at=timezone.now())  # fmt: skip
    html = browser_client.get(f"/tasks/{job.id}/").content.decode()
    assert f'<a href="/teams/?job={job.id}">See the 3 teams this job created</a>' in html


@pytest.mark.django_db
def test_an_export_says_where_its_file_goes(browser_client: Client, user: User) -> None:
    params = {"email": "alice@example.com", "from": "", "to": ""}
    running = make(user, kind="export_responses", params=params)
    assert "When the file is ready it is e-mailed to alice@example.com" in text(
        browser_client.get(f"/tasks/{running.id}/")
    )
    stopped = make(user, kind="export_responses", params=params, state=State.STOPPED)
    assert (
        "Nothing was sent to alice@example.com: the export was stopped and its unfinished "
        "file deleted." in text(browser_client.get(f"/tasks/{stopped.id}/"))
    )


@pytest.mark.servers
def test_a_real_check_reports_bytes_and_speed_while_it_runs(
    worker, user: User, tmp_path, client: Client
) -> None:  # type: ignore[no-untyped-def]
    """The check's bytes and speed are on the job row while it checks; a stop then keeps nothing.

    The speed needs two heartbeats (a second apart), so the check must last a few
    seconds on any machine: a million short rows take ~3 s here (the 200,000 rows
    of ``fake_csv`` are checked in under one). Simple rows are written directly,
    as ``fake_csv`` would take ~8 s for a million.
    """
    path = tmp_path / "many-teams.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("name,description,manager,members\r\n")
        fh.writelines(f"Team {n},d,m{n},\r\n" for n in range(1_000_000))
    job = start(user, path)

    def checking() -> Job | None:
        row = Job.objects.get(id=job.id)
        return row if row.total is None and (row.checking or {}).get("rate") else None

    seen = wait_for(checking, timeout=60, what="a check with a speed")
    assert seen.checking["total"] == path.stat().st_size
    assert seen.checking["unit"] == "bytes"
    assert 0 < seen.checking["done"] < seen.checking["total"]
    assert seen.checking["rate"] > 0 and seen.checking["seconds"] >= 1
    services.job_stop(job=seen, by=user)
    done = wait_state(job, State.STOPPED, timeout=120)
    assert done.total is None and done.processed == 0
    assert not Team.objects.filter(job=job).exists()


@pytest.mark.django_db
def test_a_job_whose_worker_fell_silent_says_so_and_when_another_carries_on(
    browser_client: Client, user: User, settings
) -> None:  # type: ignore[no-untyped-def]
    """A killed worker's job is not shown as happily running until its lease runs out."""
    from datetime import timedelta

    settings.COLLECT_JOB_LEASE_SECONDS = 30
    now = timezone.now()
    job = make(user, state=State.RUNNING, worker="celery@host-a", processed=500, total=1000)
    Job.objects.filter(id=job.id).update(lease_expires_at=now + timedelta(seconds=30))
    assert "No news" not in text(browser_client.get(f"/tasks/{job.id}/"))

    Job.objects.filter(id=job.id).update(
        updated_at=now - timedelta(seconds=20), lease_expires_at=now + timedelta(seconds=10)
    )
    page = text(browser_client.get(f"/tasks/{job.id}/"))
    assert "No news from its worker (celery@host-a) for 20 s." in page, page
    assert "another one carries on from the last saved batch soon after" in page
    # Its last speed is not its speed now.
    Job.objects.filter(id=job.id).update(rate=100.0, updated_at=now - timedelta(seconds=20))
    page = text(browser_client.get(f"/tasks/{job.id}/"))
    assert "100 rows/s" not in page and "Time left" not in page, page
    listed = text(browser_client.get("/tasks/"))
    assert "100 rows/s" not in listed and " left" not in listed, listed
    assert "no news from its worker for 20 s" in listed, listed

    Job.objects.filter(id=job.id).update(
        updated_at=now - timedelta(seconds=45), lease_expires_at=now - timedelta(seconds=15)
    )
    page = text(browser_client.get(f"/tasks/{job.id}/"))
    assert "for 45 s. Its lease has run out: the next free worker carries on" in page, page
    # A paused job has no worker to hear from.
    Job.objects.filter(id=job.id).update(state=State.PAUSED, updated_at=now - timedelta(hours=1))
    assert "No news" not in text(browser_client.get(f"/tasks/{job.id}/"))


def sentences(response) -> str:  # type: ignore[no-untyped-def]
    """The page's text as a browser shows it: no space where a tag ends before a full stop."""
    return re.sub(r" ([.,;])", r"\1", html.unescape(text(response)))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("state", "said"),
    [
        (State.SUCCEEDED, "Import teams “teams.csv” succeeded {at}."),
        (State.FAILED, "Import teams “teams.csv” failed {at}."),
        (State.STOPPED, "Import teams “teams.csv” was stopped {at}."),
    ],
)
def test_the_stop_page_of_a_finished_job_says_when_it_ended_in_english(
    browser_client: Client, user: User, state: str, said: str
) -> None:
    ended = timezone.now()
    job = make(user, kind="import_teams", label="teams.csv", state=state, finished_at=ended)
    page = sentences(browser_client.get(f"/stop_task/{job.id}"))
    assert said.format(at=f"at {timezone.localtime(ended):%H:%M:%S}") in page, page
    assert " is succeeded" not in page and " since " not in page
    # Another day: the date too.
    earlier = timezone.localtime(ended - timedelta(days=400))
    Job.objects.filter(id=job.id).update(finished_at=earlier)
    page = sentences(browser_client.get(f"/stop_task/{job.id}"))
    assert said.format(at=f"on {earlier.day} {earlier:%b %Y} at {earlier:%H:%M}") in page, page


@pytest.mark.django_db
def test_a_job_being_stopped_cannot_be_stopped_again_said_in_english(
    browser_client: Client, user: User
) -> None:
    job = make(user, label="teams.csv", state=State.STOPPING)
    page = sentences(browser_client.get(f"/stop_task/{job.id}"))
    assert "This job cannot be stopped now" in page and "stopd" not in page, page
    assert "Count “teams.csv” is stopping." in page


def test_every_state_reads_as_english_in_a_refusal() -> None:
    from jobs.services import impossible_message

    said = {
        (state.value, action): impossible_message(state=state, action=action)
        for state in State
        for action in ("pause", "resume", "stop")
    }
    assert said[("queued", "resume")] == "This job is queued; it cannot be resumed now."
    assert said[("paused", "pause")] == "This job is paused; it cannot be paused now."
    assert said[("stopping", "stop")] == (
        "This job is being stopped (what it wrote is being removed); it cannot be stopped now."
    )
    assert (
        said[("succeeded", "pause")] == "This job has already succeeded; there is nothing to pause."
    )
    assert said[("stopped", "resume")] == (
        "This job has already been stopped; there is nothing to resume."
    )
    wrong = [m for m in said.values() if re.search(r"is (succeeded|failed|stopped)|stopd", m)]
    assert wrong == []


@pytest.mark.django_db
def test_a_result_that_is_not_there_is_said_in_english(browser_client: Client, user: User) -> None:
    failed = make(user, state=State.FAILED, finished_at=timezone.now())
    answer = browser_client.get(f"/tasks/{failed.id}/result")
    assert (answer.status_code, answer.content.decode()) == (
        409, "There is no result: this job has failed."
    )  # fmt: skip
    running = make(user)
    answer = browser_client.get(f"/tasks/{running.id}/result")
    assert answer.content.decode() == "The result is not ready yet: this job is running."


@pytest.mark.django_db
def test_a_resume_that_found_the_job_finished_says_so_in_english(
    browser_client: Client, user: User
) -> None:
    from jobs.views import DONE

    assert DONE[State.SUCCEEDED].format(time="14:02:11", label="teams.csv") == (
        "By 14:02:11 “teams.csv” had succeeded."
    )
    assert set(DONE) == set(State)  # every state a job can be in after a button has its words


@pytest.mark.django_db
def test_a_stopped_job_in_parts_counts_what_its_parts_wrote(
    browser_client: Client, user: User
) -> None:
    """Also a job stopped before its undo wrote the parts' sum on it (``parts.add_up``)."""
    job = make(user, kind="import_teams", label="teams.csv", state=State.STOPPED,
               total=25_000, checkpoint={"parts": 2}, finished_at=timezone.now())  # fmt: skip
    for i, done in enumerate((7_000, 8_000)):
        make(user, kind="import_teams", parent=job, part=i, state=State.STOPPED,
             processed=done, total=12_500)  # fmt: skip
    said = "Stopped: 15,000 rows were written and removed; nothing was kept."
    for url in (f"/tasks/{job.id}/", "/tasks/"):
        page = text(browser_client.get(url))
        assert said in page, page
        assert "before anything was written" not in page
    out = io.StringIO()
    call_command("jobs", stdout=out)
    assert "15,000 removed" in out.getvalue()


def _handed_back(job: Job) -> Job:
    """Leave ``job`` as a worker's warm shutdown does (``Runner._commit``): running, token
    cleared, lease ended at that moment."""
    now = timezone.now()
    Job.objects.filter(id=job.id).update(lease_token=None, lease_expires_at=now, updated_at=now)
    return Job.objects.get(id=job.id)


@pytest.mark.django_db
def test_a_job_no_worker_runs_shows_no_speed_nor_time_left_anywhere(
    browser_client: Client, user: User, api
) -> None:  # type: ignore[no-untyped-def]
    """Collect was stopped while the job ran: its worker handed it back and none took it."""
    job = make(user, kind="import_teams", label="teams.csv", worker="celery@host-a",
               processed=20_000, total=50_000, rate=10_000.0, run_seconds=2.0)  # fmt: skip
    job = _handed_back(job)
    at = timezone.localtime(job.updated_at).strftime("%H:%M:%S")

    page = text(browser_client.get(f"/tasks/{job.id}/"))
    assert (
        f"Its worker (celery@host-a) was shut down at {at} and handed the job back: the next "
        "free worker carries on from the last saved batch." in page
    ), page
    assert "Speed \u2013 " in page and "rows/s" not in page and "Time left" not in page, page
    listed = text(browser_client.get("/tasks/"))
    assert "waiting for a worker (its last one was shut down)" in listed, listed
    assert "rows/s" not in listed and " left" not in listed, listed
    assert api.get(f"/api/tasks/{job.id}/").json()["eta_seconds"] is None

    out = io.StringIO()
    call_command("jobs", stdout=out)
    row = next(line for line in out.getvalue().splitlines() if str(job.id) in line)
    assert row.split() == [str(job.id), "teams.csv", "running", "20,000/50,000", "(40.0%)",
                           "no", "worker", "now"]  # fmt: skip

    # Once a worker has claimed it again (a token, a lease ahead), it has a speed again.
    Job.objects.filter(id=job.id).update(
        lease_token=uuid.uuid4(), lease_expires_at=timezone.now() + timedelta(seconds=30)
    )
    assert "10,000 rows/s about 3 s left" in text(browser_client.get("/tasks/"))


@pytest.mark.django_db
def test_a_silent_worker_gives_no_speed_in_the_cli_and_no_time_left_to_check(
    browser_client: Client, user: User, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.COLLECT_JOB_LEASE_SECONDS = 30
    now = timezone.now()
    job = make(user, label="teams.csv", worker="celery@host-a", processed=20_000, total=50_000,
               rate=10_000.0, lease_token=uuid.uuid4())  # fmt: skip
    Job.objects.filter(id=job.id).update(
        updated_at=now - timedelta(seconds=20), lease_expires_at=now + timedelta(seconds=10)
    )
    out = io.StringIO()
    call_command("jobs", "--limit", "1", stdout=out)
    row = next(line for line in out.getvalue().splitlines() if str(job.id) in line)
    assert row.endswith("20,000/50,000 (40.0%)  no news for 20 s"), row
    assert "/s " not in row

    # Still checking its file when the worker fell silent: no speed, no time left to check.
    checking = {"done": 4_000_000, "total": 10_000_000, "unit": "bytes", "rate": 2_000_000}
    Job.objects.filter(id=job.id).update(
        total=None, processed=0, checking=checking, updated_at=now - timedelta(seconds=20)
    )
    page = text(browser_client.get(f"/tasks/{job.id}/"))
    assert "No news from its worker (celery@host-a) for 20 s." in page, page
    assert "Checking at \u2013 " in page and "Time left to check" not in page, page


@pytest.mark.django_db
def test_a_job_in_parts_whose_parts_have_no_worker_shows_no_time_left(
    browser_client: Client, user: User
) -> None:  # type: ignore[no-untyped-def]
    job = make(user, label="teams.csv", total=50_000, checkpoint={"parts": 2})
    parts = [
        make(user, parent=job, part=i, label=f"teams.csv (part {i + 1} of 2)", worker="w1",
             processed=10_000, total=25_000, rate=5_000.0)
        for i in range(2)
    ]  # fmt: skip
    for part in parts:
        _handed_back(part)
    page = html.unescape(text(browser_client.get(f"/tasks/{job.id}/")))
    assert (
        "No worker runs any of its parts now: each part waits for the next free worker, which "
        "carries on from that part's last saved batch." in page
    ), page
    assert "Time left" not in page and "rows/s" not in page, page
    assert "running · 10,000 of 25,000 rows waiting for a worker (its last one was shut down)" in (
        page
    )
    assert "no worker runs its parts now" in text(browser_client.get("/tasks/"))
    # One part back with a worker: the job has that part's speed again.
    Job.objects.filter(id=parts[0].id).update(
        lease_token=uuid.uuid4(), lease_expires_at=timezone.now() + timedelta(seconds=30)
    )
    page = text(browser_client.get(f"/tasks/{job.id}/"))
    assert "Speed 5,000 rows/s Time left about 6 s" in page, page
