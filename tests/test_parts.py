"""One job run as parts by several real workers at once (jobs/parts.py).

Every test ends with the exact result: the rows the parts wrote equal the
file, none twice, none missing; a stop or a failure leaves none of them.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from jobs import parts, services
from jobs.cli import stopped_line
from jobs.models import CountRow, Job, State
from teams.models import Team
from teams.services import ImportRequestError
from tests.conftest import grant
from tests.test_import_helpers import expected_rows, fake_csv, start
from tests.test_pages import text
from tests.workers import wait_for, wait_state

# The outcome depends on the database and the broker: CI runs it on each.
pytestmark = pytest.mark.servers

FIELDS = ("name", "description", "manager", "members")
# Slow enough that a stop, a pause or a kill lands while the parts run.
SLOW = {"COLLECT_IMPORT_THROTTLE_SECONDS": "0.05"}


def written(job: Job) -> list[tuple[str, ...]]:
    """Every team the job's parts (and the job itself) wrote, sorted."""
    ids = [job.id, *Job.objects.filter(parent=job).values_list("id", flat=True)]
    return sorted(Team.objects.filter(job_id__in=ids).values_list(*FIELDS))


def progress(job: Job) -> int:
    job.refresh_from_db()
    return parts.add_up(job).processed


def split_into(job: Job, n: int) -> list[Job]:
    wait_for(lambda: Job.objects.filter(parent=job).count() == n, timeout=60, what="the parts")
    return list(Job.objects.filter(parent=job).order_by("part"))


def test_it_imports_in_four_parts_on_two_workers_exactly(make_worker, user, tmp_path, api):  # type: ignore[no-untyped-def]
    workers = [make_worker(concurrency=1, env=SLOW), make_worker(concurrency=1, env=SLOW)]
    path = fake_csv(tmp_path, 2_000, seed=41)
    job = start(user, path, batch_size=50, parallelism=4)
    job = wait_state(job, State.SUCCEEDED, timeout=120)
    pieces = split_into(job, 4)
    assert [p.state for p in pieces] == [State.SUCCEEDED] * 4
    assert sum(p.total or 0 for p in pieces) == job.total == 2_000
    assert min(p.total or 0 for p in pieces) >= 400  # about equal parts
    # Both workers ran parts.
    ran = {p.worker.rsplit(":", 1)[0] for p in pieces}
    assert ran == {w.name for w in workers}
    assert written(job) == sorted(expected_rows(path))  # none twice, none missing
    assert job.result == {"imported": 2_000, "created": 2_000, "updated": 0, "unchanged": 0,
                          "skipped": 0}  # fmt: skip
    assert job.processed == 2_000
    # The API shows the job with its parts; the list shows the job alone.
    data = api.get(f"/api/tasks/{job.id}/").json()
    assert [(p["part"], p["state"], p["processed"]) for p in data["parts"]] == [
        (i + 1, "succeeded", p.total) for i, p in enumerate(pieces)
    ]
    listed = [j["task_id"] for j in api.get("/api/tasks/").json()["results"]]
    assert listed == [str(job.id)]
    assert api.get(f"/api/tasks/{pieces[0].id}/").json()["part_of"] == str(job.id)
    assert not any(w.errors() for w in workers), [w.errors() for w in workers]


def test_a_stop_half_way_removes_every_part(make_worker, user, tmp_path):  # type: ignore[no-untyped-def]
    make_worker(concurrency=2, env=SLOW)
    make_worker(concurrency=2, env=SLOW)
    keep = start(user, fake_csv(tmp_path, 100, seed=42))
    job = start(user, fake_csv(tmp_path, 4_000, seed=43), batch_size=50, parallelism=4)
    wait_state(keep, State.SUCCEEDED, timeout=60)
    pieces = split_into(job, 4)
    wait_for(lambda: progress(job) >= 2_000, timeout=120, what="half of the rows")
    # Asked of a part, the stop is the whole job's.
    assert services.job_stop(job=pieces[1], by=user).id == job.id
    job = wait_state(job, State.STOPPED, timeout=60)
    assert written(job) == []
    for _ in range(4):  # and none appear afterwards
        time.sleep(0.5)
        assert written(job) == []
    assert {p.state for p in Job.objects.filter(parent=job)} == {State.STOPPED}
    assert Team.objects.filter(job=keep).count() == 100  # other jobs' rows untouched


