"""``export_responses``: form responses in a date range to a file, then an e-mail.

The file's format is the job's ``format`` parameter: a writer from
``responses.writers`` (CSV for Excel, raw CSV, XLSX, GeoJSON); this kind
knows none of them. Every writer appends bytes to a part file, so resuming
works the same for all of them.

Rows are read in pages with keyset pagination on ``(timestamp, id)`` (an
index covers it): each page starts after the last key of the one before, so
the cost per page stays the same however deep the export is, and memory
holds one page at most. Each page is appended to the (part) file and the checkpoint
(last key, rows written, file size) commits with the progress; resuming after
a pause or a crash cuts the file back to the committed size first, so no line
is written twice or lost.

In the local folder (FileSystemStorage, also when several hosts share it
over NFS) the part file is appended to through its path (``Storage.path()``).
In a bucket (``AWS_STORAGE_BUCKET_NAME``) it is an S3 multipart upload whose
parts commit with the checkpoint: see ``responses.multipart``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import os
import shutil
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.utils import timezone

from jobs.files import bucket, delete_prefix
from jobs.kinds import Batch, JobFailed, JobKind, RunContext
from jobs.models import Job
from responses import mail, multipart, pages, sqllines
from responses.models import FormResponse
from responses.writers import Writer, writer_for


def in_range(job: Job) -> QuerySet[FormResponse]:
    qs = FormResponse.objects.all()
    start, stop = job.param("from"), job.param("to")
    if start:
        qs = qs.filter(timestamp__gte=dt.datetime.fromisoformat(start))
    if stop:
        qs = qs.filter(timestamp__lte=dt.datetime.fromisoformat(stop))
    return qs


def local_path(name: str) -> str:
    try:
        return default_storage.path(name)
    except NotImplementedError:
        raise JobFailed(
            "The export needs a file storage with local paths (FileSystemStorage); "
            "the configured storage has none."
        ) from None


# Why a write failed, and what to do about it, for the errors an operator can fix.
_WRITE_ERRORS = {
    errno.ENOSPC: ("the disk is full", "try again later or ask an administrator to free space"),
    errno.EDQUOT: ("the disk quota is used up", "ask an administrator to raise the quota"),
    errno.EFBIG: (
        "the file is larger than the system allows",
        "export a shorter date range, or ask an administrator to raise the limit",
    ),
    errno.EROFS: ("the storage is read-only", "ask an administrator to check the storage"),
    errno.EACCES: ("the storage folder is not writable", "ask an administrator to check it"),
}


@contextlib.contextmanager
def writing() -> Iterator[None]:
    """Turn an OS error while writing the file into a failure the user can read.

    The job then fails, its partial file is deleted and no e-mail is sent.
    """
    try:
        yield
    except FileNotFoundError:
        raise
    except OSError as exc:
        reason, hint = _WRITE_ERRORS.get(
            exc.errno or 0, ("the storage refused the write", "ask an administrator to check it")
        )
        raise JobFailed(
            f"The export could not be written: {reason} ({exc.strerror or exc}). "
            f"Nothing was sent; {hint}."
        ) from exc


def writer(job: Job) -> Writer:
    """The job's writer; jobs queued before formats existed are CSV for Excel."""
    try:
        return writer_for(job.param("format"))
    except KeyError:
        raise JobFailed(
            f"The export format {job.param('format')!r} is not known to this worker; "
            "start the export again with csv, csv_raw, xlsx or geojson."
        ) from None


def part_name(job: Job) -> str:
    """The storage name appended to while the export runs."""
    return writer(job).part_name(job.param("file"))


def part_path(job: Job) -> str:
    return local_path(part_name(job))


def page_rows(ctx: RunContext) -> int:
    """Rows to read for this batch, sized by the time the last batch took.

    Each batch (read, write, commit) should take about
    ``COLLECT_EXPORT_BATCH_SECONDS``: fixed-size pages of 5,000 rows took 40
    commits (each a job-row lock, an fsync and a checkpoint update: 1.1 s) for
    200,000 rows. The first batch of a run has ``COLLECT_EXPORT_BATCH_ROWS``
    rows; each next one that many times the target over the last batch's
    seconds (measured from one call to the next, in the worker's memory),
    changed by at most 2x a step, within ``COLLECT_EXPORT_BATCH_ROWS`` and
    ``COLLECT_EXPORT_BATCH_MAX_ROWS``. With a throttle, or a target of 0,
    every batch has ``COLLECT_EXPORT_BATCH_ROWS`` rows.
    """
    least = settings.COLLECT_EXPORT_BATCH_ROWS
    target = settings.COLLECT_EXPORT_BATCH_SECONDS
    if target <= 0 or settings.COLLECT_EXPORT_THROTTLE_SECONDS:
        return least
    now = time.monotonic()
    last: tuple[float, int] | None = ctx.state.get("page")
    size = least
    if last is not None:
        seconds = max(now - last[0], 1e-3)
        size = round(last[1] * min(2.0, max(0.5, target / seconds)))
    size = max(least, min(size, max(least, settings.COLLECT_EXPORT_BATCH_MAX_ROWS)))
    ctx.state["page"] = (now, size)
    return size


