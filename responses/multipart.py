"""An export written to a bucket: one S3 multipart upload, its parts committed with the checkpoint.

A bucket cannot append to an object, and an S3 multipart upload takes parts
of at least 5 MiB (all but the last). So each page of the export goes into a
*spool* in the worker's memory, and when the spool holds
``COLLECT_EXPORT_PART_BYTES`` it is uploaded as the next part, in the
transaction that commits the batch's checkpoint. The checkpoint carries the
upload: ``{"id": upload id, "parts": [[number, ETag, bytes], ...], "at": the
position (last key, rows, bytes) at the end of the last part}``.

The spool is only a cache: the database holds the rows. A run that continues
a job (after a pause, or on another host after a crash) rewinds the
checkpoint to ``at`` and reads the rows after it again; it uploads the next
part under the same number, which replaces any part a dead run uploaded but
never committed. The rows read again are not counted twice in the progress.

``finish`` uploads the spool as the last part and completes the upload: the
object appears once, whole. A run that died after completing it finds the
object at resume and does not write it again. A stop or a failure aborts the
upload and deletes the job's folder (``jobs.files.delete_prefix``): no object
and no unfinished upload is left.

The upload's target is the writer's part name: the file itself for the
formats written in order (CSV, GeoJSON), or a part object that ``finish``
turns into the final file in a temporary folder and uploads (XLSX, a zip).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction

from jobs.files import Bucket, bucket
from jobs.kinds import JobFailed, RunContext
from responses.writers import Writer

POSITION = ("ts", "id", "rows", "size")


@contextlib.contextmanager
def talking_to_the_bucket() -> Iterator[None]:
    """Turn an error of the object store into a failure the user can read."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchUpload":
            raise JobFailed(
                "The partly written export is gone from the bucket (a lifecycle rule may "
                "have removed it), so the export cannot continue; start it again."
            ) from exc
        raise JobFailed(
            f"The export could not be written to the bucket ({code or exc}). Nothing was "
            "sent; try again later or ask an administrator to check the object store."
        ) from exc
    except BotoCoreError as exc:
        raise JobFailed(
            f"The export could not be written to the bucket ({exc}). Nothing was sent; "
            "try again later or ask an administrator to check the object store."
        ) from exc


@dataclass
class Spool:
    """Bytes of the export from ``base`` on that are in no committed part yet."""

    upload_id: str
    base: int
    data: bytearray
    parts: list[list[Any]] = field(default_factory=list)
    at: dict[str, Any] = field(default_factory=dict)

    def committed(self, parts: list[list[Any]], at: dict[str, Any]) -> None:
        """The transaction that recorded a new part committed: drop its bytes."""
        self.base = int(at["size"])
        del self.data[:]
        self.parts, self.at = parts, at


def _store() -> Bucket:
    store = bucket()
    assert store is not None
    return store


def start(ctx: RunContext, target: str, header: bytes) -> dict[str, Any]:
    """Open the upload of ``target`` and the spool; return the first checkpoint's upload."""
    store = _store()
    # An upload opened by a run that died (or was taken over) before its first
    # checkpoint committed is left alone here: that run may still be finishing its
    # step. ``finish`` aborts such strays once the export's own upload is complete.
    with talking_to_the_bucket():
        upload_id = store.client.create_multipart_upload(Bucket=store.name, Key=store.key(target))[
            "UploadId"
        ]
    ctx.heartbeat()  # a first connection to the store can take a while
    at = {"ts": None, "id": None, "rows": 0, "size": len(header)}
    ctx.state["spool"] = Spool(upload_id, base=0, data=bytearray(header), parts=[], at=at)
    return {"id": upload_id, "parts": [], "at": at}


def _uploads(store: Bucket, target: str) -> list[tuple[str, str]]:
    key = store.key(target)
    found = store.client.list_multipart_uploads(Bucket=store.name, Prefix=key)
    return [(u["Key"], u["UploadId"]) for u in found.get("Uploads", []) if u["Key"] == key]


def resume(
    ctx: RunContext, checkpoint: dict[str, Any], target: str, final: str, header: bytes
) -> None:
    """Continue a run: rewind ``checkpoint`` (in place) to the end of the last committed part."""
    upload = checkpoint.get("upload")
    if upload is None:
        raise JobFailed(
            "This export was started before its files moved to a bucket, so it cannot "
            "continue there; start it again."
        )
    done = _exists(target) or (target != final and _exists(final))
    ctx.heartbeat()
    if done:
        ctx.state["completed"] = True  # a run that died after completing the upload
        return
    ctx.state["counted"] = int(checkpoint["rows"])
    at = dict(upload["at"])
    checkpoint.update({k: at[k] for k in POSITION})
    parts = [list(p) for p in upload["parts"]]
    # Before the first part the spool starts with the header (the first ``at.size`` bytes).
    data = bytearray() if parts else bytearray(header)
    base = int(at["size"]) - len(data)
    ctx.state["spool"] = Spool(upload["id"], base=base, data=data, parts=parts, at=at)