def test_a_killed_worker_reruns_only_its_part(make_worker, user, tmp_path):  # type: ignore[no-untyped-def]
    workers = [make_worker(concurrency=1, env=SLOW), make_worker(concurrency=1, env=SLOW)]
    path = fake_csv(tmp_path, 3_000, seed=44)
    job = start(user, path, batch_size=50, parallelism=4)
    pieces = split_into(job, 4)

    def running_part() -> Job | None:
        found = Job.objects.filter(parent=job, state=State.RUNNING, processed__gte=200)
        return found.exclude(worker="").first()

    victim_part = wait_for(running_part, timeout=60, what="a part under way")
    victim = next(w for w in workers if w.name == victim_part.worker.rsplit(":", 1)[0])
    victim.kill()
    job = wait_state(job, State.SUCCEEDED, timeout=120)
    rows = written(job)
    assert not [r for r, n in Counter(rows).items() if n > 1]  # none twice
    assert rows == sorted(expected_rows(path))  # none missing
    pieces = list(Job.objects.filter(parent=job).order_by("part"))
    taken_over = next(p for p in pieces if p.id == victim_part.id)
    assert taken_over.attempts >= 2
    # The others ran once: only the killed worker's part ran again.
    assert [p.attempts for p in pieces if p.id != victim_part.id] == [1, 1, 1]
    assert job.result["imported"] == 3_000


def test_a_pause_pauses_every_part_and_resume_ends_exactly(make_worker, user, tmp_path):  # type: ignore[no-untyped-def]
    make_worker(concurrency=2, env=SLOW)
    make_worker(concurrency=2, env=SLOW)
    path = fake_csv(tmp_path, 3_000, seed=45)
    job = start(user, path, batch_size=50, parallelism=4)
    split_into(job, 4)
    wait_for(lambda: progress(job) >= 600, timeout=120, what="some rows")
    services.job_pause(job=job, by=user)
    job = wait_state(job, State.PAUSED, timeout=60)
    states = {p.state for p in Job.objects.filter(parent=job)}
    assert states <= {State.PAUSED, State.SUCCEEDED} and State.PAUSED in states
    paused_at = len(written(job))
    assert paused_at == progress(job) < 3_000
    time.sleep(1.5)
    assert len(written(job)) == paused_at  # nothing written while paused
    services.job_resume(job=job, by=user)
    job = wait_state(job, State.SUCCEEDED, timeout=120)
    assert written(job) == sorted(expected_rows(path))
    assert job.result["imported"] == 3_000


def test_a_failing_part_fails_the_job_and_leaves_nothing(make_worker, user):  # type: ignore[no-untyped-def]
    """The engine's capability on its own, with the built-in ``count`` kind."""
    make_worker(concurrency=2)
    job = services.job_create(
        kind="count",
        owner=user,
        params={"n": 800, "batch": 20, "delay": 0.02, "parallelism": 4, "fail_at": 700},
    )
    job = wait_state(job, State.FAILED, timeout=60)
    assert job.error == "Asked to fail at row 700."
    ids = list(Job.objects.filter(parent=job).values_list("id", flat=True))
    assert len(ids) == 4
    assert not CountRow.objects.filter(job_id__in=[job.id, *ids]).exists()
    assert not Job.objects.filter(parent=job).exclude(state__in=["stopped", "failed"]).exists()


def test_count_parts_write_each_number_once(make_worker, user):  # type: ignore[no-untyped-def]
    make_worker(concurrency=2)
    job = services.job_create(
        kind="count", owner=user, params={"n": 1001, "batch": 25, "parallelism": 3}
    )
    job = wait_state(job, State.SUCCEEDED, timeout=60)
    ids = list(Job.objects.filter(parent=job).values_list("id", flat=True))
    numbers = sorted(CountRow.objects.filter(job_id__in=ids).values_list("n", flat=True))
    assert numbers == list(range(1001))
    assert job.processed == 1001


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"parallelism": 0}, "parallelism must be a whole number from 1 to 64"),
        ({"parallelism": "lots"}, "parallelism must be a whole number from 1 to 64"),
        ({"parallelism": 2, "dry_run": True}, "An upsert or a dry run runs in one part"),
    ],
)
def test_a_wrong_parallelism_is_refused_clearly(user, tmp_path: Path, options: Any, message: str):  # type: ignore[no-untyped-def]
    with pytest.raises(ImportRequestError, match=message):
        start(user, fake_csv(tmp_path, 5), **options)


def test_a_workbook_imports_in_row_ranges_exactly(make_worker, user, tmp_path):  # type: ignore[no-untyped-def]
    from tests.test_spreadsheets_worker import make_workbook

    make_worker(concurrency=2)
    path, rows = make_workbook(tmp_path, 900, seed=46)
    job = wait_state(start(user, path, batch_size=40, parallelism=3), State.SUCCEEDED, timeout=120)
    pieces = split_into(job, 3)
    # Each part starts where the one before ends (row indexes of the sheet).
    ends = [p.checkpoint.get("end") for p in pieces]
    assert ends[-1] is None and ends[:-1] == sorted(ends[:-1])
    assert written(job) == sorted(rows)
    assert job.result["imported"] == 900


