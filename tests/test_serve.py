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
        # Celery's banner ("[config]", "[queues]") would push the box off the screen.
        assert "[config]" not in text and "[queues]" not in text, text
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

        def count_job(n: int) -> str:
            """Start a ``count`` job of ``n`` rows from the command line; its task id."""
            created = subprocess.run(
                [sys.executable, "-m", "collect", "shell", "-c",
                 "from django.contrib.auth.models import User; "
                 "from jobs.services import job_create; "
                 f"print(job_create(kind='count', owner=User.objects.get(username='{username}'),"
                 f"params={{'n': {n}, 'batch': 10}}).id)"],
                cwd=ROOT, env=env, capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            return str(re.findall(r"[0-9a-f-]{36}", created)[-1])

        task_id = count_job(100)

        def done() -> dict | None:
            status, body = get(f"http://127.0.0.1:{port}/api/tasks/{task_id}/", token)
            assert status == 200, body
            job = json.loads(body)
            return job if job["state"] == "succeeded" else None

        job = wait_for(done, timeout=60, interval=0.2)
        assert (job["processed"], job["total"]) == (100, 100)
        # The CLI beside it links to the port it runs on, not to the default 8000.
        listed = subprocess.run(
            [sys.executable, "-m", "collect", "jobs", "--json"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert json.loads(listed)[0]["url"] == f"http://127.0.0.1:{port}/tasks/{task_id}/"
        assert password  # printed once, for the person who started it

        # A worker killed (out of memory, a stray kill) is started again; the site stays up.
        def workers() -> list[int]:
            found = subprocess.run(
                ["pgrep", "-P", str(proc.pid), "-f", "celery -A collect"],
                capture_output=True, text=True, check=False,
            ).stdout.split()  # fmt: skip
            return [int(pid) for pid in found]

        (first,) = workers()
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: "starting a new one" in log.read_text(), timeout=30, what="a restart")
        wait_for(lambda: (w := workers()) and w != [first], timeout=30, what="a new worker")
        assert proc.poll() is None, log.read_text()
        assert get(f"http://127.0.0.1:{port}/accounts/login/")[0] == 200
        task_id = count_job(50)
        job = wait_for(done, timeout=90, interval=0.2)
        assert (job["processed"], job["total"]) == (50, 50)

        # Idle pool processes killed: with the embedded broker the one whose turn it is
        # holds the lock of the pool's shared task pipe, and killed it would stall every
        # later job (jobs.signals). Both are killed, so the holder is among them.
        (second,) = workers()
        children = subprocess.run(
            ["pgrep", "-P", str(second)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert len(children) == 2, children  # --concurrency 2
        for child in children:
            os.kill(int(child), signal.SIGKILL)
        wait_for(
            lambda: "while it waited for a task" in log.read_text(), timeout=30, what="the why"
        )
        wait_for(lambda: (w := workers()) and w != [second], timeout=60, what="a fresh worker")
        task_id = count_job(30)
        job = wait_for(done, timeout=90, interval=0.2)
        assert (job["processed"], job["total"]) == (30, 30)
    finally:
        last_workers = workers()  # in a session of their own
        # What Ctrl-C in a terminal sends: SIGINT to the whole foreground group.
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            for pid in last_workers:
                os.killpg(pid, signal.SIGKILL)
            raise
    assert proc.returncode == 0, log.read_text()
    assert "Collect stopped." in log.read_text()
    assert not (data / "site-url").exists()
    # Nothing of it is left running: neither its group nor the worker's.
    time.sleep(0.5)
    for group in [proc.pid, *last_workers]:
        leftover = subprocess.run(
            ["pgrep", "-g", str(group)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert leftover == [], group


@pytest.mark.timeout(240)
def test_the_password_is_printed_once_even_when_serve_then_fails(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
        and not k.startswith("COLLECT_")
    }
    env.update(COLLECT_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1")
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "collect", "serve", "--bind", f"127.0.0.1:{free_port()}"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for(lambda: "Collect is running" in log.read_text(), timeout=120, interval=0.2)
        # The web server ends on its own (SIGTERM to gunicorn, which takes its workers
        # with it; a SIGKILL would leave them behind): serve stops the worker and fails.
        web = subprocess.run(
            ["pgrep", "-P", str(proc.pid), "-f", "gunicorn"],  # `collect web` runs it in its place
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        assert len(web) == 1
        os.kill(int(web[0]), signal.SIGTERM)
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    time.sleep(0.5)
    leftover = subprocess.run(
        ["pgrep", "-g", str(proc.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert leftover == []
    text = log.read_text()
    assert proc.returncode == 1, text
    assert "The web server stopped on its own (exit code 0); see the lines above." in text
    password = re.search(r"password:\s+(\S+)", text)
    assert password, text
    assert text.count(password.group(1)) == 1, text


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


def test_the_data_folder_does_not_depend_on_where_a_command_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"COLLECT_DATA_DIR"}}
    env["DJANGO_SETTINGS_MODULE"] = "collect.settings"
    shown = subprocess.run(
        [sys.executable, "-m", "collect", "shell", "-c",
         "from django.conf import settings; print(settings.DATA_DIR)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert shown == f"{ROOT / 'var'}\n"  # and nothing else: no note on automatic imports
    assert list(tmp_path.iterdir()) == []  # no ./var where the command ran


def test_the_collect_command_loads_our_apps_from_any_folder(tmp_path: Path) -> None:
    """PyPI's ``responses`` (moto needs it) must not shadow our app of that name."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["DJANGO_SETTINGS_MODULE"] = "collect.settings"
    shown = subprocess.run(
        [str(Path(sys.prefix) / "bin" / "collect"), "shell", "-c",
         "import os, responses; print(responses.__file__); print(os.environ['PYTHONPATH'])"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert shown[-2] == str(ROOT / "responses" / "__init__.py")
    assert shown[-1] == str(ROOT)  # and the processes it starts (web, worker) inherit it
