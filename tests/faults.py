"""Faults injected into the real parts: the broker, the database server, the disk.

Each helper either does the real thing or raises ``pytest.skip`` saying why it
cannot here (no server to restart on the embedded default, no root to mount).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.workers import Worker, wait_for


def uses_amqp() -> bool:
    return settings.CELERY_BROKER_URL.startswith(("amqp://", "pyamqp://"))


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


def _broker_answers() -> bool:
    from collect.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:
        return False


@contextlib.contextmanager
def rabbitmq_down() -> Iterator[None]:
    """Stop the RabbitMQ application (its connections drop) and start it again after."""
    if not uses_amqp():
        pytest.skip("the embedded broker is a folder, not a server that can restart")
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed here")
    _rabbitmqctl("stop_app")
    try:
        yield
    finally:
        _rabbitmqctl("start_app")
        _rabbitmqctl("await_startup")
        wait_for(_broker_answers, timeout=60, interval=0.5, what="RabbitMQ to answer again")


def kill_other_db_connections() -> int:
    """Kill, on the server, every connection to the test database but this process's own.

    That is what a database restart, a failover or an idle-connection reaper
    does to the workers' connections. Returns how many were killed.
    """
    vendor = connection.vendor
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return int(cursor.fetchone()[0])
        if vendor == "mysql":
            cursor.execute(
                "SELECT id FROM information_schema.processlist "
                "WHERE db = DATABASE() AND id <> CONNECTION_ID()"
            )
            killed = 0
            for (conn_id,) in cursor.fetchall():
                with contextlib.suppress(Exception):  # it may have gone meanwhile
                    cursor.execute(f"KILL {int(conn_id)}")
                    killed += 1
            return killed
    pytest.skip("SQLite runs inside the processes: there is no server-side connection to kill")


@contextlib.contextmanager
def small_tmpfs(path: Path, *, size: str = "256k", read_only: bool = False) -> Iterator[Path]:
    """Mount a tiny (or read-only) tmpfs over ``path``: a real full disk, a real EROFS."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small file system needs root and mount(8)")
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        for _ in range(50):
            if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)


def another_session_waits_on_a_lock(statement_like: str) -> bool:
    """Whether another session of this database is waiting on a lock now.

    PostgreSQL says so in ``pg_stat_activity``. On MariaDB a row-lock wait by
    primary key shows in the processlist (state "Statistics"), not always in
    INNODB_TRX: a statement matching ``statement_like`` (a LIKE pattern) that has
    been running for a while is that session waiting.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
        else:
            cursor.execute(
                "SELECT count(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() "
                "AND ID <> CONNECTION_ID() AND COMMAND = 'Query' AND TIME_MS > 200 "
                "AND INFO LIKE %s",
                [statement_like],
            )
        return bool(cursor.fetchone()[0])


def freeze(worker: Worker) -> None:
    """SIGSTOP the worker and its pool: alive, holding its connections, doing nothing."""
    assert worker.proc is not None
    os.killpg(worker.proc.pid, signal.SIGSTOP)


def thaw(worker: Worker) -> None:
    assert worker.proc is not None
    os.killpg(worker.proc.pid, signal.SIGCONT)
