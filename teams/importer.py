"""``import_teams``: the job kind that imports teams from an uploaded CSV file or workbook.

``prepare`` reads the whole file once and checks every row before anything
is written. Batches then read from the committed checkpoint (the reader's
position, a byte offset or a row index, and the row number there), so a
resumed or taken-over import starts exactly where the last committed batch
ended. The reader is chosen by ``teams.readers``; this module names none.
Every row carries the job that wrote it: a stop deletes exactly those rows.
"""

from __future__ import annotations

import csv
import io
import logging
import tempfile
import time
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection

from jobs.kinds import Batch, JobFailed, JobKind, RunContext
from jobs.models import Job
from teams import csvformat
from teams.csvformat import COLUMNS, FileProblem, Layout, Problem
from teams.models import Team
from teams.readers import Reader, open_reader

log = logging.getLogger(__name__)

FAIL, SKIP = "fail", "skip"
SHOWN_PROBLEMS = 100


def _columns() -> str:
    return ", ".join(connection.ops.quote_name(c) for c in (*COLUMNS, "job_id"))


def _insert_sql() -> str:
    table = connection.ops.quote_name(Team._meta.db_table)
    return f"INSERT INTO {table} ({_columns()}) VALUES (%s, %s, %s, %s, %s)"  # noqa: S608


def _copy_sql() -> str:
    return f"COPY {connection.ops.quote_name(Team._meta.db_table)} ({_columns()}) FROM STDIN"