class ResponseExport(JobKind):
    name = "export_responses"
    verbose_name = "Export form responses"
    detail_template = "responses/_delivery.html"
    kept_file = "export file"

    def kept_bytes(self, job: Job) -> int:
        # Written so far while it runs; the finished file's size once done.
        return int((job.result or {}).get("bytes") or (job.checkpoint or {}).get("size") or 0)

    def prepare(self, ctx: RunContext) -> int:
        writer(ctx.job)  # an unknown format fails before anything is written
        return in_range(ctx.job).count()

    def initial_checkpoint(self, ctx: RunContext) -> dict[str, Any]:
        header = writer(ctx.job).header()
        if bucket() is not None:
            upload = multipart.start(ctx, part_name(ctx.job), header)
            return {"ts": None, "id": None, "rows": 0, "size": len(header), "upload": upload}
        path = part_path(ctx.job)
        # "wb": a run that crashed before its first checkpoint starts the file afresh.
        with writing():
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(header)
                fh.flush()
                os.fsync(fh.fileno())
        return {"ts": None, "id": None, "rows": 0, "size": len(header)}

    def resume(self, ctx: RunContext, checkpoint: dict[str, Any]) -> None:
        if bucket() is not None:
            job, header = ctx.job, writer(ctx.job).header()
            return multipart.resume(ctx, checkpoint, part_name(job), job.param("file"), header)
        path = part_path(ctx.job)
        final = local_path(ctx.job.param("file"))
        if path != final and not os.path.exists(path) and os.path.exists(final):
            return  # the part was already turned into the final file (XLSX)
        try:
            with writing(), open(path, "r+b") as fh:
                # Bytes after the checkpoint were written by a run that never committed them.
                fh.truncate(int(checkpoint["size"]))
        except FileNotFoundError:
            raise JobFailed(
                "The partly written export file is gone, so the export cannot continue; "
                "start it again."
            ) from None

    def next_batch(self, ctx: RunContext, checkpoint: dict[str, Any]) -> Batch | None:
        qs = in_range(ctx.job)
        if checkpoint["ts"] is not None:
            last = dt.datetime.fromisoformat(checkpoint["ts"])
            # (timestamp, id) > (last, id): a range scan on the index from ``last`` on.
            qs = qs.filter(timestamp__gte=last).exclude(timestamp=last, id__lte=checkpoint["id"])
        size = page_rows(ctx)
        if checkpoint["rows"] and settings.COLLECT_EXPORT_THROTTLE_SECONDS:
            time.sleep(settings.COLLECT_EXPORT_THROTTLE_SECONDS)
        kind, tz = writer(ctx.job), timezone.get_current_timezone()
        # The database builds the CSV lines where it can; otherwise (or for a page it cannot
        # build exactly) Python does, with the same bytes.
        page = None
        if kind.sql_lines and settings.COLLECT_EXPORT_SQL_LINES:
            page = sqllines.read_page(qs, size=size, flavour=kind.sql_lines, tz=tz)
        if page is not None:
            data, count, key = page
        else:
            records, key = pages.read_records(
                qs, size=size, usernames=lambda ids: self._usernames(ctx, ids), tz=tz
            )
            data, count = kind.encode(records, first=not checkpoint["rows"]), len(records)
        if key is None:
            return None
        # Rows read again after a resume went back to the last part were counted already.
        done = checkpoint["rows"] + count
        counted = max(checkpoint["rows"], ctx.state.get("counted", 0))
        return Batch(
            count=max(0, done - counted),
            checkpoint={
                "ts": key[0].isoformat(),
                "id": key[1],
                "rows": done,
                "size": checkpoint["size"] + len(data),
            },
            payload=data,
        )

    def _usernames(self, ctx: RunContext, user_ids: set[int]) -> dict[int, str]:
        """Usernames by id, fetched once per user (no join on every page)."""
        from django.contrib.auth import get_user_model

        known: dict[int, str] = ctx.state.setdefault("usernames", {})
        missing = user_ids - known.keys()
        if missing:
            if len(known) > 100_000:
                known.clear()
            model = get_user_model()
            field = model.USERNAME_FIELD
            known.update(model._default_manager.filter(pk__in=missing).values_list("pk", field))
        return known

    def write_batch(self, ctx: RunContext, batch: Batch) -> None:
        if bucket() is not None:
            return multipart.write(ctx, batch.checkpoint, batch.payload, part_name(ctx.job))
        expected = batch.checkpoint["size"] - len(batch.payload)
        with writing(), open(part_path(ctx.job), "r+b") as fh:
            # Write at the committed end, whatever a crashed run left after it.
            fh.seek(expected)
            fh.write(batch.payload)
            fh.truncate()
            fh.flush()
            # On disk before the checkpoint that counts these bytes commits.
            os.fsync(fh.fileno())

    def discard(self, job: Job) -> None:
        name = job.param("file") or ""
        folder, _, _ = name.rpartition("/")
        if bucket() is not None:
            # The job's folder of objects, with the parts of an unfinished upload.
            if folder.startswith("exports/") and "/" not in folder[len("exports/") :]:
                delete_prefix(folder + "/")
            return
        if name and default_storage.exists(name):
            default_storage.delete(name)
        # The job's own folder (exports/<uuid>/), with any part or work files a writer left;
        # never anything above it.
        if folder.startswith("exports/") and "/" not in folder[len("exports/") :]:
            with contextlib.suppress(JobFailed):
                shutil.rmtree(local_path(folder), ignore_errors=True)

    def finish(self, ctx: RunContext) -> dict[str, Any]:
        job = Job.objects.get(id=ctx.job.id)
        size = int((job.checkpoint or {}).get("size", 0))
        if bucket() is not None:
            target, final = part_name(job), job.param("file")
            multipart.finish(ctx, job.checkpoint or {}, writer(job), target, final)
            return mail.deliver(ctx)
        with writing():
            writer(job).finish(part_path(job), local_path(job.param("file")), size, ctx.heartbeat)
        return mail.deliver(ctx)
