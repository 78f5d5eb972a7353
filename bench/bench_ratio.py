"""The table of issue 17: end-to-end import and export next to the database's own tools.

    make bench                      # SQLite, 100,000 rows, 3 repeats
    make bench DB=postgres N=200000
    make bench DB=postgres N=200000 STORAGE=both   # local folder and S3 side by side
    python bench/bench_ratio.py 200000 --repeat 5

In one process run, on one database and the same data:

- **import**: a generated teams CSV of N rows uploaded over HTTP to a real
  web server (``POST /api/imports/teams/``) and imported by a real worker;
  timed from "upload accepted" to ``succeeded`` (validation included). Next to
  it the database's own loader on the same file: SQLite ``executemany`` with a
  commit every 5,000 rows (Python's ``csv`` parsing the file), PostgreSQL
  ``COPY teams_team … FROM STDIN (FORMAT csv)``, MariaDB/MySQL
  ``LOAD DATA LOCAL INFILE``.
- **export**: N form responses exported as CSV for Excel
  (``POST /api/exports/responses/`` → ``succeeded``, the e-mail included; the
  format is ``BENCH_FORMAT``), next to the database's own dump of the same rows
  (SQLite: ``sqlite3`` + ``csv``; PostgreSQL ``COPY (SELECT …) TO STDOUT``
  via ``psql``; MariaDB ``mariadb --batch --quick``).

``--storage s3`` keeps every job file in a bucket on a real S3 server started
for the run (``moto_server`` on a free loopback port, objects in its memory):
the upload goes to the bucket during the request (its seconds are the "upload
s" column), the import reads it back from there, and the export is written as
a multipart upload. ``--storage both`` runs a web server and a worker for
each (their own queues) and alternates them within every repeat, one row each.

Each pair runs ``--repeat`` times, native then end to end, so the two meet
the same load on a shared machine; the table shows medians of rows/s and the
median of the per-repeat ratios, and the peak RSS (VmHWM) of the web and
worker processes. Uses DATABASE_URL and CELERY_BROKER_URL like the app; a
server database named in DATABASE_URL is created when it is missing.
"""

from __future__ import annotations

import argparse
import csv
import os
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("COLLECT_DATA_DIR", str(HERE.parent / "var" / "bench"))
os.environ.setdefault("COLLECT_QUEUE", f"bench-{os.getpid()}")  # its own queue on a shared broker
os.environ.setdefault("COLLECT_BROKER_POLL_SECONDS", "0.05")
os.environ.setdefault("EMAIL_HOST", "")  # mail to files: delivery is timed, no SMTP server needed
# Every repeat mails an export to the bench user: more than the daily cap of one address.
os.environ.setdefault("COLLECT_EXPORT_MAILS_PER_RECIPIENT_PER_DAY", "0")  # 0: no cap
os.environ.setdefault("COLLECT_JOBS_PER_MINUTE", "0")  # 0: no limit


def ensure_database() -> None:
    """Create the server database named in DATABASE_URL if it does not exist yet."""
    url = urlparse(os.environ.get("DATABASE_URL", ""))
    name = url.path.lstrip("/")
    if url.scheme.startswith("postgres"):
        import psycopg

        with psycopg.connect(
            host=url.hostname or "localhost", port=url.port or 5432,
            user=url.username or "postgres", password=url.password or "",
            dbname="postgres", autocommit=True,
        ) as con:  # fmt: skip
            if not con.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                con.execute(f'CREATE DATABASE "{name}"')
    elif url.scheme.startswith("mysql"):
        import MySQLdb

        con = MySQLdb.connect(
            host=url.hostname or "localhost", port=url.port or 3306,
            user=url.username or "root", password=url.password or "",
        )  # fmt: skip
        con.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
        con.close()


ensure_database()

from common import setup_django  # noqa: E402

setup_django()

from bench_export import native_dump, refill  # noqa: E402
from bench_import import Bench, fake_file, peak_rss_mib  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Permission, User  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from jobs.models import Job  # noqa: E402
from teams.models import Team  # noqa: E402

TEAM_COLUMNS = ("name", "description", "manager", "members")


