"""``collect jobs``, ``collect pause|resume|stop`` and the progress bar of ``--wait``."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from rich.console import Console

from jobs.cli import follow
from jobs.management.commands.jobs import COLUMNS, fit
from jobs.models import Job, State
from jobs.services import job_create

pytestmark = pytest.mark.django_db
IMPORT_ID = uuid.UUID("11111111-1111-4111-8111-111111111111")
EXPORT_ID = uuid.UUID("22222222-2222-4222-8222-222222222222")


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def two_jobs(user, settings):  # type: ignore[no-untyped-def]
    settings.TIME_ZONE = "UTC"
    Job.objects.create(
        id=IMPORT_ID, kind="import_teams", owner=user, label="teams.csv", state=State.RUNNING,
        processed=12_345, total=50_000, rate=2_000.4,
    )  # fmt: skip
    Job.objects.create(
        id=EXPORT_ID, kind="export_responses", owner=user, label="Responses 2030",
        state=State.SUCCEEDED, processed=7, total=7, rate=3.5, run_seconds=125.0,
        finished_at=datetime(2030, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    Job.objects.filter(id=IMPORT_ID).update(created_at=datetime(2030, 1, 2, 9, 30, tzinfo=UTC))
    Job.objects.filter(id=EXPORT_ID).update(created_at=datetime(2030, 1, 1, 8, 0, tzinfo=UTC))


def test_jobs_lists_jobs_newest_first_as_a_table(two_jobs) -> None:  # type: ignore[no-untyped-def]
    # Not a terminal: 100 columns, so the least needed columns are left out.
    assert run("jobs").splitlines() == [
        "task id                               what            state      progress",
        "─" * 86,
        "11111111-1111-4111-8111-111111111111  teams.csv       running    12,345/50,000 (24.7%)",
        "22222222-2222-4222-8222-222222222222  Responses 2030  succeeded  7/7 (100.0%)",
    ]  # fmt: skip


@pytest.mark.django_db
def test_jobs_says_a_stopped_job_kept_nothing_and_a_check_its_progress(user) -> None:  # type: ignore[no-untyped-def]
    from jobs.management.commands.jobs import progress

    stopped = Job(
        kind="import_teams", owner=user, state=State.STOPPED, processed=15_000, total=20_000
    )
    assert progress(stopped) == "15,000 removed"
    assert progress(Job(kind="import_teams", owner=user, state=State.FAILED)) == "nothing written"
    checking = Job(
        kind="import_teams", owner=user, state=State.PAUSED,
        checking={"done": 250, "total": 1000, "unit": "bytes"},
    )  # fmt: skip
    assert progress(checking) == "checking 25%"


def test_jobs_shows_every_column_where_they_fit() -> None:
    row = {
        "task id": str(EXPORT_ID), "kind": "export_responses", "what": "Responses 2030",
        "owner": "alice", "state": "succeeded", "progress": "7/7 (100.0%)", "rate": "4/s",
        "time": "took 2 min 5 s", "created": "2030-01-01 08:00",
    }  # fmt: skip
    assert fit([row], 160) == (list(COLUMNS), 14)
    assert fit([row], 100) == (["task id", "what", "state", "progress", "time"], 14)
    assert fit([row], 80) == (["task id", "what", "state", "progress"], 14)
    assert fit([row], 60) == (["task id", "what", "state", "progress"], 12)  # "Responses 2…"


def test_jobs_cuts_a_long_label_to_fit_100_columns(user, two_jobs) -> None:  # type: ignore[no-untyped-def]
    label = "teams of the spring 2030 campaign, every region, second and final version.csv"
    Job.objects.filter(id=IMPORT_ID).update(label=label)
    lines = run("jobs").splitlines()
    assert max(len(line) for line in lines) == 100
    assert lines[2] == (
        "11111111-1111-4111-8111-111111111111  teams of the spring 2030 ca…  running    "
        "12,345/50,000 (24.7%)"
    )
    assert json.loads(run("jobs", "--json"))[0]["task_id"] == str(IMPORT_ID)  # in full there


def test_jobs_filters_by_state_kind_and_user(two_jobs, other_user) -> None:  # type: ignore[no-untyped-def]
    assert str(EXPORT_ID) not in run("jobs", "--state", "running")
    assert str(IMPORT_ID) in run("jobs", "--state", "running")
    assert str(IMPORT_ID) not in run("jobs", "--kind", "export_responses")
    assert run("jobs", "--user", other_user.username) == "No jobs.\n"
    assert run("jobs", "--limit", "1").count("-1111-") == 1
    with pytest.raises(CommandError) as unknown:
        run("jobs", "--user", "nobody")
    # Exit status 2 (a wrong argument), not 0 with an empty list that looks like "no jobs".
    assert (str(unknown.value), unknown.value.returncode) == ("No user named 'nobody'.", 2)


def test_pause_resume_and_stop_say_the_new_state(user) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.create(kind="count", owner=user, state=State.RUNNING)
    assert run("pause", str(job.id)) == f"{job.id}: pausing\n"
    assert run("pause", str(job.id)) == f"{job.id}: pausing\n"  # asking twice is harmless
    assert run("resume", str(job.id)) == f"{job.id}: running\n"
    assert run("stop", str(job.id)) == f"{job.id}: stopping\n"
    queued = Job.objects.create(kind="count", owner=user, state=State.QUEUED)
    assert run("pause", str(queued.id)) == f"{queued.id}: paused\n"


@pytest.mark.parametrize("command", ["pause", "resume", "stop"])
def test_commands_explain_what_is_wrong(user, command) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.create(kind="count", owner=user, state=State.SUCCEEDED)
    why = rf"^This job has already succeeded; there is nothing to {command}\.$"
    with pytest.raises(CommandError, match=why):
        run(command, str(job.id))
    with pytest.raises(CommandError, match=r"^No job with task id 'nope'\.$"):
        run(command, "nope")
    with pytest.raises(CommandError, match=rf"^No job with task id '{IMPORT_ID}'\.$"):
        run(command, str(IMPORT_ID))


def test_follow_shows_a_bar_with_rate_and_time_until_the_end(worker, user) -> None:  # type: ignore[no-untyped-def]
    job = job_create(kind="count", owner=user, params={"n": 60, "batch": 10, "delay": 0.2})
    out = io.StringIO()
    done = follow(job, console=Console(file=out, width=120), interval=0.1)
    assert done.state == State.SUCCEEDED
    last = out.getvalue().strip().splitlines()[-1]
    assert last.startswith("succeeded ")
    assert "━" in last
    assert " 100% 60/60 rows " in last
    assert f" {round(done.rate)} rows/s " in last
    assert last.endswith(f"took {'1 s' if done.run_seconds < 1.5 else '2 s'}")
    assert timedelta(seconds=done.run_seconds) < timedelta(seconds=10)


def test_the_bar_shows_no_speed_nor_time_left_while_no_worker_runs_the_job(user) -> None:  # type: ignore[no-untyped-def]
    from django.utils import timezone

    from jobs.cli import _fields

    job = Job.objects.create(
        kind="import_teams", owner=user, state=State.RUNNING, worker="celery@host-a",
        processed=20_000, total=50_000, rate=10_000.0, lease_token=uuid.uuid4(),
        lease_expires_at=timezone.now() + timedelta(seconds=30),
    )  # fmt: skip
    job.refresh_from_db()
    assert _fields(job) == {"done": "20,000/50,000", "rate": "10,000 rows/s", "eta": "3 s left"}
    # Its worker was shut down and handed it back (jobs.engine): nobody runs it now.
    now = timezone.now()
    Job.objects.filter(id=job.id).update(lease_token=None, lease_expires_at=now, updated_at=now)
    job.refresh_from_db()
    assert _fields(job) == {
        "done": "20,000/50,000",
        "rate": "",
        "eta": "waiting for a worker (its last one was shut down)",
    }


def test_jobs_json_lists_what_scripts_need(two_jobs) -> None:  # type: ignore[no-untyped-def]
    listed = json.loads(run("jobs", "--json"))
    assert [job["task_id"] for job in listed] == [str(IMPORT_ID), str(EXPORT_ID)]
    assert listed[0] == {
        "task_id": str(IMPORT_ID), "kind": "import_teams", "state": "running",
        "processed": 12_345, "total": 50_000, "result": {}, "error": "", "problem_count": 0,
        "error_report": "", "url": f"http://localhost:8000/tasks/{IMPORT_ID}/",
    }  # fmt: skip
