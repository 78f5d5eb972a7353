"""The embedded broker: kombu's filesystem transport, with messages written atomically.

kombu writes a message by creating its file and then writing into it, while a
consumer in another process may already move and read that file: it reads an
empty message, and the ``json`` error kills the worker (kombu issue #1551).
The fault tests hit this when a worker's sweep sent a message while another
worker polled the folder. Here a message is written under a name no consumer
picks up, flushed to disk, and renamed into place: a consumer sees either no
file or the whole message.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        # The same name pattern as kombu's: milliseconds first, so sorted = FIFO.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.part")  # never matches a queue
        try:
            with open(partial, "wb") as fh:
                fh.write(str_to_bytes(dumps(payload)))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(partial, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel

    # Celery's loop for transports without an event loop (``synloop``) calls
    # ``drain_events(timeout=2.0)`` and looks at its shutdown flag only between
    # two calls, so a SIGTERM waited up to 2 s here before anything stopped.
    # Messages are still polled every ``polling_interval``; only the check for
    # a shutdown comes sooner.
    DRAIN_SECONDS = 0.2

    def drain_events(self, connection: Any, timeout: float | None = None, **kwargs: Any) -> None:
        if timeout is None or timeout > self.DRAIN_SECONDS:
            timeout = self.DRAIN_SECONDS
        super().drain_events(connection, timeout=timeout, **kwargs)


def waiting_task_ids(queue: str) -> set[str] | None:
    """Task ids of the messages waiting in ``queue`` of the embedded broker; None for another.

    The embedded broker keeps each message as a file in its queue folder until a
    worker takes it; a worker that dies after taking one (and before running it)
    loses it, since kombu's filesystem transport has no acknowledgements to
    redeliver it by. ``jobs.services.job_sweep`` uses this to tell a queued job
    whose message is lost from one still waiting. A file that vanishes or cannot
    be read while listed (a worker took it) counts as taken.
    """
    from django.conf import settings

    if getattr(settings, "CELERY_BROKER_TRANSPORT", None) != "collect.broker:Transport":
        return None
    folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
    ids = set()
    suffix = f".{queue}.msg"
    with os.scandir(folder) as entries:
        names = [e.name for e in entries if e.name.endswith(suffix)]
    for name in names:
        try:
            with open(os.path.join(folder, name), "rb") as fh:
                message = json.load(fh)
            ids.add(str(message["headers"]["id"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return ids