def native_load(path: Path) -> tuple[str, float, int]:
    """Load the teams CSV with the database's own bulk path; (how, seconds, rows), rows removed."""
    table = Team._meta.db_table
    before = Team.objects.order_by("-id").values_list("id", flat=True).first() or 0
    t = time.monotonic()
    if connection.vendor == "sqlite":
        how = "executemany, 5k per commit"
        sql = f"INSERT INTO {table} (name, description, manager, members) VALUES (?, ?, ?, ?)"
        con = sqlite3.connect(settings.DATABASES["default"]["NAME"], timeout=20)
        with path.open(newline="", encoding="utf-8") as fh:
            rows = csv.reader(fh)
            next(rows)
            while chunk := [r for _, r in zip(range(5000), rows, strict=False)]:
                con.executemany(sql, chunk)
                con.commit()
        con.close()
    elif connection.vendor == "postgresql":
        how = "COPY FROM STDIN (csv)"
        with transaction.atomic(), connection.cursor() as cursor:
            copy_sql = f"COPY {table} (name, description, manager, members) FROM STDIN (FORMAT csv, HEADER true, FORCE_NOT_NULL (name, description, manager, members))"  # noqa: E501
            with cursor.cursor.copy(copy_sql) as copy, path.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    copy.write(chunk)
    else:
        import MySQLdb

        how = "LOAD DATA LOCAL INFILE"
        db = connection.settings_dict
        con = MySQLdb.connect(
            host=db["HOST"] or "localhost", port=int(db["PORT"] or 3306), user=db["USER"] or "root",
            password=db["PASSWORD"] or "", database=db["NAME"], local_infile=1, charset="utf8mb4",
        )  # fmt: skip
        con.cursor().execute(
            f"LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
            "LINES TERMINATED BY '\\r\\n' IGNORE 1 LINES (name, description, manager, members)",
            [str(path)],
        )
        con.commit()
        con.close()
    took = time.monotonic() - t
    loaded = Team.objects.filter(id__gt=before, job__isnull=True)
    count = loaded.count()
    loaded.delete()
    return how, took, count


def rollback(job: Job) -> float:
    """Seconds to undo the import's rows as a stop does: the kind's chunks, one commit each."""
    from jobs.kinds import RunContext, get_kind

    kind, ctx = get_kind(job.kind), RunContext(job=job, heartbeat_fn=lambda: None)
    started = time.monotonic()
    while True:
        with transaction.atomic():
            if not kind.undo_chunk(ctx):
                break
    took = time.monotonic() - started
    if Team.objects.filter(job=job).exists():
        raise SystemExit("the rollback left rows behind")
    return took


def bench_user() -> User:
    user, _ = User.objects.get_or_create(username="bench")
    user.email = "bench@example.com"
    user.save()
    user.user_permissions.add(Permission.objects.get(codename="export_responses"))
    return user