def test_bad_rows_skipped_in_parts_are_counted_once(make_worker, user, tmp_path):  # type: ignore[no-untyped-def]
    make_worker(concurrency=2)
    path = fake_csv(tmp_path, 1_000, seed=47)
    with path.open(encoding="utf-8", newline="") as fh:
        records = list(csv.reader(fh))
    for i in (5, 400, 777):  # a name longer than allowed: a bad row
        records.insert(i, ["x" * 700, "d", "m", ""])
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\r\n").writerows(records)
    job = start(user, path, batch_size=30, parallelism=4, on_error="skip")
    job = wait_state(job, State.SUCCEEDED, timeout=120)
    good = [r for r in expected_rows(path) if len(r[0]) < 700]
    assert written(job) == sorted(good)
    assert (job.result["imported"], job.result["skipped"]) == (1_000, 3)


@pytest.mark.django_db
def test_the_api_and_the_cli_take_parallelism(api, user, tmp_path):  # type: ignore[no-untyped-def]
    from django.core.management import CommandError, call_command

    grant(user, "teams.change_team")  # may upsert: the refusal below is about parallelism
    path = fake_csv(tmp_path, 5)
    with path.open("rb") as fh:
        data = {"file": fh, "parallelism": "3"}
        answer = api.post("/api/imports/teams/", data, format="multipart")
    assert answer.status_code == 202, answer.content
    assert Job.objects.get(id=answer.json()["task_id"]).param("parallelism") == 3
    with path.open("rb") as fh:
        answer = api.post(
            "/api/imports/teams/", {"file": fh, "parallelism": "2", "mode": "upsert"},
            format="multipart",
        )  # fmt: skip
    assert answer.status_code == 400, answer.content
    assert "An upsert or a dry run runs in one part" in answer.content.decode()
    with pytest.raises(CommandError, match="parallelism must be a whole number from 1 to 64"):
        call_command("import-teams", str(path), "--parallelism", "65", "--user", user.username)


def test_a_parts_page_names_its_job(make_worker, user, client):  # type: ignore[no-untyped-def]
    make_worker(concurrency=2)
    job = services.job_create(
        kind="count", owner=user, params={"n": 60, "batch": 20, "parallelism": 2}
    )
    job = wait_state(job, State.SUCCEEDED, timeout=60)
    part = split_into(job, 2)[1]
    client.force_login(user)
    page = client.get(f"/tasks/{part.id}/").content.decode()
    assert f'This is part 2 of <a href="/tasks/{job.id}/">job {job.id}</a>' in page
    whole = client.get(f"/tasks/{job.id}/").content.decode()
    assert "Run as 2 parts at once" in whole


def test_a_stopped_job_in_parts_says_how_many_rows_its_parts_wrote(  # type: ignore[no-untyped-def]
    make_worker, user, tmp_path, api, client
):
    """Not "Stopped before anything was written" beside parts that each wrote rows."""
    make_worker(concurrency=2, env=SLOW)
    job = start(user, fake_csv(tmp_path, 4_000, seed=46), batch_size=50, parallelism=2)
    split_into(job, 2)
    wait_for(lambda: progress(job) >= 1_000, timeout=120, what="a quarter of the rows")
    services.job_stop(job=job, by=user)
    job = wait_state(job, State.STOPPED, timeout=60)
    pieces = list(Job.objects.filter(parent=job).order_by("part"))
    wrote = sum(p.processed for p in pieces)
    assert wrote >= 1_000 and written(job) == []
    # Written on the job itself: every reader of the row agrees (admin, JSON, caches).
    assert job.processed == wrote
    said = f"Stopped: {wrote:,} rows were written and removed; nothing was kept."
    client.force_login(user)
    for url in (f"/tasks/{job.id}/", "/tasks/"):
        page = text(client.get(url))
        assert said in page, page
        assert "before anything was written" not in page
    page = text(client.get(f"/tasks/{job.id}/"))
    for piece in pieces:
        assert f"stopped · {piece.processed:,} of {piece.total:,} rows" in page
    assert api.get(f"/api/tasks/{job.id}/").json()["processed"] == wrote
    table, listed = io.StringIO(), io.StringIO()
    call_command("jobs", stdout=table)
    call_command("jobs", "--json", stdout=listed)
    assert f"{wrote:,} removed" in table.getvalue()
    assert json.loads(listed.getvalue())[0]["processed"] == wrote
    assert stopped_line(job) == said  # what `collect import-teams --wait` prints
