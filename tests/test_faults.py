"""Faults during real jobs: killed workers, a restarted broker, killed database
connections, a frozen worker whose lease ran out, racing claims, a full disk.

Every test ends with the exact result: the imported rows equal the file, in
order, none twice; the exported file and the one e-mail equal the rows in the
database; a failure says what happened and leaves nothing behind.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from jobs import engine, services
from jobs.models import CountRow, Job, State
from responses.fake import create_responses
from responses.models import FormResponse
from teams.models import Team
from tests import faults
from tests.test_export_helpers import END, START, attached_csv, expected, file_of, one_mail, parse
from tests.test_export_helpers import start as export_start
from tests.test_import_helpers import expected_rows, fake_csv, rows_of
from tests.test_import_helpers import start as import_start
from tests.workers import wait_for, wait_processed, wait_state

# The outcome depends on the database and the broker: CI runs it on each.
pytestmark = pytest.mark.servers

# --- 1. SIGKILL at ten points of an import and of an export ---------------------------

# Kill once the job has committed this many batches, then after this extra delay:
# the batch cycle is rest (throttle) -> read -> write -> commit, so the delays put
# the kill in different parts of it. Batch 0 is right after the claim.
KILL_POINTS = [(0, 0.0), (1, 0.05), (3, 0.12), (5, 0.0), (7, 0.2), (9, 0.09),
               (11, 0.15), (13, 0.0), (15, 0.11), (17, 0.05)]  # fmt: skip
BATCHES = 20
THROTTLE = "0.1"


def kill_at(workers: list[Any], job: Job, batch_rows: int, batch: int, delay: float) -> int:
    """Kill the worker running ``job`` at the point; return the rows committed when it died.

    Both workers are up before the job starts, so the kill lands where it is
    meant to; the other one takes the job over once the lease runs out.
    """
    wait_for(lambda: Job.objects.get(id=job.id).worker, timeout=60, what="the claim")
    if batch:
        wait_processed(job, batch * batch_rows, timeout=60)
    time.sleep(delay)
    job.refresh_from_db()
    victim = next(w for w in workers if w.name == job.worker.rsplit(":", 1)[0])
    victim.kill()
    job.refresh_from_db()
    assert job.state == State.RUNNING, f"the job was {job.state} before the kill"
    return job.processed


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("batch", "delay"), KILL_POINTS, ids=[f"b{b}" for b, _ in KILL_POINTS])
def test_import_survives_sigkill(make_worker, user, tmp_path, batch, delay):  # type: ignore[no-untyped-def]
    rows = 300
    path = fake_csv(tmp_path, rows * BATCHES, seed=100 + batch)
    env = {"COLLECT_IMPORT_THROTTLE_SECONDS": THROTTLE}
    workers = [make_worker(env=env), make_worker(env=env)]
    job = import_start(user, path, batch_size=rows)
    committed = kill_at(workers, job, rows, batch, delay)
    # What survived the kill is exactly what the checkpoint says.
    assert Team.objects.filter(job=job).count() == committed
    job = wait_state(job, State.SUCCEEDED, timeout=120)
    assert job.attempts >= 2
    assert job.result == {
        "imported": rows * BATCHES,
        "created": rows * BATCHES,
        "updated": 0,
        "unchanged": 0,
        "skipped": 0,
    }
    assert rows_of(job) == expected_rows(path)  # none lost, none twice, in order
    print(f"import killed at {committed}/{rows * BATCHES} rows: exact after takeover")


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("batch", "delay"), KILL_POINTS, ids=[f"b{b}" for b, _ in KILL_POINTS])
def test_export_survives_sigkill(make_worker, smtp, inbox, user, batch, delay):  # type: ignore[no-untyped-def]
    rows = 250
    create_responses(rows * BATCHES, start=START, end=END, seed=200 + batch)
    env = smtp.env(COLLECT_EXPORT_BATCH_ROWS=str(rows), COLLECT_EXPORT_THROTTLE_SECONDS=THROTTLE)
    workers = [make_worker(env=env), make_worker(env=env)]
    job = export_start(user, None, None)
    committed = kill_at(workers, job, rows, batch, delay)
    job = wait_state(job, State.SUCCEEDED, timeout=120)
    assert job.attempts >= 2
    data = attached_csv(one_mail(inbox))[1]
    assert parse(data) == expected(FormResponse.objects.all())
    assert data == file_of(job)
    print(f"export killed at {committed}/{rows * BATCHES} rows: exact after takeover")


# --- 2. The broker restarts; the database kills the workers' connections ------------


@pytest.mark.broker_restart
@pytest.mark.timeout(300)
def test_a_rabbitmq_restart_mid_job_loses_nothing(make_worker, user, tmp_path, api):  # type: ignore[no-untyped-def]
    if not faults.uses_amqp():
        pytest.skip("the embedded broker is a folder, not a server that can restart")
    path = fake_csv(tmp_path, 8_000, seed=11)
    make_worker(env={"COLLECT_IMPORT_THROTTLE_SECONDS": THROTTLE})
    running = import_start(user, path, batch_size=200)
    wait_processed(running, 1_000)
    with faults.rabbitmq_down():
        time.sleep(2)
        # A job created while the broker is down is accepted, not a 500: the
        # row is the truth and a worker's sweep sends it once the broker is back.
        began = time.monotonic()
        later = fake_csv(tmp_path, 500, seed=21)
        with later.open("rb") as fh:
            answer = api.post("/api/imports/teams/", {"file": fh}, format="multipart")
        assert answer.status_code == 202, answer.content
        assert time.monotonic() - began < 15
        queued = Job.objects.get(id=answer.json()["task_id"])
        assert queued.state == State.QUEUED
    running = wait_state(running, State.SUCCEEDED, timeout=180)
    assert rows_of(running) == expected_rows(path)
    queued = wait_state(queued, State.SUCCEEDED, timeout=120)
    assert rows_of(queued) == expected_rows(later)


@pytest.mark.timeout(300)
def test_killed_database_connections_mid_import_lose_nothing(make_worker, user, tmp_path):  # type: ignore[no-untyped-def]
    if connection.vendor == "sqlite":
        pytest.skip("SQLite runs inside the processes: there is no server-side connection to kill")
    path = fake_csv(tmp_path, 10_000, seed=12)
    make_worker(env={"COLLECT_IMPORT_THROTTLE_SECONDS": THROTTLE})
    job = import_start(user, path, batch_size=250)
    killed = 0
    for at in (1_000, 4_000, 7_000):
        wait_processed(job, at, timeout=120)
        killed += faults.kill_other_db_connections()
        connection.close()  # and our own, so the test reconnects like everyone else
    assert killed >= 3
    job = wait_state(job, State.SUCCEEDED, timeout=180)
    assert rows_of(job) == expected_rows(path)
    assert job.result == {
        "imported": 10_000,
        "created": 10_000,
        "updated": 0,
        "unchanged": 0,
        "skipped": 0,
    }


@pytest.mark.timeout(300)
def test_killed_database_connections_mid_export_lose_nothing(make_worker, smtp, inbox, user):  # type: ignore[no-untyped-def]
    if connection.vendor == "sqlite":
        pytest.skip("SQLite runs inside the processes: there is no server-side connection to kill")
    create_responses(6_000, start=START, end=END, seed=13)
    make_worker(
        env=smtp.env(COLLECT_EXPORT_BATCH_ROWS="200", COLLECT_EXPORT_THROTTLE_SECONDS=THROTTLE)
    )
    job = export_start(user, None, None)
    for at in (600, 2_400, 4_200):
        wait_processed(job, at, timeout=120)
        faults.kill_other_db_connections()
        connection.close()
    job = wait_state(job, State.SUCCEEDED, timeout=180)
    data = attached_csv(one_mail(inbox))[1]
    assert parse(data) == expected(FormResponse.objects.all())
    assert data == file_of(job)


# --- 4. A frozen worker's job is taken over and never run twice at once -----------


def sqlite_write_locked() -> bool:
    """Whether a process holds SQLite's write lock now (a BEGIN IMMEDIATE waits 0 s)."""
    import sqlite3

    probe = sqlite3.connect(str(connection.settings_dict["NAME"]), timeout=0)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.rollback()
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        probe.close()


