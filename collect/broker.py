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
