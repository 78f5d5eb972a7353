"""Workbook and dialect imports through a real worker: exact rows, stop, pause, a killed worker.

The checkpoint of a workbook import is a row index; these are the tests of
tests/test_import.py run on an .xlsx file.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs import services
from jobs.models import Job, State
from teams.models import Team
from tests.test_faults import kill_at
from tests.test_import_helpers import rows_of, start
from tests.workers import wait_processed, wait_state

pytestmark = pytest.mark.servers  # real worker, broker and database

WORDS = [
    "alpha",
    "Zürich",
    "東京",
    "naïve",
    "café",
    "Ørjan",
    "O'Brien",
    'say "hi"',
    "comma, inside",
]


def make_workbook(tmp_path: Path, n: int, *, seed: int) -> tuple[Path, list[tuple[str, ...]]]:
    """A workbook of ``n`` teams (numbers, line breaks, unicode) and the rows it must give."""
    rng = random.Random(seed)
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Teams")
    sheet.append(["name", "description", "manager", "members"])
    expected = []
    for i in range(n):
        description = "\n".join(rng.choices(WORDS, k=rng.randint(0, 4)))
        manager = f"{rng.choice(WORDS)[:8]}{rng.randint(0, 999)}"
        members = ",".join(rng.choices(WORDS, k=rng.randint(0, 3)))
        name: str | int = i if i % 7 == 0 else f"Team {i}"  # some names are numbers
        sheet.append([name, description or None, manager, members or None])
        expected.append((str(name), description, manager, members))
    path = tmp_path / f"teams-{n}-{seed}.xlsx"
    book.save(path)
    return path, expected


def test_a_workbook_through_the_api_and_the_page(worker, api, browser_client, tmp_path):  # type: ignore[no-untyped-def]
    path, expected = make_workbook(tmp_path, 300, seed=1)
    upload = SimpleUploadedFile("teams.xlsx", path.read_bytes())
    answer = api.post("/api/imports/teams/", {"file": upload, "sheet": "Teams"}, format="multipart")
    assert answer.status_code == 202, answer.content
    job = wait_state(Job.objects.get(id=answer.json()["task_id"]), State.SUCCEEDED, timeout=60)
    assert rows_of(job) == expected
    assert job.params["sheet"] == "Teams"
    page = browser_client.get(f"/tasks/{job.id}/").content.decode()
    assert "<dt>Read as</dt><dd>Excel workbook, sheet &quot;Teams&quot;</dd>" in page


def test_a_semicolon_windows_1252_file_through_the_page(worker, browser_client):  # type: ignore[no-untyped-def]
    data = (
        "name;description;manager;members\r\n"
        "Nordwind;Segler, Boote;jan;Jan Röth\r\n ; ;;\r\n;;;\r\n"
    )
    answer = browser_client.post(
        "/import_teams/", {"file": SimpleUploadedFile("teams.csv", data.encode("cp1252"))}
    )
    job = Job.objects.get()
    assert answer.status_code == 302
    job = wait_state(job, State.SUCCEEDED, timeout=60)
    assert rows_of(job) == [("Nordwind", "Segler, Boote", "jan", "Jan Röth")]
    page = browser_client.get(f"/tasks/{job.id}/").content.decode()
    assert "<dt>Read as</dt><dd>CSV, Windows-1252, values separated by semicolons</dd>" in page
    assert "<dt>Empty rows</dt><dd>2 empty rows ignored</dd>" in page


def test_a_stopped_workbook_import_leaves_nothing(worker, user, tmp_path):  # type: ignore[no-untyped-def]
    job = start(user, make_workbook(tmp_path, 20_000, seed=2)[0], batch_size=100)
    wait_processed(job, 1_000, timeout=120)
    services.job_stop(job=job, by=user)
    job = wait_state(job, State.STOPPED, timeout=60)
    assert Team.objects.filter(job=job).count() == 0
    for _ in range(4):  # and none appear afterwards
        time.sleep(0.5)
        assert Team.objects.filter(job=job).count() == 0


def test_a_paused_workbook_import_resumes_exactly(worker, user, tmp_path):  # type: ignore[no-untyped-def]
    path, expected = make_workbook(tmp_path, 15_000, seed=3)
    job = start(user, path, batch_size=100)
    wait_processed(job, 1_000, timeout=120)
    services.job_pause(job=job, by=user)
    job = wait_state(job, State.PAUSED, timeout=30)
    paused_at = Team.objects.filter(job=job).count()
    assert paused_at == job.processed
    assert job.checkpoint["position"] == job.checkpoint["row"] > 1  # a row index
    time.sleep(1)
    assert Team.objects.filter(job=job).count() == paused_at
    services.job_resume(job=job, by=user)
    job = wait_state(job, State.SUCCEEDED, timeout=180)
    assert rows_of(job) == expected  # no row twice, none missing, in order


def test_a_killed_worker_on_a_workbook_is_replaced_exactly(make_worker, user, tmp_path):  # type: ignore[no-untyped-def]
    path, expected = make_workbook(tmp_path, 15_000, seed=4)
    first = make_worker()
    job = start(user, path, batch_size=100)
    wait_processed(job, 1_500, timeout=120)
    first.kill()
    written = Team.objects.filter(job=job).count()
    job.refresh_from_db()
    assert written == job.processed  # what is committed is exactly what the checkpoint says
    make_worker()
    job = wait_state(job, State.SUCCEEDED, timeout=180)
    assert job.attempts >= 2
    assert rows_of(job) == expected


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    ("batch", "delay"), [(0, 0.05), (3, 0.0), (7, 0.11)], ids=["b0", "b3", "b7"]
)
def test_a_workbook_import_survives_sigkill(make_worker, user, tmp_path, batch, delay):  # type: ignore[no-untyped-def]
    """The kill points of tests/test_faults.py, on a workbook (checkpoints are row indexes)."""
    rows = 300
    path, expected = make_workbook(tmp_path, rows * 12, seed=50 + batch)
    env = {"COLLECT_IMPORT_THROTTLE_SECONDS": "0.1"}
    workers = [make_worker(env=env), make_worker(env=env)]
    job = start(user, path, batch_size=rows)
    committed = kill_at(workers, job, rows, batch, delay)
    assert Team.objects.filter(job=job).count() == committed
    job = wait_state(job, State.SUCCEEDED, timeout=120)
    assert job.attempts >= 2
    assert rows_of(job) == expected  # none lost, none twice, in order
