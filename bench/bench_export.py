"""Export benchmark: rows/s of a whole-table export in each format, next to the database's dump.

    python bench/bench_export.py [ROWS ...]        e.g. 200000 1000000
    BENCH_EXPORT_FORMATS=csv,xlsx python bench/bench_export.py 100000

For each size: fill ``FormResponse`` with that many fake rows, export them all
in each format (BENCH_EXPORT_FORMATS, default all four) with a fresh real
worker each (concurrency 1, e-mail to files), then dump the same rows
with the database's own tool in the same run (SQLite: Python's sqlite3 + csv;
MariaDB/MySQL: ``mariadb --batch``; PostgreSQL: ``psql \\copy … TO STDOUT``).
The worker's peak RSS should stay flat as the size grows. Uses DATABASE_URL /
CELERY_BROKER_URL like the app.
"""

from __future__ import annotations

import csv
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from typing import Any

from common import WorkerProcess, bench_user, database_label, setup_django, table, wait_state

COLUMNS = (
    "id, timestamp, user_id, name_of_respondent, gender_of_respondent, reading_books, "
    "listening_music, mobile_no, record_latitude, record_longitude"
)


def refill(n: int) -> float:
    import datetime as dt

    from django.db import connection

    from responses.fake import create_responses
    from responses.models import FormResponse

    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {FormResponse._meta.db_table}")
    t = time.monotonic()
    end = dt.datetime(2020, 5, 15, tzinfo=dt.UTC)
    create_responses(n, start=end - dt.timedelta(days=3 * 365), end=end, seed=1)
    return time.monotonic() - t


def native_dump(out: str) -> tuple[str, float]:
    """The database's own CSV-ish dump of the same rows, timed; (how, seconds)."""
    from django.db import connection

    db = connection.settings_dict
    sql = f"SELECT {COLUMNS} FROM responses_formresponse ORDER BY timestamp, id"
    t = time.monotonic()
    if connection.vendor == "sqlite":
        how = "python sqlite3 + csv"
        with sqlite3.connect(db["NAME"]) as con, open(out, "w", newline="") as fh:
            writer = csv.writer(fh)
            cur = con.execute(sql)
            while rows := cur.fetchmany(10_000):
                writer.writerows(rows)
    elif connection.vendor == "mysql":
        how = "mariadb --batch --quick"
        cmd = ["mariadb", "--batch", "--quick", "-h", db["HOST"] or "localhost"]
        cmd += ["-P", str(db["PORT"] or 3306), "-u", db["USER"] or "root", db["NAME"], "-e", sql]
        env = {**os.environ, "MYSQL_PWD": db["PASSWORD"] or ""}
        with open(out, "wb") as fh:
            subprocess.run(cmd, stdout=fh, env=env, check=True)
    else:
        how = "psql \\copy ... TO STDOUT CSV"
        cmd = ["psql", "-h", db["HOST"] or "localhost", "-p", str(db["PORT"] or 5432)]
        cmd += ["-U", db["USER"] or "postgres", "-d", db["NAME"], "-q"]
        cmd += ["-c", f"\\copy ({sql}) TO STDOUT WITH CSV HEADER"]
        env = {**os.environ, "PGPASSWORD": db["PASSWORD"] or ""}
        with open(out, "wb") as fh:
            subprocess.run(cmd, stdout=fh, env=env, check=True)
    return how, time.monotonic() - t


def export(user: Any, worker: WorkerProcess, fmt: str) -> tuple[float, int]:
    from django.core.files.storage import default_storage

    from responses.services import responses_export_start

    worker.reset_peak()
    t = time.monotonic()
    job = responses_export_start(
        email="bench@example.com", date_from=None, date_to=None, by=user, format=fmt
    )
    wait_state(job, {"succeeded", "failed", "stopped"}, interval=0.05)
    took = time.monotonic() - t
    if job.state != "succeeded":
        raise SystemExit(f"export {job.state}: {job.error}")
    size = default_storage.size(job.result_file)
    default_storage.delete(job.result_file)
    return took, size


def main(sizes: list[int]) -> None:
    setup_django()
    from django.conf import settings

    from responses.writers import WRITERS

    formats = os.environ.get("BENCH_EXPORT_FORMATS", ",".join(WRITERS)).split(",")
    user = bench_user()
    rows = []
    for n in sizes:
        fill = refill(n)
        out = os.path.join(settings.DATA_DIR, "bench-native-dump.csv")
        how, native = native_dump(out)
        native_size = os.path.getsize(out)
        os.remove(out)
        rows.append(
            [f"{n:,}", how, f"{n / native:,.0f}", f"{native:.1f}", f"{native_size / 2**20:.0f}", ""]
        )
        for fmt in formats:
            # A fresh worker per size and format, so each peak RSS is its own.
            worker = WorkerProcess(concurrency=1, env={"EMAIL_HOST": ""})
            try:
                took, size = export(user, worker, fmt)
                peak = worker.peak_rss
            finally:
                worker.stop()
            rows.append(
                [
                    f"{n:,}",
                    fmt,
                    f"{n / took:,.0f}",
                    f"{took:.1f}",
                    f"{size / 2**20:.0f}",
                    f"{peak / 2**20:.0f}",
                ]
            )
            print(f"done {n} {fmt}: {took:.1f}s", file=sys.stderr, flush=True)
        print(f"done {n}: fill {n / fill:,.0f} rows/s", file=sys.stderr, flush=True)
    shutil.rmtree(os.path.join(settings.MEDIA_ROOT, "exports"), ignore_errors=True)
    print(
        table(
            f"Export form responses ({database_label()}, "
            f"batch {settings.COLLECT_EXPORT_BATCH_ROWS})",
            ["rows", "format (or native tool)", "rows/s", "s", "file MiB", "worker peak RSS MiB"],
            rows,
        )
    )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100_000])
