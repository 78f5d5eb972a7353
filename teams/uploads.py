"""The upload size limit, enforced before the body is read and again while it streams."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, TemporaryFileUploadHandler
from rest_framework import status
from rest_framework.exceptions import APIException

from jobs.formatting import exact_size
from jobs.retention import QuotaExceeded, check_quota

# Room for the multipart envelope (boundaries, headers, the on_error field)
# around a file that is exactly at the limit.
ENVELOPE_BYTES = 64 * 1024


class UploadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "upload_too_large"

    def __init__(self, message: str = "") -> None:
        limit = settings.COLLECT_UPLOAD_MAX_BYTES
        super().__init__(
            message
            or f"The file is too large: at most {exact_size(limit)} can be "
            "uploaded. Split it into smaller files and import them one after the other."
        )


class SizeLimitUploadHandler(FileUploadHandler):
    """Counts the bytes as they stream in and gives up past the limit.

    It guards requests whose declared length cannot be trusted up front (no
    Content-Length, or a server that streams a chunked body).
    """

    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.limit = settings.COLLECT_UPLOAD_MAX_BYTES
        self.seen = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.seen += len(raw_data)
        if self.seen > self.limit:
            raise UploadTooLarge()
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def guard_upload(request: Any) -> None:
    """Refuse an upload whose declared size is over the limit, before reading any of it."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > settings.COLLECT_UPLOAD_MAX_BYTES + ENVELOPE_BYTES:
        raise UploadTooLarge()
    # Over the user's storage quota: refused before a byte of the body is read.
    try:
        check_quota(user=getattr(request, "user", None), incoming=max(0, declared - ENVELOPE_BYTES))
    except QuotaExceeded as exc:
        raise UploadTooLarge(exc.message) from None
    request.upload_handlers = [SizeLimitUploadHandler(request), TemporaryFileUploadHandler(request)]