def note(line: str) -> None:
    """A progress line on stderr (the table goes to stdout)."""
    print(line, file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")  # a part not run


def run(n: int, repeat: int, fmt: str, parts: set[str], storages: list[str]) -> list[list[Any]]:
    """One table row per storage ("local", "s3"); each repeat runs the native tool once and
    then each storage's import (or export) in turn, so they meet the same machine load."""
    from common import S3Server
    from django.core.files.storage import default_storage

    workdir = Path(settings.DATA_DIR) / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    bench_user()
    path = fake_file(workdir, n, "csv")
    from responses.models import FormResponse

    if FormResponse.objects.count() != n:  # the same N gives the same rows (a fixed seed)
        refill(n)
    s3 = S3Server(workdir / "moto.log") if "s3" in storages else None
    files = {"local": default_storage, "s3": s3.storage() if s3 else None}
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    benches: dict[str, Bench] = {}
    results = {
        s: {k: [] for k in ("import", "import native", "import ratio", "upload", "rollback",
                            "export", "export native", "export ratio")}
        for s in storages
    }  # fmt: skip
    how: dict[str, str] = {"import": "not run", "export": "not run"}
    import_peaks = {}
    try:
        for storage in storages:  # each its own web server, worker and queue
            env = {
                "COLLECT_QUEUE": f"{queue}-{storage}",
                **(s3.env if s3 and storage == "s3" else {}),
            }
            benches[storage] = Bench(
                settings.COLLECT_IMPORT_BATCH_SIZE, workdir, env, f"-{storage}"
            )
        for i in range(repeat if "import" in parts else 0):
            how["import"], native_s, loaded = native_load(path)
            if loaded != n:
                raise SystemExit(f"the native loader loaded {loaded} rows, not {n}")
            for storage, bench in benches.items():
                r = results[storage]
                started = time.monotonic()
                job = bench.upload(path)
                accepted = time.monotonic()
                done = bench.wait(job, {"succeeded"})
                if Team.objects.filter(job=job).count() != n:
                    raise SystemExit("the import wrote a different number of rows")
                r["rollback"].append(rollback(job))
                r["upload"].append(accepted - started)
                r["import native"].append(n / native_s)
                r["import"].append(n / (done - accepted))
                r["import ratio"].append(r["import"][-1] / r["import native"][-1])
                note(f"import {i + 1}/{repeat} {storage}: {r['import'][-1]:,.0f} vs "
                     f"{r['import native'][-1]:,.0f} rows/s, upload {r['upload'][-1]:.2f} s, "
                     f"rollback {r['rollback'][-1]:.2f} s")  # fmt: skip
        for storage, bench in benches.items():
            import_peaks[storage] = peak_rss_mib(bench.web.pid), peak_rss_mib(bench.worker.pid)
        out = os.path.join(settings.DATA_DIR, "bench-native-dump.csv")
        for i in range(repeat if "export" in parts else 0):
            how["export"], native_s = native_dump(out)
            os.remove(out)
            for storage, bench in benches.items():
                r = results[storage]
                started = time.monotonic()
                answer = post_json(bench, {"email": "bench@example.com", "format": fmt})
                job = Job.objects.get(id=answer["task_id"])
                done = bench.wait(job, {"succeeded"})
                files[storage].delete(Job.objects.get(id=job.id).result_file)
                r["export native"].append(n / native_s)
                r["export"].append(n / (done - started))
                r["export ratio"].append(r["export"][-1] / r["export native"][-1])
                note(f"export {i + 1}/{repeat} {storage}: {r['export'][-1]:,.0f} vs "
                     f"{r['export native'][-1]:,.0f} rows/s")  # fmt: skip
    finally:
        peaks = {storage: bench.close() for storage, bench in benches.items()}
        if s3:
            s3.stop()
    rows = []
    for storage in storages:
        r = {k: median(v) for k, v in results[storage].items()}
        imp_peak = import_peaks.get(storage, (float("nan"), float("nan")))
        rows.append([
            connection.vendor, storage, f"{n:,}", repeat,
            f"{r['import']:,.0f}", f"{r['upload']:.2f}",
            f"{how['import']}: {r['import native']:,.0f}", f"{r['import ratio']:.2f}",
            f"{r['rollback']:.2f}",
            f"{r['export']:,.0f}", f"{how['export']}: {r['export native']:,.0f}",
            f"{r['export ratio']:.2f}",
            f"{imp_peak[0]:.0f} / {imp_peak[1]:.0f}",
            f"{peaks[storage][0]:.0f} / {peaks[storage][1]:.0f}",
        ])  # fmt: skip
    return rows


def post_json(bench: Bench, payload: dict[str, str]) -> dict[str, Any]:
    import json

    body = json.dumps(payload).encode()
    return bench.request(  # type: ignore[return-value]
        "POST", "/api/exports/responses/", body, len(body), "application/json"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("rows", nargs="?", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=int(os.environ.get("BENCH_REPEAT", "3")))
    parser.add_argument(
        "--only", choices=["import", "export"], help="run one of the two (default: both)"
    )
    parser.add_argument(
        "--storage", choices=["local", "s3", "both"], default="local",
        help="where job files live: the local folder, a bucket on a moto_server started "
        "for the run, or both side by side (default: local)",
    )  # fmt: skip
    args = parser.parse_args()
    fmt = os.environ.get("BENCH_FORMAT", "csv")
    from common import table

    parts = {args.only} if args.only else {"import", "export"}
    storages = ["local", "s3"] if args.storage == "both" else [args.storage]
    rows = run(args.rows, args.repeat, fmt, parts, storages)
    broker = settings.CELERY_BROKER_URL.split(":", 1)[0]
    print(
        table(
            f"Import and export vs the database's own tools ({connection.vendor}, broker {broker}, "
            f"export format {fmt}, import batch {settings.COLLECT_IMPORT_BATCH_SIZE}, "
            f"export batch {settings.COLLECT_EXPORT_BATCH_ROWS}; medians)",
            [
                "database",
                "storage",
                "rows",
                "repeats",
                "import rows/s",
                "upload s",
                "its loader rows/s",
                "ratio",
                "rollback s",
                "export rows/s",
                "its dump rows/s",
                "ratio",
                "MiB web/worker after import",
                "MiB web/worker peak",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
