from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from jobs.models import ACTIVE, Job
from tests.test_export_helpers import SMTPServer
from tests.workers import Worker, wait_for


@pytest.fixture(scope="session")
def worker_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("workers")


@pytest.fixture(scope="session")
def _purged_queue(django_db_setup: None) -> None:
    """Start from an empty test queue: no message from an earlier run may be taken."""
    from collect.celery import app

    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        shutil.rmtree(settings.BROKER_DIR / "queue", ignore_errors=True)
        (settings.BROKER_DIR / "queue").mkdir(parents=True, exist_ok=True)
    else:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_declare(
                queue=settings.CELERY_TASK_DEFAULT_QUEUE, durable=True, auto_delete=False
            )
            conn.default_channel.queue_purge(settings.CELERY_TASK_DEFAULT_QUEUE)


class _SharedWorker:
    """One worker process shared by the tests that need any worker (started lazily)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.worker: Worker | None = None

    def get(self) -> Worker:
        if self.worker is None or not self.worker.alive:
            self.worker = Worker(self.log_dir).start()
        return self.worker

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None


@pytest.fixture(scope="session")
def shared_worker(
    django_db_setup: None, _purged_queue: None, worker_log_dir: Path
) -> Iterator[_SharedWorker]:
    holder = _SharedWorker(worker_log_dir)
    yield holder
    holder.stop()


def _commits_without_a_worker(request: pytest.FixtureRequest) -> bool:
    """Whether the test commits its data (so a worker could see it) yet asked for no worker."""
    names = set(request.fixturenames)
    if names & {"worker", "make_worker"}:
        return False
    marker = request.node.get_closest_marker("django_db")
    transactional = marker is not None and (
        marker.kwargs.get("transaction") or (len(marker.args) > 0 and marker.args[0])
    )
    return bool(transactional or names & {"transactional_db", "live_server"})


@pytest.fixture(scope="session", autouse=True)
def _temporary_files_stay_in_the_test_folder(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """The processes the tests start keep their temporary files (e.g. the rate-limit
    counters of each data folder, ``collect/settings.py``) in pytest's own folder,
    which pytest prunes, rather than in the machine's ``/tmp``."""
    folder = tmp_path_factory.mktemp("tmp", numbered=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(folder))
        yield


@pytest.fixture(scope="session", autouse=True)
def _flush_retries_a_deadlock() -> Iterator[None]:
    """Empty the database after a transactional test again if PostgreSQL ends it as a deadlock.

    pytest-django empties the database with one ``TRUNCATE`` of every table,
    in an order that changes from run to run (Django builds the list from a
    set). A worker process finishing a job at that moment holds one table's
    rows and wants another's, so the server may end the ``TRUNCATE`` as a
    deadlock (SQLSTATE 40P01); the next test then finds the last one's data.
    Production never empties tables under a worker: this is the harness's.
    """
    from django.db import OperationalError
    from django.db.backends.base.operations import BaseDatabaseOperations

    original = BaseDatabaseOperations.execute_sql_flush

    def execute_sql_flush(self: BaseDatabaseOperations, sql_list: list[str]) -> None:
        for attempt in range(5):
            try:
                return original(self, sql_list)
            except OperationalError as exc:
                if "deadlock" not in str(exc).lower() or attempt == 4:
                    raise
                time.sleep(0.2)

    BaseDatabaseOperations.execute_sql_flush = execute_sql_flush  # type: ignore[method-assign]
    yield
    BaseDatabaseOperations.execute_sql_flush = original  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _no_stray_worker(request: pytest.FixtureRequest) -> None:
    """Keep the shared worker away from a test that commits jobs but wants no worker.

    Such a test (racing state changes, say) leaves jobs a worker would pick up:
    the shared worker, still running from an earlier test, ran their undo while
    the database was being emptied after the test, and PostgreSQL ended the
    ``TRUNCATE`` as a deadlock (the undo held the job row and wanted
    ``jobs_countrow``, which the ``TRUNCATE`` held). Stopping it here costs
    the next test that needs a worker a start (~2 s).
    """
    if _commits_without_a_worker(request):
        holder = request.getfixturevalue("shared_worker")
        if holder.worker is not None:
            holder.stop()


def _settle_jobs() -> None:
    """Stop whatever a test left running, so the next test starts clean."""
    from jobs.services import job_stop

    for job in Job.objects.filter(state__in=ACTIVE | {"paused"}):
        with contextlib.suppress(Exception):  # it may have finished meanwhile
            job_stop(job=job)
    with contextlib.suppress(AssertionError):
        wait_for(lambda: not Job.objects.filter(state__in=ACTIVE).exists(), timeout=30)


@pytest.fixture
def worker(shared_worker: _SharedWorker, transactional_db: None) -> Iterator[Worker]:
    """The shared real worker process; the test's data is committed so it can see it."""
    yield shared_worker.get()
    _settle_jobs()


@pytest.fixture
def make_worker(
    shared_worker: _SharedWorker, transactional_db: None, worker_log_dir: Path
) -> Iterator[type[Worker]]:
    """Start workers of the test's own (to kill them, say); all are stopped after the test.

    The shared worker is stopped first, so only these workers take the test's jobs.
    """
    shared_worker.stop()
    started: list[Worker] = []

    def factory(**kwargs):  # type: ignore[no-untyped-def]
        w = Worker(worker_log_dir, **kwargs).start()
        started.append(w)
        return w

    yield factory  # type: ignore[misc]
    if any(w.alive for w in started):
        _settle_jobs()
    for w in started:  # all at once: an idle worker takes seconds to shut down
        w.terminate()
    for w in started:
        w.stop()


def grant(user: User, *perms: str) -> User:
    """Give ``user`` model permissions ("app_label.codename"); returns it afresh (no perm cache)."""
    from django.contrib.auth.models import Permission

    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return User.objects.get(pk=user.pk)


@pytest.fixture
def user(db: None) -> User:
    """Alice, an analyst: she may export form responses (personal data) and update teams."""
    alice = User.objects.create_user("alice", "alice@example.com", "alice-password")
    return grant(alice, "responses.export_responses", "teams.change_team")


@pytest.fixture
def other_user(db: None) -> User:
    return User.objects.create_user("bob", "bob@example.com", "bob-password")


@pytest.fixture
def staff_user(db: None) -> User:
    """Carol may open the admin (``is_staff``) but holds no permission: she sees only her jobs."""
    return User.objects.create_user("carol", "carol@example.com", "carol-password", is_staff=True)


def make_token(user: User) -> str:
    """A new API token for ``user``, as ``collect drf_create_token`` makes it."""
    from collect.tokens import token_create

    return token_create(user=user)[0]


@pytest.fixture
def manager_user(db: None) -> User:
    """Dave, an operator: he may see and control everybody's jobs (``jobs.manage_all_jobs``)."""
    dave = User.objects.create_user("dave", "dave@example.com", "dave-password")
    return grant(dave, "jobs.manage_all_jobs")


@pytest.fixture
def api(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {make_token(user)}")
    return client


@pytest.fixture
def browser_client(client, user):  # type: ignore[no-untyped-def]
    client.force_login(user)
    return client


@pytest.fixture(scope="session")
def smtp() -> Iterator[SMTPServer]:
    """A real SMTP server (aiosmtpd) for the workers' mail; ``smtp.env()`` points a worker at it."""
    server = SMTPServer()
    server.controller.start()
    yield server
    server.controller.stop()


@pytest.fixture
def inbox(smtp: SMTPServer) -> Iterator[Any]:
    smtp.inbox.clear()
    yield smtp.inbox
    smtp.inbox.clear()