def _exists(name: str) -> bool:
    with talking_to_the_bucket():
        return bool(default_storage.exists(name))


def write(ctx: RunContext, checkpoint: dict[str, Any], payload: bytes, target: str) -> None:
    """Add one batch to the spool; upload it as a part when full. Runs in the batch's transaction.

    ``checkpoint`` (the batch's) gets the upload as it is once this transaction
    commits. Run again after a lost race, it writes the same bytes and part.
    """
    spool: Spool = ctx.state["spool"]
    expected = int(checkpoint["size"]) - len(payload)
    del spool.data[expected - spool.base :]
    spool.data += payload
    parts, at = spool.parts, spool.at
    if len(spool.data) >= settings.COLLECT_EXPORT_PART_BYTES:
        parts = [*parts, _upload_part(spool.upload_id, target, len(parts) + 1, spool.data)]
        at = {k: checkpoint[k] for k in POSITION}
        transaction.on_commit(lambda: spool.committed(parts, at))
    checkpoint["upload"] = {"id": spool.upload_id, "parts": parts, "at": at}


def _upload_part(upload_id: str, target: str, number: int, data: bytearray) -> list[Any]:
    store = _store()
    with talking_to_the_bucket():
        answer = store.client.upload_part(
            Bucket=store.name,
            Key=store.key(target),
            UploadId=upload_id,
            PartNumber=number,
            Body=bytes(data),
        )
    return [number, answer["ETag"], len(data)]


def finish(
    ctx: RunContext, checkpoint: dict[str, Any], writer: Writer, target: str, final: str
) -> None:
    """Upload the last part, complete the upload, and make the final file from it if need be."""
    if not ctx.state.get("completed"):
        _complete(ctx, checkpoint, writer, target, final)
    if target != final and _exists(target):
        _build(checkpoint, writer, target, final, ctx.heartbeat)


def _complete(
    ctx: RunContext, checkpoint: dict[str, Any], writer: Writer, target: str, final: str
) -> None:
    spool: Spool = ctx.state["spool"]
    size = int(checkpoint["size"])
    del spool.data[size - spool.base :]
    if target == final:
        # The writer's ending (GeoJSON's closing brackets), written after the committed size.
        spool.data += _ending(writer, bytes(spool.data), size - spool.base)
    store = _store()
    with talking_to_the_bucket():
        parts = list(spool.parts)
        if spool.data or not parts:
            parts.append(_upload_part(spool.upload_id, target, len(parts) + 1, spool.data))
            ctx.heartbeat()
        store.client.complete_multipart_upload(
            Bucket=store.name,
            Key=store.key(target),
            UploadId=spool.upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag, _ in parts]},
        )
        for key, stray in _uploads(store, target):
            with contextlib.suppress(store.client.exceptions.NoSuchUpload):
                store.client.abort_multipart_upload(Bucket=store.name, Key=key, UploadId=stray)
    ctx.heartbeat()


def _ending(writer: Writer, tail: bytes, size: int) -> bytes:
    """What ``writer.finish`` adds after ``size`` bytes of an in-place file (run on the tail)."""
    with tempfile.NamedTemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR) as tmp:
        tmp.write(tail)
        tmp.flush()
        writer.finish(tmp.name, tmp.name, size, lambda: None)
        tmp.seek(size)
        return tmp.read()


def _build(
    checkpoint: dict[str, Any],
    writer: Writer,
    target: str,
    final: str,
    heartbeat: Callable[[], None],
) -> None:
    """Make the final file from the completed part object in a temporary folder; upload it."""
    work = tempfile.mkdtemp(dir=settings.FILE_UPLOAD_TEMP_DIR)
    try:
        part = os.path.join(work, "part")
        store = _store()
        with talking_to_the_bucket():
            store.client.download_file(store.name, store.key(target), part)
        heartbeat()
        made = os.path.join(work, os.path.basename(final))
        writer.finish(part, made, int(checkpoint["size"]), heartbeat)
        with talking_to_the_bucket(), open(made, "rb") as fh:
            default_storage.save(final, File(fh))
            default_storage.delete(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
