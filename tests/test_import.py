"""Importing teams with a real worker: exact rows, stop, pause, resume, a killed worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from django.core.management import call_command

from jobs import services
from jobs.models import Job, State
from teams.models import Team
from tests.test_import_helpers import expected_rows, fake_csv, rows_of, start
from tests.workers import ROOT, wait_for, wait_processed, wait_state
from tests.workers import test_database_url as database_url

# The outcome depends on the database and the broker: CI runs it on each.
pytestmark = pytest.mark.servers


def test_it_imports_a_tricky_file_byte_exact(worker, user, tmp_path):  # type: ignore[no-untyped-def]
    path = fake_csv(tmp_path, 50_000, seed=7)
    raw = path.read_bytes()  # the tricky parts are really there
    assert b'""' in raw and "東京".encode() in raw and b'"\r\n' in raw
    job = wait_state(start(user, path, batch_size=10_000), State.SUCCEEDED, timeout=120)
    assert job.result == {
        "imported": 50_000,
        "created": 50_000,
        "updated": 0,
        "unchanged": 0,
        "skipped": 0,
    }
    assert (job.processed, job.total) == (50_000, 50_000)
    assert rows_of(job) == expected_rows(path)


def test_bom_and_lf_line_ends_read_the_same(worker, user, tmp_path):  # type: ignore[no-untyped-def]
    path = fake_csv(tmp_path, 500, seed=3, newline="\n")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    job = wait_state(start(user, path), State.SUCCEEDED)
    assert rows_of(job) == expected_rows(path)


def test_a_stopped_import_leaves_nothing(worker, user, tmp_path):  # type: ignore[no-untyped-def]
    keep = wait_state(start(user, fake_csv(tmp_path, 300, seed=1)), State.SUCCEEDED)
    job = start(user, fake_csv(tmp_path, 60_000, seed=2), batch_size=100)
    wait_processed(job, 2_000)
    services.job_stop(job=job, by=user)
    job = wait_state(job, State.STOPPED, timeout=30)
    assert Team.objects.filter(job=job).count() == 0
    for _ in range(6):  # and none appear afterwards
        time.sleep(0.5)
        assert Team.objects.filter(job=job).count() == 0
    assert Team.objects.filter(job=keep).count() == 300  # other jobs' rows untouched


def test_a_paused_import_writes_nothing_and_resumes_exactly(worker, user, tmp_path):  # type: ignore[no-untyped-def]
    path = fake_csv(tmp_path, 20_000, seed=4)
    job = start(user, path, batch_size=100)
    wait_processed(job, 1_000)
    services.job_pause(job=job, by=user)
    job = wait_state(job, State.PAUSED, timeout=15)
    paused_at = Team.objects.filter(job=job).count()
    assert paused_at == job.processed
    time.sleep(2)
    assert Team.objects.filter(job=job).count() == paused_at
    services.job_resume(job=job, by=user)
    job = wait_state(job, State.SUCCEEDED, timeout=120)
    assert rows_of(job) == expected_rows(path)  # no row twice, none missing, in order
    assert job.result == {
        "imported": 20_000,
        "created": 20_000,
        "updated": 0,
        "unchanged": 0,
        "skipped": 0,
    }


def test_a_killed_worker_is_replaced_and_the_count_is_exact(make_worker, user, tmp_path):  # type: ignore[no-untyped-def]
    path = fake_csv(tmp_path, 30_000, seed=5)
    first = make_worker()
    job = start(user, path, batch_size=100)
    wait_processed(job, 2_000)
    first.kill()
    written = Team.objects.filter(job=job).count()
    job.refresh_from_db()
    assert written == job.processed  # what is committed is exactly what the checkpoint says
    make_worker()
    job = wait_state(job, State.SUCCEEDED, timeout=120)
    assert job.attempts >= 2
    assert rows_of(job) == expected_rows(path)


def test_two_imports_and_a_stop_of_one(worker, user, tmp_path):  # type: ignore[no-untyped-def]
    keep_path = fake_csv(tmp_path, 15_000, seed=8)
    keep = start(user, keep_path, batch_size=200)
    gone = start(user, fake_csv(tmp_path, 40_000, seed=9), batch_size=200)
    wait_processed(gone, 1_000)
    services.job_stop(job=gone, by=user)
    gone = wait_state(gone, State.STOPPED, timeout=30)
    keep = wait_state(keep, State.SUCCEEDED, timeout=120)
    assert Team.objects.filter(job=gone).count() == 0
    assert rows_of(keep) == expected_rows(keep_path)


def test_a_paused_import_that_is_stopped_is_rolled_back(worker, user, tmp_path):  # type: ignore[no-untyped-def]
    job = start(user, fake_csv(tmp_path, 20_000, seed=6), batch_size=100)
    wait_processed(job, 500)
    services.job_pause(job=job, by=user)
    wait_state(job, State.PAUSED, timeout=15)
    assert Team.objects.filter(job=job).exists()
    services.job_stop(job=job, by=user)
    wait_state(job, State.STOPPED, timeout=30)
    assert Team.objects.filter(job=job).count() == 0


def test_the_commands_import_and_fake(worker, user, tmp_path, capsys):  # type: ignore[no-untyped-def]
    out = tmp_path / "fake.csv"
    call_command("fake-teams", "200", str(out), "--seed", "11")
    again = tmp_path / "again.csv"
    call_command("fake-teams", "200", str(again), "--seed", "11")
    assert out.read_bytes() == again.read_bytes()  # deterministic
    call_command("import-teams", str(out), "--wait", "--user", user.username)
    job = Job.objects.get(kind="import_teams")
    assert job.state == State.SUCCEEDED and job.label == "fake.csv"
    printed = capsys.readouterr()
    assert f"Task id: {job.id}" in printed.err  # the seed's console line
    assert printed.out.splitlines()[-1] == f"The teams: http://localhost:8000/teams/?job={job.id}"
    assert printed.out.splitlines()[-2].endswith(": 200 teams created, 0 rows skipped.")
    assert rows_of(job) == expected_rows(out)


@pytest.mark.parametrize("args", [["--on-error", "skip"], []])
def test_the_cli_process_runs_end_to_end(worker, user, tmp_path, args):  # type: ignore[no-untyped-def]
    """The real ``collect`` entry point, as a user runs it."""
    path = tmp_path / "t.csv"
    path.write_bytes(b"name,description,manager,members\nA,b,c,d\n,no name,c,d\n")
    env_db = {"DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "tests.settings"}
    proc = subprocess.run(
        [sys.executable, "-m", "collect", "import-teams", str(path), "--wait", "--user", "alice",
         *args],
        cwd=ROOT, env={**os.environ, **env_db}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    job = Job.objects.get()
    assert f"Task id: {job.id}" in proc.stderr
    if args:
        assert proc.returncode == 0, proc.stderr
        assert ": 1 team created, 1 row skipped." in proc.stdout
        assert f"The skipped rows and why: http://localhost:8000/tasks/{job.id}/errors.csv" in (
            proc.stdout
        )
        assert wait_for(lambda: Team.objects.filter(job=job).count() == 1)
    else:
        assert proc.returncode == 1
        assert "Nothing was imported: 1 of 2 rows is bad." in proc.stderr
        # The command's own words for skipping, not the API's.
        assert "Fix those rows, or run the import again with --on-error skip." in proc.stderr
        assert f"with its row and column: http://localhost:8000/tasks/{job.id}/errors.csv" in (
            proc.stderr
        )
        assert "on_error" not in proc.stderr
        assert Team.objects.filter(job=job).count() == 0


def test_the_cli_prints_json_and_exits_1_when_the_job_fails(worker, user, tmp_path, capsys):  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.csv"
    path.write_bytes(b"name,description,manager,members\nA,b,c,d\n,no name,c,d\n")
    with pytest.raises(SystemExit) as exited:
        call_command("import-teams", str(path), "--wait", "--json", "--user", user.username)
    assert exited.value.code == 1
    job = Job.objects.get()
    printed = capsys.readouterr()
    described = json.loads(printed.out)
    assert described["task_id"] == str(job.id) and described["state"] == "failed"
    assert described["problem_count"] == 1
    assert described["error_report"] == f"http://localhost:8000/tasks/{job.id}/errors.csv"
    assert f"The import failed: {job.error}" in printed.err


def test_without_wait_the_cli_prints_the_task_id_alone(user, tmp_path, capsys):  # type: ignore[no-untyped-def]
    path = tmp_path / "t.csv"
    path.write_bytes(b"name,description,manager,members\nA,b,c,d\n")
    call_command("import-teams", str(path), "--user", user.username)
    job = Job.objects.get()
    assert capsys.readouterr().out == f"{job.id}\n"
