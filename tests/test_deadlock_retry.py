"""A batch that loses a deadlock is run again at once, not after its lease runs out.

A second connection (this test's) holds a row the worker's next batch must
write, waits until the worker's batch transaction is blocked on it while
holding the job row, and then asks for the job row itself: a real deadlock,
which the database breaks by rolling back the worker's batch. The worker must
run the batch again within the same claim (no takeover, no lease wait) and the
job must still end exactly.
"""

from __future__ import annotations

import time

import pytest
from django.db import DatabaseError, IntegrityError, OperationalError, connection, transaction

from jobs import retry
from jobs.models import CountRow, Job, State
from tests import faults
from tests.test_engine import rows, start
from tests.workers import wait_for, wait_processed, wait_state


@pytest.mark.servers
@pytest.mark.timeout(180)
def test_a_batch_that_loses_a_deadlock_is_run_again_at_once(make_worker, user):  # type: ignore[no-untyped-def]
    if connection.vendor == "sqlite":
        pytest.skip(
            "SQLite has a single writer (BEGIN IMMEDIATE): two transactions cannot deadlock; "
            "its 'database is locked' is recognised by test_it_knows_which_errors_are_races"
        )
    w = make_worker()
    job = start(user, n=2000, batch=10, delay=0.05)
    wait_processed(job, 50, timeout=60)
    # A row of a batch still to come: the first row of that batch, so the worker's
    # transaction holds the job row and has written nothing else when it blocks.
    k = (job.processed // 10 + 10) * 10
    # Rows that make this transaction the heavier one (MariaDB rolls back the
    # lighter): they belong to a finished job no worker will touch.
    ballast = Job.objects.create(kind="count", owner=user, state=State.SUCCEEDED)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Let the worker's deadlock check (1 s by default) be the one that fires.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL deadlock_timeout = '20s'")
        CountRow.objects.bulk_create(CountRow(job=ballast, n=i) for i in range(500))
        CountRow.objects.create(job=job, n=k)
        wait_for(
            lambda: faults.another_session_waits_on_a_lock("%FOR UPDATE%"),
            timeout=60,
            what="the worker to block",
        )
        blocked = time.monotonic()
        Job.objects.select_for_update().get(id=job.id)  # the cycle: the worker must yield
        got_it = time.monotonic() - blocked
        CountRow.objects.filter(job__in=[job, ballast]).delete()
        transaction.set_rollback(True)
    print(f"the deadlock was broken {got_it:.2f} s after the worker blocked")
    job = wait_state(job, State.SUCCEEDED, timeout=120)
    assert rows(job) == list(range(2000))
    assert job.attempts == 1  # the same claim went on: no lease ran out, no takeover
    log = w.log()
    assert "batch lost a race in the database" in log, log
    assert "database error; the job will be retried" not in log, log


class _Cause(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _pg(sqlstate: str) -> OperationalError:
    exc = OperationalError("could not serialize access")
    exc.__cause__ = _Cause(sqlstate)
    return exc


def test_it_knows_which_errors_are_races() -> None:
    assert retry.lost_a_race(OperationalError(1213, "Deadlock found when trying to get lock"))
    assert retry.lost_a_race(OperationalError(1205, "Lock wait timeout exceeded"))
    assert retry.lost_a_race(_pg("40001")) and retry.lost_a_race(_pg("40P01"))
    assert retry.lost_a_race(_pg("55P03"))
    assert retry.lost_a_race(OperationalError("database is locked"))
    # A lost connection is not a race: the lease and the sweep deal with it.
    assert not retry.lost_a_race(OperationalError(2006, "MySQL server has gone away"))
    assert not retry.lost_a_race(_pg("08006"))
    assert not retry.lost_a_race(OperationalError("disk I/O error"))
    assert not retry.lost_a_race(ValueError("database is locked"))


@pytest.mark.servers
@pytest.mark.django_db(transaction=True)
def test_a_session_the_server_ended_is_a_lost_connection_not_a_failed_batch() -> None:
    # The real error each server raises when it ends a session idle in a
    # transaction (PostgreSQL: SQLSTATE 25P03, an InternalError in psycopg).
    if connection.vendor == "sqlite":
        pytest.skip("SQLite has no server to end a session")
    if connection.vendor == "postgresql":
        setting = "SET idle_in_transaction_session_timeout = 300"
    else:
        setting = "SET SESSION idle_transaction_timeout = 1"
    try:
        with pytest.raises(DatabaseError) as caught, transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(setting)
                # A row read and locked: the session is in a transaction for MariaDB too.
                cursor.execute("SELECT id FROM django_migrations ORDER BY id LIMIT 1 FOR UPDATE")
            time.sleep(2.5)
            with connection.cursor() as cursor:
                cursor.execute("SELECT 2")
        assert retry.connection_lost(caught.value), repr(caught.value)
        assert not retry.lost_a_race(caught.value)
    finally:
        connection.close()
    assert not retry.connection_lost(IntegrityError("duplicate key"))
    assert not retry.connection_lost(ValueError("connection lost"))
