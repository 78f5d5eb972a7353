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
from django.db import DatabaseError, connection, transaction

from jobs.formatting import plural
from jobs.kinds import Batch, JobFailed, JobKind, RunContext
from jobs.models import Job
from jobs.parts import Part
from teams import csvformat, loader, upsert
from teams.csvformat import COLUMNS, FileProblem, Layout, Problem
from teams.models import Team
from teams.readers import Reader, open_reader
from teams.upsert import CREATE, UPSERT

log = logging.getLogger(__name__)

FAIL, SKIP = "fail", "skip"
SHOWN_PROBLEMS = 100


UNDO_CHUNK = 5000
UNDO_CHUNK_MAX = 200_000
UNDO_CHUNK_SECONDS = 1.0
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
        # As the export's "CSV for Excel" (responses/writers/csv.py): a UTF-8 byte order
        # mark, without which Excel reads the file as the local legacy encoding, and CRLF.
        self._text = io.TextIOWrapper(self._tmp, encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._text, lineterminator="\r\n")
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


def _delete_created(job_id: Any, limit: int, after: int) -> tuple[int, int | None]:
    """``loader.delete_created`` past ``after``, on past chunks someone else emptied meanwhile."""
    while True:
        deleted, last = loader.delete_created(job_id=job_id, limit=limit, after=after)
        if deleted or last is None:
            return deleted, last
        after = last


