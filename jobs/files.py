"""Job files in storage: a local folder, or an S3-compatible bucket shared by every host.

Everything else goes through Django's storage API (``default_storage``); this
module is the little that the API does not say: whether storage is a bucket
(``bucket()``, with the boto3 client and the object key of a storage name, for
the export's multipart upload), how a download is served (``serve``), and how a
job's folder of objects is removed with its unfinished uploads (``delete_prefix``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.core.files.storage import default_storage, storages
from django.http import FileResponse, Http404, HttpResponseBase, HttpResponseRedirect
from django.utils.http import content_disposition_header


@dataclass(frozen=True)
class Bucket:
    """The bucket behind ``default_storage``: its boto3 client, name and key prefix."""

    client: Any
    name: str
    storage: Any

    def key(self, name: str) -> str:
        """The object key of a storage name (``AWS_LOCATION`` prefixed, as django-storages does)."""
        from storages.utils import clean_name

        return str(self.storage._normalize_name(clean_name(name)))


def bucket() -> Bucket | None:
    """The bucket job files live in, or None when they live in the local folder."""
    storage = storages["default"]
    # Whatever STORAGES names, as long as it is django-storages' S3 backend (or a subclass).
    if not (hasattr(storage, "bucket_name") and hasattr(storage, "connection")):
        return None
    return Bucket(client=storage.connection.meta.client, name=storage.bucket_name, storage=storage)


def serve(name: str, filename: str) -> HttpResponseBase:
    """A download of the stored file ``name`` as ``filename``; the caller checked permission.

    From a bucket: a redirect to a presigned URL that works ``AWS_QUERYSTRING_EXPIRE``
    seconds (the bytes go from the store to the browser, not through the web
    process). From the local folder: the file, streamed. Raises ``Http404`` when
    the file is gone.
    """
    if bucket() is not None:
        if not default_storage.exists(name):
            raise Http404("The file is gone.")
        disposition = content_disposition_header(True, filename) or "attachment"
        url = default_storage.url(  # type: ignore[call-arg]
            name, parameters={"ResponseContentDisposition": disposition}
        )
        return HttpResponseRedirect(url)
    try:
        fh = default_storage.open(name, "rb")
    except FileNotFoundError:
        raise Http404("The file is gone.") from None
    return FileResponse(fh, as_attachment=True, filename=filename)


def multipart_uploads(prefix: str) -> Iterator[tuple[str, str]]:
    """``(key, upload id)`` of every unfinished multipart upload under the storage ``prefix``."""
    store = bucket()
    if store is None:
        return
    pages = store.client.get_paginator("list_multipart_uploads")
    for page in pages.paginate(Bucket=store.name, Prefix=store.key(prefix)):
        for upload in page.get("Uploads", []):
            yield upload["Key"], upload["UploadId"]


def delete_prefix(prefix: str) -> None:
    """Remove every object under the storage ``prefix`` (a job's folder) and abort its uploads.

    Used when a job is stopped, fails or is discarded by retention: nothing of it,
    not even the parts of an unfinished multipart upload (which a bucket keeps,
    and bills, until aborted), stays in the bucket.
    """
    store = bucket()
    if store is None:
        return
    for key, upload_id in list(multipart_uploads(prefix)):
        with contextlib.suppress(store.client.exceptions.NoSuchUpload):
            store.client.abort_multipart_upload(Bucket=store.name, Key=key, UploadId=upload_id)
    pages = store.client.get_paginator("list_objects_v2")
    for page in pages.paginate(Bucket=store.name, Prefix=store.key(prefix)):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            store.client.delete_objects(Bucket=store.name, Delete={"Objects": keys})
