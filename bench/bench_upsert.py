"""Upsert benchmark: rows/s of upserts beside the create import, and the undo time.

Uses the import benchmark's web server and worker (bench_import.Bench) on the
configured database and broker. Its teams have names of their own (a tag per
run), so other teams are never matched, and it deletes them at the end. For
each size N it runs, one after the other:

- create: a create import of N new teams (the baseline);
- unchanged: an upsert of the same file (every row already stored);
- updated: an upsert where every row's description changed;
- half new: an upsert of N/2 changed rows and N/2 new teams;
- undo: an upsert back to the first file (every row changes), stopped at 90%: the time from the
  stop request to ``stopped`` (putting back every updated row).

For example::

    DATABASE_URL=postgres://postgres@127.0.0.1/collect_bench \\
        CELERY_BROKER_URL=amqp://guest:guest@127.0.0.1:5672// \\
        .venv/bin/python bench/bench_upsert.py 200000 1000000
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_import import Bench, fake_file, multipart
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.db import connection

from jobs.models import Job
from teams.models import Team


def upload(bench: Bench, path: Path, **fields: str) -> Job:
    boundary = uuid.uuid4().hex
    length, body = multipart(path, boundary, fields)
    data = bench.request(
        "POST", "/api/imports/teams/", body, length, f"multipart/form-data; boundary={boundary}"
    )
    return Job.objects.get(id=data["task_id"])


def variant(
    source: Path, out: Path, *, tag: str, suffix: str = "", new_from: int | None = None
) -> Path:
    """``source`` with ``tag`` before every name and ``suffix`` after every description.

    Rows from ``new_from`` on get new names.
    """
    with (
        source.open(encoding="utf-8", newline="") as fin,
        out.open("w", encoding="utf-8", newline="") as fout,
    ):
        reader, writer = csv.reader(fin), csv.writer(fout, lineterminator="\r\n")
        writer.writerow(next(reader))
        for i, (name, description, manager, members) in enumerate(reader):
            name = f"{tag} {name}"
            if new_from is not None and i >= new_from:
                name = f"New {i} {name}"
            writer.writerow((name, f"{description.strip()} {suffix}".strip(), manager, members))
    return out


def delete_teams(jobs: list[Job]) -> None:
    """The teams the benchmark's jobs created (one statement each: the ORM would load them)."""
    table = connection.ops.quote_name(Team._meta.db_table)
    ids = [Team._meta.get_field("job").get_db_prep_value(j.id, connection) for j in jobs]
    with connection.cursor() as cursor:
        for job_id in ids:
            cursor.execute(f"DELETE FROM {table} WHERE job_id = %s", [job_id])


def timed(bench: Bench, path: Path, **fields: str) -> tuple[float, Job]:
    accepted = time.monotonic()
    job = upload(bench, path, **fields)
    done = bench.wait(job, {"succeeded"})
    job.refresh_from_db()
    return done - accepted, job


def run(n: int, batch_size: int, workdir: Path) -> dict[str, object]:
    fake = fake_file(workdir, n, "csv")
    tag = f"bench-{uuid.uuid4().hex[:8]}"
    base = variant(fake, workdir / f"upsert-{n}-v1.csv", tag=tag)
    updated = variant(fake, workdir / f"upsert-{n}-v2.csv", tag=tag, suffix="v2")
    half_new = variant(fake, workdir / f"upsert-{n}-v3.csv", tag=tag, suffix="v3", new_from=n // 2)
    bench = Bench(batch_size, workdir)
    # An upsert needs the permission to change teams (the benchmark's user is made by Bench).
    bench_user = User.objects.get(username="bench")
    bench_user.user_permissions.add(
        Permission.objects.get_by_natural_key("change_team", "teams", "team")
    )
    figures: dict[str, object] = {"rows": n, "batch": batch_size}
    jobs: list[Job] = []
    try:
        seconds, job = timed(bench, base)
        jobs.append(job)
        figures["create rows/s"] = round(n / seconds)
        for label, path, expect in (
            ("unchanged", base, (0, 0, n)),
            ("updated", updated, (0, n, 0)),
            ("half new", half_new, (n - n // 2, n // 2, 0)),
        ):
            seconds, job = timed(bench, path, mode="upsert")
            jobs.append(job)
            got = tuple(job.result[k] for k in ("created", "updated", "unchanged"))
            assert got == expect, (label, got, expect)
            figures[f"{label} rows/s"] = round(n / seconds)
        # Every row is changed again (back to the first file), stopped late: a big undo.
        job = upload(bench, base, mode="upsert")
        bench.wait(job, set(), processed=int(n * 0.9))
        asked = time.monotonic()
        bench.request("POST", f"/stop_task/{job.id}")
        stopped = bench.wait(job, {"stopped"})
        job.refresh_from_db()
        undo = job.result.get("undo", {})
        figures["undo rows"] = undo.get("restored", 0) + undo.get("deleted", 0)
        figures["undo s"] = round(stopped - asked, 2)
        figures["undo rows/s"] = round(figures["undo rows"] / max(stopped - asked, 1e-9))  # type: ignore[operator]
    finally:
        bench.close()
        delete_teams(jobs)
        for path in (base, updated, half_new):
            path.unlink()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("sizes", nargs="+", type=int, help="rows per file")
    parser.add_argument("--batch-size", type=int, default=settings.COLLECT_IMPORT_BATCH_SIZE)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    workdir = Path(settings.DATA_DIR) / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, "
          f"broker: {settings.CELERY_BROKER_URL.split(':', 1)[0]}")  # fmt: skip
    rows = []
    for n in args.sizes:
        rows.append(run(n, args.batch_size, workdir))
        print(rows[-1], flush=True)
    columns = list(rows[0])
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(str(row.get(c, "")) for c in columns))


if __name__ == "__main__":
    main()