UNDO_CHUNK = 5000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """Neutralise a cell a spreadsheet would run as a formula (the report echoes user data)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class _ErrorReport:
    """Every problem, streamed to a temporary CSV; the first ones kept for the job page."""

    def __init__(self) -> None:
        self.count = 0
        self.first: list[dict[str, Any]] = []
        self._tmp = tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR)  # noqa: SIM115
        self._text = io.TextIOWrapper(self._tmp, encoding="utf-8", newline="")
        self._writer = csv.writer(self._text)
        self._writer.writerow(["row", "column", "value", "message"])

    def add(self, problem: Problem) -> None:
        self.count += 1
        if len(self.first) < SHOWN_PROBLEMS:
            self.first.append(problem.as_dict())
        row = problem.as_dict()
        self._writer.writerow([_cell(row[k]) for k in ("row", "column", "value", "message")])

    def save(self, job: Job) -> str:
        """Store the report (when there is anything in it) and return its storage name."""
        try:
            if not self.count:
                return ""
            self._text.flush()
            self._tmp.seek(0)
            return default_storage.save(f"imports/errors/{job.id}.csv", File(self._tmp))
        finally:
            self.close()

    def close(self) -> None:
        self._text.close()


class TeamImport(JobKind):
    name = "import_teams"
    verbose_name = "Import teams"
    kept_file = "uploaded file"

    def kept_bytes(self, job: Job) -> int:
        return int(job.param("size") or 0)

    def _file(self, ctx: RunContext) -> IO[bytes]:
        fh = ctx.state.get("file")
        if fh is None:
            try:
                fh = default_storage.open(ctx.job.param("file"), "rb")
            except FileNotFoundError:
                raise JobFailed(
                    "The uploaded file is gone from storage; upload it again."
                ) from None
            ctx.state["file"] = fh
        return fh

    def _close(self, ctx: RunContext) -> None:
        reader = ctx.state.pop("reader", None)
        if reader is not None:
            reader.close()
        fh = ctx.state.pop("file", None)
        if fh is not None:
            fh.close()

    def _open(self, ctx: RunContext, known: dict[str, Any] | None = None) -> tuple[Reader, Layout]:
        """The reader and the checked header, opened once per run.

        ``known`` (from the checkpoint) makes a resumed run read the file exactly
        as the first run decided: same encoding, delimiter, sheet.
        """
        if "reader" not in ctx.state:
            options = {"encoding": ctx.job.param("encoding"), "sheet": ctx.job.param("sheet")}
            reader = open_reader(self._file(ctx), options=options, known=known)
            try:
                ctx.state["layout"] = csvformat.read_header(reader)
            except FileProblem as bad_file:
                raise JobFailed(str(bad_file)) from None
            finally:
                if reader.description and not known:
                    # The job page says how the file was read, even when it is refused.
                    params = {**ctx.job.params, "read_as": reader.description}
                    Job.objects.filter(id=ctx.job.id).update(params=params)
                    ctx.job.params = params
            ctx.state["reader"] = reader
        return ctx.state["reader"], ctx.state["layout"]

    def prepare(self, ctx: RunContext) -> int:
        reader, layout = self._open(ctx)
        report = _ErrorReport()
        good = rows = 0
        try:
            for n, record in enumerate(reader.records(layout.start, layout.row)):
                if n % 2000 == 0:
                    ctx.heartbeat()
                values, problems = csvformat.check(record, layout)
                if not values and not problems:
                    continue  # a blank row is not a team
                rows += 1
                for problem in problems:
                    report.add(problem)
                good += values is not None
        except BaseException:
            report.close()
            raise
        if not rows:
            report.close()
            raise JobFailed(
                "The file has a header but no teams. Add one row per team below the "
                f"header {csvformat.HEADER}."
            )
        bad_rows = rows - good
        report_name = report.save(ctx.job)
        if bad_rows and ctx.job.param("on_error", FAIL) != SKIP:
            first = report.first[0]
            raise JobFailed(
                f"Nothing was imported: {bad_rows} of {rows} rows "
                f"{'is' if bad_rows == 1 else 'are'} bad. First problem: {csvformat.where(first)}: "
                f"{first['message']} {csvformat.FIX_HINT}",
                problems=report.first,
                problem_count=report.count,
                error_report_file=report_name,
            )
        if bad_rows:
            # Skipped rows are shown like failures, but the job goes on.
            Job.objects.filter(id=ctx.job.id).update(
                problems=report.first, problem_count=report.count, error_report_file=report_name
            )
        log.info("job %s: %d rows, %d to import, %d bad", ctx.job.id, rows, good, bad_rows)
        return good

    def initial_checkpoint(self, ctx: RunContext) -> dict[str, Any]:
        reader, layout = self._open(ctx)
        return {
            "position": layout.start,
            "row": layout.row,
            "skipped": 0,
            "empty": 0,
            "read": reader.decided(),
        }

    def next_batch(self, ctx: RunContext, checkpoint: dict[str, Any]) -> Batch | None:
        reader, layout = self._open(ctx, checkpoint["read"])
        size = int(ctx.job.param("batch_size") or settings.COLLECT_IMPORT_BATCH_SIZE)
        if checkpoint["position"] != layout.start and settings.COLLECT_IMPORT_THROTTLE_SECONDS:
            time.sleep(settings.COLLECT_IMPORT_THROTTLE_SECONDS)
        teams: list[tuple[str, ...]] = []
        position, row = checkpoint["position"], checkpoint["row"]
        skipped, empty = checkpoint["skipped"], checkpoint["empty"]
        check = csvformat.check
        for record in reader.records(position, row):
            position, row = record.end, record.row
            values, problems = check(record, layout)
            if values:
                teams.append(values)
            elif problems:
                skipped += 1  # prepare checked on_error: bad rows here are to be skipped
            else:
                empty += 1
            if len(teams) >= size:
                break
        ctx.state["checkpoint"] = checkpoint = {
            "position": position,
            "row": row,
            "skipped": skipped,
            "empty": empty,
            "read": checkpoint["read"],
        }
        if not teams:
            return None
        return Batch(count=len(teams), checkpoint=checkpoint, payload=teams)

    def write_batch(self, ctx: RunContext, batch: Batch) -> None:
        # One parametrised INSERT run with executemany: measured at 130-150k rows/s
        # on SQLite against ~20k for bulk_create, whose per-object model work was
        # the import's bottleneck. The values were validated in prepare.
        job_id = Team._meta.get_field("job").get_db_prep_value(ctx.job.id, connection)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # PostgreSQL's own bulk loader; executemany is slower there. ``copy``
                # is psycopg's own (Django does not wrap it): the wrapper turns a lost
                # connection into Django's OperationalError, which the engine retries.
                with connection.wrap_database_errors, cursor.copy(_copy_sql()) as copy:
                    for row in batch.payload:
                        copy.write_row((*row, job_id))
            else:
                cursor.executemany(_insert_sql(), [(*row, job_id) for row in batch.payload])

    def undo_chunk(self, ctx: RunContext) -> int:
        ids = list(Team.objects.filter(job_id=ctx.job.id).values_list("id", flat=True)[:UNDO_CHUNK])
        if not ids:
            return 0
        Team.objects.filter(id__in=ids).delete()
        return len(ids)

    def discard(self, job: Job) -> None:
        name = job.param("file")
        if name:
            default_storage.delete(name)

    def finish(self, ctx: RunContext) -> dict[str, Any]:
        self._close(ctx)
        checkpoint = ctx.state.get("checkpoint") or {}
        # The upload is kept: if this worker died before marking the job done, the
        # next one must still be able to read the file from the checkpoint.
        imported = Team.objects.filter(job_id=ctx.job.id).count()
        result = {"imported": imported, "skipped": int(checkpoint.get("skipped", 0))}
        if checkpoint.get("empty"):
            result["empty_rows"] = int(checkpoint["empty"])
        return result


__all__ = ["COLUMNS", "TeamImport"]
