"""``collect serve`` on a fresh data folder: the one-command embedded start."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.workers import ROOT, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.timeout(240)
def test_it_starts_everything_on_embedded_defaults(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
        and not k.startswith("COLLECT_")
    }
    env.update(COLLECT_DATA_DIR=str(data), PYTHONUNBUFFERED="1")
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "collect", "serve", "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        text = wait_for(
            lambda: (t := log.read_text()) and "ready." in t and "Listening at" in t and t,
            timeout=90,
            interval=0.2,
            what="web server and worker",
        )
        text = wait_for(lambda: (t := log.read_text()) and "Collect is running" in t and t)
        found = re.search(r"user name: (\S+)[\s│]+password:\s+(\S+)", text)
        assert found, text
        username, password = found.groups()
        assert (data / "collect.sqlite3").exists()
        assert (data / "secret_key").exists()

        status, body = get(f"http://127.0.0.1:{port}/accounts/login/")
        assert status == 200 and "Log in" in body
        status, _ = get(f"http://127.0.0.1:{port}/static/collect/collect.css")
        assert status == 200

        # A job runs end to end on the embedded broker.
        token = subprocess.run(
            [sys.executable, "-m", "collect", "drf_create_token", username],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        ).stdout.split()[2]  # fmt: skip
        created = subprocess.run(
            [sys.executable, "-m", "collect", "shell", "-c",
             "from django.contrib.auth.models import User; from jobs.services import job_create;"
             f"print(job_create(kind='count', owner=User.objects.get(username='{username}'),"
             "params={'n': 100, 'batch': 10}).id)"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        task_id = re.findall(r"[0-9a-f-]{36}", created)[-1]

        def done() -> dict | None:
            status, body = get(f"http://127.0.0.1:{port}/api/tasks/{task_id}/", token)
            assert status == 200, body
            job = json.loads(body)
            return job if job["state"] == "succeeded" else None

        job = wait_for(done, timeout=60, interval=0.2)
        assert (job["processed"], job["total"]) == (100, 100)
        assert password  # printed once, for the person who started it
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert proc.returncode == 0, log.read_text()
    assert "Collect stopped." in log.read_text()
    # Nothing of it is left running.
    time.sleep(0.5)
    leftover = subprocess.run(
        ["pgrep", "-g", str(proc.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert leftover == []


def test_a_busy_port_is_one_clear_line_and_a_failure(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
        and not k.startswith("COLLECT_")
    }
    env.update(COLLECT_DATA_DIR=str(tmp_path / "data"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "collect", "serve", "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"CommandError: Port {port} on 127.0.0.1 is already in use (another Collect, or another "
        f"program). Stop it, or choose another port: make run PORT={port + 1} "
        f"(or COLLECT_BIND=127.0.0.1:{port + 1})."
    )
    assert "Collect is running" not in done.stdout


@pytest.mark.django_db
def test_reset_admin_password_prints_a_new_one_that_works(capsys) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import User
    from django.core.management import call_command

    User.objects.create_superuser("admin", "", "the-old-password-long")
    call_command("reset-admin-password")
    out = capsys.readouterr().out
    password = re.search(r"password:  (\S+)", out)
    assert password, out
    admin = User.objects.get(username="admin")
    assert admin.check_password(password.group(1))
    assert not admin.check_password("the-old-password-long")