class TeamImport(JobKind):
    name = "import_teams"
    verbose_name = "Import teams"
    kept_file = "uploaded file"
    # Rows left out of an upsert (keys twice, or shared): the batches' business, not the API's.
    internal_params = frozenset({"excluded_rows"})
    detail_template = "teams/_import_result.html"  # includes teams/_added.html

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
            options = {
                "encoding": ctx.job.param("encoding"),
                "sheet": ctx.job.param("sheet"),
                "filename": ctx.job.param("filename"),  # only to word messages
            }
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
        keys = upsert.KeyCheck(ctx.job.param("key"), layout) if _keyed(ctx.job) else None
        size, unit = reader.extent()
        # Plans batches of checked bytes for the database's own loader (teams.loader).
        planner = None
        splits = _splits(ctx.job)
        planned = splits is None and not keys and not ctx.job.param("dry_run")
        if planned and connection.vendor != "sqlite":
            planner = loader.Planner.for_file(reader, layout, _batch_size(ctx))
        record = None
        try:
            for n, record in enumerate(reader.records(layout.start, layout.row)):
                if n % 2000 == 0:
                    ctx.checked(done=min(record.end, size), total=size, unit=unit)
                    ctx.heartbeat()
                values, problems = csvformat.check(record, layout)
                if planner is not None:
                    planner.add(record, values, problems)
                if not values and not problems:
                    continue  # a blank row is not a team
                rows += 1
                for problem in problems:
                    report.add(problem)
                if values is not None:
                    good += 1
                    if splits is not None:
                        splits.add(record.end, record.row, good)
                if keys is not None and values:
                    keys.add(record.row, values)
            if keys is not None:
                # Keys twice in the file or shared by several teams: before anything is written.
                excluded: set[int] = set()
                for problem in keys.problems():
                    report.add(problem)
                    excluded.add(problem.row)
                good -= len(excluded)
                # Batches leave these rows out (with on_error=skip; else the job fails below).
                if excluded:
                    _save_params(ctx, excluded_rows=sorted(excluded))
        except BaseException:
            report.close()
            raise
        if not rows:
            report.close()
            raise JobFailed(
                "The file has a header but no teams. Add one row per team below the "
                f"header {layout.header}."
            )
        bad_rows = rows - good
        report_name = report.save(ctx.job)
        if bad_rows and ctx.job.param("on_error", FAIL) != SKIP:
            first = report.first[0]
            raise JobFailed(
                f"Nothing was imported: {csvformat.bad_rows_said(bad_rows, rows)}. First problem: "
                f"{csvformat.where(first)}: {first['message']} {csvformat.fix_hint(bad_rows)}",
                problems=report.first,
                problem_count=report.count,
                error_report_file=report_name,
            )
        if bad_rows:
            # Skipped rows are shown like failures, but the job goes on.
            Job.objects.filter(id=ctx.job.id).update(
                problems=report.first, problem_count=report.count, error_report_file=report_name
            )
        if planner is not None:
            ctx.state["plan"] = plan = planner.spans(record)
            log.info(
                "job %s: %d batches planned for the database's bulk loader", ctx.job.id, len(plan)
            )
        log.info("job %s: %d rows, %d to import, %d bad", ctx.job.id, rows, good, bad_rows)
        if splits is not None:
            ctx.state["splits"] = splits
        return good

    def split(self, ctx: RunContext, parts: int) -> list[Part] | None:
        """Ranges of about equal numbers of teams, cut at record boundaries seen by ``prepare``.

        A range's checkpoint is the first checkpoint's shape plus ``end``: the
        position (byte offset or row index) where ``next_batch`` stops.
        """
        splits: _Splits | None = ctx.state.get("splits")
        if splits is None:
            return None
        first = self.initial_checkpoint(ctx)
        pieces: list[Part] = []
        start, before = (first["position"], first["row"]), 0
        for end, row, good in splits.cuts(parts):
            checkpoint = {**first, "position": start[0], "row": start[1], "end": end}
            pieces.append(Part(checkpoint=checkpoint, total=good - before))
            start, before = (end, row), good
        last = {**first, "position": start[0], "row": start[1]}
        pieces.append(Part(checkpoint=last, total=splits.good - before))
        return pieces

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
        size = _batch_size(ctx)
        if checkpoint["position"] != layout.start and settings.COLLECT_IMPORT_THROTTLE_SECONDS:
            time.sleep(settings.COLLECT_IMPORT_THROTTLE_SECONDS)
        span = ctx.state.get("plan", {}).get(checkpoint["position"])
        if span is not None:
            # Planned by prepare: the same batch as below, its bytes left unparsed.
            ctx.state["checkpoint"] = checkpoint = {
                **checkpoint,
                "position": span.end,
                "row": span.row,
                "skipped": checkpoint["skipped"] + span.skipped,
                "empty": checkpoint["empty"] + span.empty,
            }
            return Batch(count=span.count, checkpoint=checkpoint, payload=span)
        teams: list[tuple[str, ...]] = []
        position, row = checkpoint["position"], checkpoint["row"]
        skipped, empty = checkpoint["skipped"], checkpoint["empty"]
        check = csvformat.check
        keyed = _keyed(ctx.job)
        rows: list[int] = []  # row numbers, for an upsert's and a dry run's account of changes
        numbered = keyed or bool(ctx.job.param("dry_run"))
        excluded = frozenset(ctx.job.param("excluded_rows") or ()) if keyed else frozenset()
        end = checkpoint.get("end")  # a part of the file (jobs.parts): up to there
        for record in reader.records(position, row):
            if end is not None and position >= end:
                break
            position, row = record.end, record.row
            values, problems = check(record, layout)
            if values:
                if keyed and row in excluded:
                    skipped += 1  # a key twice in the file or shared by teams, on_error=skip
                    continue
                teams.append(values)
                if numbered:
                    rows.append(row)
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
            **{k: checkpoint[k] for k in (*upsert.CARRIED, "end") if k in checkpoint},
        }
        if not teams:
            return None
        if numbered:
            # The counts this batch starts from: a batch written again counts from here again.
            base = {k: checkpoint[k] for k in upsert.CARRIED if k in checkpoint}
            # The columns the file has: an upsert compares and writes only those.
            payload = (teams, rows, base, layout.present)
            return Batch(count=len(teams), checkpoint=checkpoint, payload=payload)
        return Batch(count=len(teams), checkpoint=checkpoint, payload=teams)

    def write_batch(self, ctx: RunContext, batch: Batch) -> None:
        if isinstance(batch.payload, tuple):  # an upsert, or a dry run of either mode
            teams, rows, base, present = batch.payload
            if _keyed(ctx.job):
                counts = upsert.write_batch(
                    job=ctx.job, key=ctx.job.param("key"), rows=rows, teams=teams, base=base,
                    dry_run=bool(ctx.job.param("dry_run")), columns=present,
                )  # fmt: skip
            else:
                counts = upsert.count_creates(rows=rows, teams=teams, base=base)
            batch.checkpoint.update(counts)
            return
        job_id = Team._meta.get_field("job").get_db_prep_value(ctx.job.id, connection)
        if isinstance(batch.payload, loader.Span):
            span, (reader, layout) = batch.payload, self._open(ctx)
            if not ctx.state.get("loader_refused"):
                data = loader.stream(self._file(ctx), reader, layout, span)
                try:
                    with transaction.atomic():  # a savepoint: a refused load leaves nothing
                        loader.load(
                            data, delimiter=reader.decided()["delimiter"], job_id=job_id,
                            expected=span.count, columns=loader.load_columns(layout),
                        )  # fmt: skip
                    return
                except (loader.NotLoaded, DatabaseError) as refused:
                    # E.g. local_infile off on the server. Written row by row below; a
                    # lost connection fails there again and the engine retries the batch.
                    log.warning("job %s: bulk loader refused a batch (%s)", ctx.job.id, refused)
                    ctx.state["loader_refused"] = True
            teams = list(loader.values_between(reader, layout, span.start, span.end))
        else:
            teams = batch.payload
        self._insert(teams, job_id)

    def _insert(self, teams: list[tuple[str, ...]], job_id: Any) -> None:
        # The values were validated in prepare.
        rows = ((*row, job_id) for row in teams)
        loader.insert_rows(Team._meta.db_table, (*COLUMNS, "job_id"), rows)

    def undo_chunk(self, ctx: RunContext) -> int:
        if _keyed(ctx.job):
            # Updated teams first, back to their previous values; then the created ones.
            restored = upsert.undo_chunk(job=ctx.job, limit=UNDO_CHUNK)
            if restored:
                return restored
        limit = int(ctx.state.get("undo_chunk", UNDO_CHUNK))
        started = time.monotonic()
        after = int(ctx.state.get("undo_after", 0))
        deleted, last = _delete_created(ctx.job.id, limit, after)
        if last is None and after:
            # Nothing above the last chunk: look once more from the start, so the undo
            # ends only when no row of the job is left at all (as after a takeover,
            # whose state starts empty).
            deleted, last = _delete_created(ctx.job.id, limit, 0)
        ctx.state["undo_after"] = last or 0
        took = time.monotonic() - started
        if deleted == limit and took > 0:
            # Chunks of about UNDO_CHUNK_SECONDS: few statements and commits, and the
            # engine renews the lease after each, far within COLLECT_JOB_LEASE_SECONDS.
            grown = int(limit * UNDO_CHUNK_SECONDS / took)
            ctx.state["undo_chunk"] = max(UNDO_CHUNK, min(grown, UNDO_CHUNK_MAX, 4 * limit))
        if _keyed(ctx.job):
            # Also when nothing was deleted: the account exists once the undo is done.
            upsert.count_deleted(job=ctx.job, deleted=deleted)
        return deleted

    def undone(self, job: Job) -> str:
        undo = (job.result or {}).get("undo") if _keyed(job) else None
        if undo is None:
            return ""  # a create import: the engine's "N rows were written and removed"
        deleted, restored, left = (int(undo.get(k, 0)) for k in ("deleted", "restored", "left"))
        if not (deleted or restored or left):
            return "no team had been created or changed yet"
        said = f"{plural(deleted, 'team')} created and removed, "
        their = "its" if restored == 1 else "their"
        said += f"{plural(restored, 'updated team')} put back to {their} previous values"
        if left:
            said += (
                f", {plural(left, 'team')} changed by someone else since left as "
                f"{'it is' if left == 1 else 'they are'}"
            )
        return said

    def discard(self, job: Job) -> None:
        name = job.param("file")
        if name:
            default_storage.delete(name)

    def finish(self, ctx: RunContext) -> dict[str, Any]:
        self._close(ctx)
        checkpoint = ctx.state.get("checkpoint") or {}
        # The upload is kept: if this worker died before marking the job done, the
        # next one must still be able to read the file from the checkpoint.
        skipped = int(checkpoint.get("skipped", 0))
        if _keyed(ctx.job) or ctx.job.param("dry_run"):
            result = upsert.result(job=ctx.job, checkpoint=checkpoint, skipped=skipped)
        else:
            created = Team.objects.filter(job_id=ctx.job.id).count()
            result = {"imported": created, **upsert.counts(created=created), "skipped": skipped}
        if checkpoint.get("empty"):
            result["empty_rows"] = int(checkpoint["empty"])
        return result


