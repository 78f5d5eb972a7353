"""Real Celery worker processes for the tests, and ways to wait on jobs."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from django.conf import settings
from django.db import connection

from jobs.models import Job

ROOT = Path(__file__).resolve().parent.parent
_names = itertools.count(1)


def test_database_url() -> str:
    """DATABASE_URL of the test database pytest-django created (for worker processes)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    parts = urlsplit(settings.DATABASE_URL)
    return urlunsplit(parts._replace(path="/" + quote(db["NAME"])))


def process_env(**extra: str) -> dict[str, str]:
    """The environment of a process the tests start (worker, web): the test database."""
    return {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


class Worker:
    """One ``collect worker`` process (its own process group, so a kill takes the pool too)."""

    def __init__(self, log_dir: Path, *, concurrency: int = 2, env: dict[str, str] | None = None):
        self.name = f"test{next(_names)}-{os.getpid()}@localhost"
        self.log_path = log_dir / f"{self.name.split('@')[0]}.log"
        self.concurrency = concurrency
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> Worker:
        env = process_env(**self.extra_env)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "collect",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(self.concurrency),
                "--hostname",
                self.name,
                "--queues",
                settings.CELERY_TASK_DEFAULT_QUEUE,
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b" ready." in self.log_path.read_bytes():
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"worker did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def errors(self) -> list[str]:
        """The ERROR lines of its log (a job or the sweeper hit something unexpected)."""
        return [line for line in self.log().splitlines() if " ERROR " in line]

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker and its pool: no clean-up of any kind."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._log.close()

    def terminate(self) -> None:
        """Send SIGTERM (Celery's warm shutdown) without waiting; ``stop`` waits."""
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            self._terminated = True

    def stop(self, timeout: float = 30) -> None:
        if not self.alive:
            return
        assert self.proc is not None
        if not getattr(self, "_terminated", False):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return
        self._log.close()


def wait_for(
    predicate: Callable[[], Any], *, timeout: float = 60, interval: float = 0.05, what: str = ""
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def wait_state(job: Job, states: str | Iterable[str], timeout: float = 60) -> Job:
    wanted = {states} if isinstance(states, str) else set(states)

    def check() -> Job | None:
        job.refresh_from_db()
        return job if job.state in wanted else None

    try:
        return wait_for(check, timeout=timeout, what=f"job {job.id} to be {wanted}")
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}; it is {job.state} ({job.processed}/{job.total}) {job.error}"
        ) from None


def wait_processed(job: Job, at_least: int, timeout: float = 60) -> Job:
    def check() -> Job | None:
        job.refresh_from_db()
        return job if job.processed >= at_least else None

    return wait_for(check, timeout=timeout, what=f"job {job.id} to process {at_least}")
