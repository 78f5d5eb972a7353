"""One import in parts: rows/s of a create import run as 1, 2, 4 … parts by W workers.

Generates one teams CSV of N rows, starts W real worker processes (one slot
each) on the configured database and broker, and imports the file once per
parts count, one after the other, through the same service the API calls
(``teams_import_start(parallelism=…)``). Timed from "job created" to
``succeeded``, the validation pass included; the table also shows how long
that pass took (the parent's check, before any part starts) and the parts'
own rate once they run. The teams table is emptied between runs, so every
run starts from the same table: use a database of its own, for example::

    DATABASE_URL=postgres://postgres@127.0.0.1/collect_parts_bench \\
        CELERY_BROKER_URL=amqp://guest:guest@127.0.0.1:5672// \\
        .venv/bin/python bench/bench_parts.py 1000000 --parts 1 2 4 --workers 2
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
os.environ.setdefault("COLLECT_DATA_DIR", str(HERE.parent / "var" / "bench-parts"))
os.environ.setdefault("COLLECT_QUEUE", f"bench-parts-{os.getpid()}")
os.environ.setdefault("COLLECT_BROKER_POLL_SECONDS", "0.05")

from bench_ratio import ensure_database  # noqa: E402,F401 (creates the database; sets Django up)
from common import WorkerProcess, bench_user, database_label, table, wait_state  # noqa: E402
from django.core.files import File  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Max, Min  # noqa: E402

from jobs.models import Job  # noqa: E402
from teams.fake import write_fake_teams  # noqa: E402
from teams.models import Team  # noqa: E402
from teams.services import teams_import_start  # noqa: E402


def empty_teams() -> None:
    table_name = connection.ops.quote_name(Team._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"DELETE FROM {table_name}")
        else:
            cursor.execute(f"TRUNCATE TABLE {table_name}")


def run_once(user: object, path: Path, parts: int) -> list[object]:
    empty_teams()
    began = time.monotonic()
    with path.open("rb") as fh:
        job = teams_import_start(file=File(fh, name=path.name), by=user, parallelism=parts)
    job = wait_state(job, {"succeeded", "failed", "stopped"}, interval=0.1)
    took = time.monotonic() - began
    if job.state != "succeeded" or job.result.get("imported") != job.total:
        raise SystemExit(f"{parts} parts: {job.state} {job.error} {job.result}")
    children = Job.objects.filter(parent=job)
    if children.exists():
        span = children.aggregate(start=Min("started_at"), end=Max("finished_at"))
        parts_seconds = (span["end"] - span["start"]).total_seconds()
        check = (span["start"] - job.started_at).total_seconds()
    else:
        parts_seconds = job.run_seconds
        check = took - job.run_seconds
    return [parts, job.total, round(took, 1), round(check, 1), round(job.total / took),
            round(job.total / parts_seconds)]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rows", type=int, nargs="?", default=200_000)
    parser.add_argument("--parts", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--workers", type=int, default=2, help="worker processes, one slot each")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    workdir = Path(os.environ["COLLECT_DATA_DIR"])
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"teams-{args.rows}.csv"
    if not path.exists():
        with path.open("w", encoding="utf-8", newline="") as fh:
            write_fake_teams(fh, args.rows, seed=1)
    user = bench_user()
    workers = [WorkerProcess(concurrency=1) for _ in range(args.workers)]
    rows = []
    try:
        for parts in args.parts:
            runs = [run_once(user, path, parts) for _ in range(args.repeat)]
            medians = [statistics.median(r[i] for r in runs) for i in range(len(runs[0]))]
            rows.append([f"{v:,.0f}" if i != 2 and i != 3 else f"{v:.1f}"
                         for i, v in enumerate(medians)])  # fmt: skip
    finally:
        for worker in workers:
            worker.stop()
        empty_teams()
    print(
        table(
            f"Import in parts, {database_label()}, {args.workers} workers x 1 slot "
            f"(median of {args.repeat})",
            ["parts", "rows", "seconds", "check s", "rows/s", "rows/s of the parts"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