class _Splits:
    """Where parts of the file may start: ``(position after a team's record, its row, teams
    so far)``, kept every ``step`` teams (doubled whenever more than ``MARKS`` are kept)."""

    MARKS = 4096

    def __init__(self, step: int) -> None:
        self.step = max(1, step)
        self.marks: list[tuple[int, int, int]] = []
        self.good = 0

    def add(self, end: int, row: int, good: int) -> None:
        self.good = good
        if good % self.step == 0:
            self.marks.append((end, row, good))
            if len(self.marks) > self.MARKS:
                self.step *= 2
                self.marks = [m for m in self.marks if m[2] % self.step == 0]

    def cuts(self, parts: int) -> list[tuple[int, int, int]]:
        """At most ``parts - 1`` marks that cut the teams into about equal parts."""
        cuts: list[tuple[int, int, int]] = []
        marks = iter(m for m in self.marks if m[2] < self.good)
        for i in range(1, parts):
            target = self.good * i / parts
            for mark in marks:
                if mark[2] >= target:
                    cuts.append(mark)
                    break
        return cuts


def _splits(job: Job) -> _Splits | None:
    """Marks for ``TeamImport.split`` when the job runs in parts: a create import, not a dry run."""
    if int(job.param("parallelism") or 1) < 2 or job.parent_id is not None:
        return None
    if _keyed(job) or job.param("dry_run"):
        return None
    return _Splits(min(int(job.param("batch_size") or settings.COLLECT_IMPORT_BATCH_SIZE), 1000))


def _batch_size(ctx: RunContext) -> int:
    return int(ctx.job.param("batch_size") or settings.COLLECT_IMPORT_BATCH_SIZE)


def _keyed(job: Job) -> bool:
    return job.param("mode", CREATE) == UPSERT


def _save_params(ctx: RunContext, **changes: Any) -> None:
    params = {**ctx.job.params, **changes}
    Job.objects.filter(id=ctx.job.id).update(params=params)
    ctx.job.params = params


__all__ = ["COLUMNS", "TeamImport"]
