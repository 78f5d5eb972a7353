"""The data folder is 0700 and everything Collect writes in it 0600, in real processes.

A fresh data folder is used by real ``collect`` processes (migrate, the CLI's
import and export) and a real worker: the SQLite database, the upload, the
export, the mail written to a file and the broker's messages are all stat-ed.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_import_helpers import fake_csv
from tests.workers import ROOT, wait_for


def collect(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "collect", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.timeout(300)
def test_everything_in_the_data_folder_is_the_owners_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}},
        "DJANGO_SETTINGS_MODULE": "collect.settings",
        "COLLECT_DATA_DIR": str(data),
        "COLLECT_QUEUE": f"perm-{os.getpid()}",
        "DJANGO_SUPERUSER_PASSWORD": "a-long-password-for-alice",
        "PYTHONUNBUFFERED": "1",
    }
    # What a login shell usually has: the processes it starts must not rely on it.
    previous = os.umask(0o022)
    try:
        collect(env, "migrate", "-v0")
    finally:
        os.umask(previous)
    collect(env, "createsuperuser", "--noinput", "--username", "alice", "--email", "a@example.com")
    teams = fake_csv(tmp_path, 50)
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "collect", "worker", "--concurrency", "1", "-n", "perm@localhost"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(lambda: b" ready." in (tmp_path / "worker.log").read_bytes(), timeout=90)
        out = collect(env, "import-teams", str(teams), "--wait", "--user", "alice")
        assert "50 teams created" in out, out
        out = collect(env, "export-responses", "--email", "a@example.com", "--wait")
        assert out.startswith("Exported "), out
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        log.close()

    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    seen: dict[str, int] = {}
    for path in [data, *data.rglob("*")]:
        seen[str(path.relative_to(data))] = stat.S_IMODE(path.stat().st_mode)
    wrong = {
        name: oct(mode)
        for name, mode in seen.items()
        if mode != (0o700 if (data / name).is_dir() else 0o600)
    }
    assert wrong == {}
    names = "\n".join(seen)
    # What was written is really there to be checked.
    for expected in ("collect.sqlite3", "files/imports/", "files/exports/", "mail/", "broker/"):
        assert expected in names, names
    print(f"{len(seen)} paths in the data folder, all 0700 (folders) or 0600 (files)")
