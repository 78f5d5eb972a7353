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

Appending needs a local path (``Storage.path()``): FileSystemStorage, also
when its folder is shared by several hosts (NFS). A storage without local
paths (S3 and the like) is refused with a clear message.
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

from jobs.kinds import Batch, JobFailed, JobKind, RunContext
from jobs.models import Job
from responses import csvrows, mail
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


def part_path(job: Job) -> str:
    return local_path(writer(job).part_name(job.param("file")))


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
        path = part_path(ctx.job)
        header = writer(ctx.job).header()
        # "wb": a run that crashed before its first checkpoint starts the file afresh.
        with writing():
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(header)
                fh.flush()
                os.fsync(fh.fileno())
        return {"ts": None, "id": None, "rows": 0, "size": len(header)}

    def resume(self, ctx: RunContext, checkpoint: dict[str, Any]) -> None:
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
        size = settings.COLLECT_EXPORT_BATCH_ROWS
        if checkpoint["rows"] and settings.COLLECT_EXPORT_THROTTLE_SECONDS:
            time.sleep(settings.COLLECT_EXPORT_THROTTLE_SECONDS)
        rows = list(qs.order_by("timestamp", "id").values_list(*csvrows.FIELDS)[:size])
        if not rows:
            return None
        usernames, tz = self._usernames(ctx, rows), timezone.get_current_timezone()
        records = [csvrows.record(row, usernames=usernames, tz=tz) for row in rows]
        data = writer(ctx.job).encode(records, first=not checkpoint["rows"])
        last_row = rows[-1]
        return Batch(
            count=len(rows),
            checkpoint={
                "ts": last_row[1].isoformat(),
                "id": last_row[0],
                "rows": checkpoint["rows"] + len(rows),
                "size": checkpoint["size"] + len(data),
            },
            payload=data,
        )

    def _usernames(self, ctx: RunContext, rows: list[tuple[Any, ...]]) -> dict[int, str]:
        """Usernames by id, fetched once per user (no join on every page)."""
        from django.contrib.auth import get_user_model

        known: dict[int, str] = ctx.state.setdefault("usernames", {})
        missing = {row[2] for row in rows if row[2] is not None} - known.keys()
        if missing:
            if len(known) > 100_000:
                known.clear()
            model = get_user_model()
            field = model.USERNAME_FIELD
            known.update(model._default_manager.filter(pk__in=missing).values_list("pk", field))
        return known

    def write_batch(self, ctx: RunContext, batch: Batch) -> None:
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
        if name and default_storage.exists(name):
            default_storage.delete(name)
        # The job's own folder (exports/<uuid>/), with any part or work files a writer left;
        # never anything above it.
        folder, _, _ = name.rpartition("/")
        if folder.startswith("exports/") and "/" not in folder[len("exports/") :]:
            with contextlib.suppress(JobFailed):
                shutil.rmtree(local_path(folder), ignore_errors=True)

    def finish(self, ctx: RunContext) -> dict[str, Any]:
        job = Job.objects.get(id=ctx.job.id)
        size = int((job.checkpoint or {}).get("size", 0))
        with writing():
            writer(job).finish(part_path(job), local_path(job.param("file")), size, ctx.heartbeat)
        return mail.deliver(ctx)