def freeze_between_batches(worker) -> None:  # type: ignore[no-untyped-def]
    """SIGSTOP ``worker`` at a moment it holds no SQLite write lock.

    On SQLite a process frozen inside its batch's transaction holds the one write
    lock, so no other process can write until it wakes: no worker could take its
    job over (the frozen-inside-a-batch case is tested on the server databases).
    """
    for _ in range(100):
        faults.freeze(worker)
        if connection.vendor != "sqlite" or not sqlite_write_locked():
            return
        faults.thaw(worker)
        time.sleep(0.01)
    raise AssertionError("the worker held the write lock at every try")


@pytest.mark.timeout(180)
def test_a_frozen_worker_loses_its_job_and_writes_nothing_after(make_worker, user):  # type: ignore[no-untyped-def]
    first = make_worker()
    job = services.job_create(
        kind="count", owner=user, params={"n": 1200, "batch": 20, "delay": 0.05}
    )
    wait_processed(job, 100)
    freeze_between_batches(first)  # alive, holding its lease, doing nothing
    try:
        frozen_at = Job.objects.get(id=job.id).worker
        second = make_worker()
        wait_for(
            lambda: Job.objects.get(id=job.id).worker not in {frozen_at},
            timeout=60,
            what="another worker to take the job over",
        )
    finally:
        faults.thaw(first)  # it wakes up mid-batch, believing the job is still its own
    job = wait_state(job, State.SUCCEEDED, timeout=120)
    # The unique (job, n) constraint would have failed the job on a second write.
    assert sorted(CountRow.objects.filter(job=job).values_list("n", flat=True)) == list(range(1200))
    assert job.worker.rsplit(":", 1)[0] == second.name
    wait_for(lambda: "another worker took it over" in first.log(), timeout=30)
    first.kill()  # it has shown what it does; no need to wait for its warm shutdown


