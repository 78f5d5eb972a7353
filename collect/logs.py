"""Logging filters named in ``settings.LOGGING`` (loaded before the apps: no Django imports)."""

from __future__ import annotations

import logging


class RefusedHostLine(logging.Filter):
    """Log a request for a host name that is not ours as one WARNING line, no traceback.

    Django logs ``DisallowedHost`` (a request whose ``Host`` header is not in
    ``ALLOWED_HOSTS``: scanners send thousands) at ERROR with a traceback through
    Django's own code, which says nothing its message does not ("Invalid
    HTTP_HOST header: 'x'. You may need to add 'x' to ALLOWED_HOSTS."), and it
    buries real errors. The request is still refused (400).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
