"""API rate limits that count every request, however many arrive at once.

DRF's ``SimpleRateThrottle`` keeps each client's request times as a list in the
cache and writes the list back after each request: a read-modify-write with no
lock, so concurrent requests overwrite each other's entries. Measured here, 1000
requests from 50 threads in 9 s got no 429 against a limit of 600 a minute,
while the same requests one after the other were limited. It also pickles and
writes up to ``N`` timestamps per request (with the file cache, a file written
and renamed per request: 13% of a web process's time under 20 pollers).

These throttles count in fixed windows instead: one counter per client and
window, made with the cache's ``add`` and raised with its ``incr``, which are
atomic on the caches ``collect`` configures (``COLLECT_CACHE_URL``: Redis's
``SET NX`` and ``INCRBY``; by default diskcache, one SQLite transaction each,
shared by the processes of one host). Windows are aligned to the clock, as in
django-ratelimit: a client may send up to ``N`` requests at the end of one window
and ``N`` more at the start of the next. A refused request counts too, so a
client that ignores ``Retry-After`` stays refused until the window ends. Job
controls (pause, resume, stop; a view's ``throttle_bucket``) are counted apart
from the rest, at the same rate. When the store cannot be reached (Redis down),
requests are let through, the store is not asked again for 10 s, and an error is
logged once a minute: the API stays up without its limits.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from typing import Any

from django.core.cache import BaseCache, caches
from django.core.signals import setting_changed
from django.dispatch import receiver
from rest_framework import throttling

logger = logging.getLogger("collect.throttling")

_shared: dict[str, BaseCache] = {}
_made = threading.Lock()
# When the counters' store was last said to be unreachable (time.monotonic()).
_last_outage_log = [-math.inf]
OUTAGE_LOG_EVERY_SECONDS = 60.0
# After the store fails, it is not asked again for this long (a circuit breaker):
# a Redis that does not answer would otherwise cost every request its timeout.
_down_until = [-math.inf]
OUTAGE_RETRY_SECONDS = 10.0


class CountersDown(RuntimeError):
    """The counters' store failed less than ``OUTAGE_RETRY_SECONDS`` ago; not asked again yet."""


def counters() -> BaseCache:
    """The default cache, made once per process and shared by its threads.

    ``django.core.cache.caches`` makes a cache object per request under ASGI (its
    connections are context-local, and each request runs in a context of its
    own): for diskcache that opened eight SQLite files per request, for Redis a
    new connection pool, which doubled a poll's CPU. diskcache (a connection per
    thread) and redis-py (a pool) are safe to share between threads.
    """
    try:
        return _shared["default"]
    except KeyError:
        with _made:
            if "default" not in _shared:
                _shared["default"] = caches.create_connection("default")
            return _shared["default"]


def hit(key: str, window_seconds: int) -> int:
    """Count one request under ``key``: the count so far, this one included.

    ``key`` names the counter of one client and window; it expires about
    ``window_seconds`` later. Raises whatever the cache raises when its store
    cannot be reached (``redis.ConnectionError``, ``redis.TimeoutError``, …), and
    then ``CountersDown`` without asking it for ``OUTAGE_RETRY_SECONDS``.
    """
    if time.monotonic() < _down_until[0]:
        raise CountersDown("it failed moments ago")
    cache = counters()
    try:
        cache.add(key, 0, window_seconds)
        try:
            return int(cache.incr(key))
        except ValueError:  # expired between add and incr: start it again
            cache.add(key, 0, window_seconds)
            return int(cache.incr(key))
    except Exception:
        _down_until[0] = time.monotonic() + OUTAGE_RETRY_SECONDS
        raise


def log_outage(error: Exception, what: str) -> None:
    """Log (ERROR, at most once a minute per process) that the counters cannot be reached."""
    now = time.monotonic()
    if now - _last_outage_log[0] >= OUTAGE_LOG_EVERY_SECONDS:
        _last_outage_log[0] = now
        logger.error(
            "%s: the counters' store cannot be reached (COLLECT_CACHE_URL, or this "
            "host's counters folder): %s: %s",
            what,
            type(error).__name__,
            error,
        )


@receiver(setting_changed)
def _forget_counters(setting: str, **kwargs: Any) -> None:
    if setting == "CACHES":
        _shared.clear()
        _down_until[0] = -math.inf


os.register_at_fork(after_in_child=_shared.clear)


class FixedWindowRateThrottle(throttling.SimpleRateThrottle):
    """``SimpleRateThrottle`` with an atomic counter per client and window.

    ``allow_request`` costs two cache calls (``add``, ``incr``) and stores one
    integer. ``wait()`` is the seconds until the window ends (DRF turns it into
    the ``Retry-After`` header of the 429, RFC 6585 section 4).
    """

    # Set by SimpleRateThrottle.__init__ from the rate ("600/minute": 600, 60 s).
    num_requests: int
    duration: int

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        # Pausing and stopping jobs have a budget of their own: polls that used up the
        # client's requests must not keep it from stopping a job.
        bucket = getattr(view, "throttle_bucket", "")
        if bucket:
            key = f"{key}:{bucket}"
        now = self.timer()
        window = int(now // self.duration)
        self.window_ends = (window + 1) * self.duration
        self.now = now
        timeout = math.ceil(self.window_ends - now) + 1  # gone soon after its window
        try:
            count = hit(f"{key}:{window}", timeout)
        except Exception as error:
            # The API stays up while its counters' store is down; the log says so.
            log_outage(error, "API requests are not rate-limited")
            return True
        return count <= self.num_requests

    def wait(self) -> float:
        """Seconds until the current window ends and the count starts again."""
        return max(0.0, self.window_ends - self.now)


class AnonRateThrottle(FixedWindowRateThrottle, throttling.AnonRateThrottle):
    """Requests per client address without a login (scope ``anon``)."""


class UserRateThrottle(FixedWindowRateThrottle, throttling.UserRateThrottle):
    """Requests per signed-in user or token (scope ``user``); per address otherwise."""