@pytest.mark.timeout(180)
def test_a_worker_frozen_inside_a_batch_is_ended_by_the_database_and_loses_its_job(  # type: ignore[no-untyped-def]
    make_worker, user
):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite has no server to end a session left idle in a transaction")
    first = make_worker()
    job = services.job_create(
        kind="count", owner=user, params={"n": 400, "batch": 20, "write_delay": 1.0}
    )
    wait_processed(job, 40)
    # Every batch spends a second inside its transaction: the freeze lands there,
    # with the job row locked, so no other worker can take the job over until the
    # server ends the frozen session (COLLECT_DB_IDLE_IN_TRANSACTION_SECONDS).
    time.sleep(0.3)
    faults.freeze(first)
    try:
        frozen_at = Job.objects.get(id=job.id).worker
        second = make_worker()
        wait_for(
            lambda: Job.objects.get(id=job.id).worker != frozen_at,
            timeout=90,
            what="another worker to take the job over",
        )
    finally:
        faults.thaw(first)
    job = wait_state(job, State.SUCCEEDED, timeout=120)
    assert sorted(CountRow.objects.filter(job=job).values_list("n", flat=True)) == list(range(400))
    assert job.worker.rsplit(":", 1)[0] == second.name
    # Its session gone, the thawed worker finds the job taken over and says so.
    wait_for(lambda: "another worker took it over" in first.log(), timeout=30)
    first.kill()


