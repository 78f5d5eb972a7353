"""Rollback of a large import: seconds to undo N teams as a stop does (issue 17: 1M in < 5 s).

    python bench/bench_rollback.py                  # 1,000,000 rows, 3 repeats
    python bench/bench_rollback.py 200000 --repeat 5
    DATABASE_URL=mysql://root@127.0.0.1:3306/collect_bench python bench/bench_rollback.py

Each repeat puts N teams in the table as one import job's rows, through the
database's bulk path (``teams.loader.insert_rows``: ``COPY`` on PostgreSQL,
``executemany`` elsewhere; not timed), next to N/4 rows of another import
that must survive, then times the import kind's undo exactly as a stopping
worker runs it: ``kind.undo_chunk`` in its own transaction until it reports
nothing left (chunks grow towards about one second each). Prints seconds,
rows/s and chunks per repeat, and their medians. Uses DATABASE_URL like the
app; a server database named there is created when missing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("COLLECT_QUEUE", f"bench-{os.getpid()}")

from bench_ratio import ensure_database  # noqa: E402  (sets Django up as well)
from common import bench_user, database_label, table  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from jobs.kinds import RunContext, get_kind  # noqa: E402
from jobs.models import Job, State  # noqa: E402
from teams.loader import insert_rows  # noqa: E402
from teams.models import Team  # noqa: E402

COLUMNS = ("name", "description", "manager", "members", "job_id")


def fill(job: Job, rows: int) -> None:
    """Insert ``rows`` teams written by ``job`` in chunks of 50,000 (one transaction each)."""
    job_id = Team._meta.get_field("job").get_db_prep_value(job.id, connection)
    for start in range(0, rows, 50_000):
        chunk = (
            (f"Team {i:08d}", "a team of the benchmark", f"Manager {i % 997}", "ann; bob", job_id)
            for i in range(start, min(rows, start + 50_000))
        )
        with transaction.atomic():
            insert_rows(Team._meta.db_table, COLUMNS, chunk)


def undo(job: Job) -> tuple[float, int]:
    """Seconds and chunks to undo ``job``'s rows as a stopping worker does."""
    kind, ctx = get_kind(job.kind), RunContext(job=job, heartbeat_fn=lambda: None)
    chunks = 0
    started = time.monotonic()
    while True:
        with transaction.atomic():
            if not kind.undo_chunk(ctx):
                break
        chunks += 1
    took = time.monotonic() - started
    if Team.objects.filter(job=job).exists():
        raise SystemExit("the rollback left rows behind")
    return took, chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ensure_database()
    Team.objects.all().delete()
    owner = bench_user()
    keep = Job.objects.create(kind="import_teams", owner=owner, state=State.SUCCEEDED, params={})
    fill(keep, args.rows // 4)
    rows, seconds = [], []
    for repeat in range(args.repeat):
        job = Job.objects.create(kind="import_teams", owner=owner, state=State.STOPPING, params={})
        fill(job, args.rows)
        took, chunks = undo(job)
        seconds.append(took)
        rows.append([repeat + 1, f"{took:.2f}", f"{args.rows / took:,.0f}", chunks])
        print(f"repeat {repeat + 1}: {took:.2f} s, {chunks} chunks", file=sys.stderr, flush=True)
        job.delete()
    if Team.objects.filter(job=keep).count() != args.rows // 4:
        raise SystemExit("the rollback removed rows of another import")
    median = statistics.median(seconds)
    rows.append(["median", f"{median:.2f}", f"{args.rows / median:,.0f}", ""])
    print(
        table(
            f"Rollback of {args.rows:,} rows, {database_label()} (goal: 1,000,000 in < 5 s)",
            ["repeat", "seconds", "rows/s", "chunks"],
            rows,
        )
    )
    Team.objects.all().delete()
    keep.delete()


if __name__ == "__main__":
    main()