def _race(job_id: Any, contenders: int) -> list[Job | None]:
    barrier = threading.Barrier(contenders)
    results: list[Job | None] = [None] * contenders

    def contend(i: int) -> None:
        try:
            barrier.wait()
            results[i] = engine.claim(job_id, token=uuid.uuid4(), worker=f"racer-{i}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(contenders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


@pytest.mark.parametrize("state", ["queued", "expired lease"])
def test_racing_claims_have_exactly_one_winner(make_worker, user, state):  # type: ignore[no-untyped-def]
    # make_worker stopped the shared worker: only the eight threads contend.
    for trial in range(5):
        job = Job.objects.create(
            kind="count", owner=user, params={"n": 10}, enqueued_at=timezone.now()
        )
        if state == "expired lease":
            Job.objects.filter(id=job.id).update(
                state=State.RUNNING,
                lease_token=uuid.uuid4(),
                lease_expires_at=timezone.now() - timezone.timedelta(seconds=1),
                attempts=1,
            )
        winners = [r for r in _race(job.id, 8) if r is not None]
        assert len(winners) == 1, f"trial {trial}: {len(winners)} winners"
        job.refresh_from_db()
        assert job.lease_token == winners[0].lease_token
        assert job.worker == winners[0].worker


@pytest.mark.timeout(120)
def test_duplicate_deliveries_run_the_job_once(make_worker, user):  # type: ignore[no-untyped-def]
    make_worker(concurrency=4)
    job = services.job_create(
        kind="count", owner=user, params={"n": 400, "batch": 20, "delay": 0.02}
    )
    for _ in range(5):  # what a redelivery, a sweep and an impatient operator can add up to
        services.enqueue_now(job.id)
    job = wait_state(job, State.SUCCEEDED, timeout=60)
    assert job.attempts == 1
    assert sorted(CountRow.objects.filter(job=job).values_list("n", flat=True)) == list(range(400))


# --- 5. The disk is full, or read-only, while an export writes --------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("read_only", "reason"),
    [(False, "the disk is full"), (True, "the storage is read-only")],
    ids=["full", "read-only"],
)
def test_a_storage_error_fails_the_export_clearly_and_sends_nothing(
    make_worker, smtp, inbox, user, read_only, reason
):  # type: ignore[no-untyped-def]
    create_responses(6_000, start=START, end=END, seed=14)  # about 600 kB of CSV
    exports = Path(settings.MEDIA_ROOT) / "exports"
    with faults.small_tmpfs(exports, size="256k", read_only=read_only):
        worker = make_worker(env=smtp.env(COLLECT_EXPORT_BATCH_ROWS="500"))
        job = wait_state(export_start(user, None, None), State.FAILED, timeout=60)
        assert reason in job.error, job.error
        assert "Nothing was sent" in job.error
        assert list(exports.rglob("*.csv")) == []  # no broken file left behind
        time.sleep(1)
        assert inbox.messages == []
        assert worker.alive
        # The worker goes on with other work.
        other = services.job_create(kind="count", owner=user, params={"n": 50, "batch": 10})
        wait_state(other, State.SUCCEEDED, timeout=60)


@pytest.mark.django_db
def test_the_server_ends_a_session_left_idle_in_a_transaction():  # type: ignore[no-untyped-def]
    """A frozen worker's transaction, and so its lock on a job row, cannot outlive
    COLLECT_DB_IDLE_IN_TRANSACTION_SECONDS (20 in the tests): the server ends it."""
    seconds = settings.IDLE_IN_TRANSACTION_SECONDS
    assert seconds == 20
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW idle_in_transaction_session_timeout")
            assert cursor.fetchone()[0] == f"{seconds}s"
        elif connection.vendor == "mysql" and connection.mysql_is_mariadb:
            cursor.execute("SELECT @@SESSION.idle_transaction_timeout")
            assert cursor.fetchone()[0] == seconds
        else:
            pytest.skip(f"{connection.vendor}: no such setting (one writer, or lock wait timeouts)")
