"""API rate limits count every request, also when many arrive at once from many processes.

DRF's own throttle read the client's history from the cache and wrote it back
with no lock, so concurrent requests were lost from the count (1000 requests in
9 s from 50 threads got no 429 against 600 a minute). These tests hammer
``collect.throttling`` from several processes and threads at once, on the two
real caches ``collect`` uses: diskcache in a data folder (the default) and a
real ``redis-server`` (``COLLECT_CACHE_URL``).
"""

from __future__ import annotations

import multiprocessing
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.core import mail
from django.core.cache import caches
from django.test import Client, override_settings
from rest_framework.test import APIClient

from collect.throttling import CountersDown, FixedWindowRateThrottle, UserRateThrottle, hit
from collect.tokens import token_create
from jobs.models import Job, State
from tests.test_export_helpers import free_port
from tests.test_security import _collect
from tests.workers import wait_for

PROCESSES = 4
THREADS = 8
TRIES = 25  # per thread: 800 requests in all
LIMIT = 300
# Mid-window, so that no test sees a window turn (the tests set the clock).
NOW = 1_800_000_030.0


class Counted(UserRateThrottle):
    """The user throttle at LIMIT a day, on a clock that stands still."""

    rate = f"{LIMIT}/day"

    @staticmethod
    def timer() -> float:
        return NOW


def _hammer(user_id: int) -> int:
    """In a child process: THREADS threads ask TRIES times each; how many were allowed."""
    caches.close_all()  # connections made before the fork belong to the parent
    request = SimpleNamespace(user=SimpleNamespace(is_authenticated=True, pk=user_id), META={})
    allowed = [0] * THREADS
    start = threading.Barrier(THREADS)

    def one(i: int) -> None:
        start.wait()
        for _ in range(TRIES):
            allowed[i] += Counted().allow_request(request, None)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(allowed)


def hammer(user_id: int) -> int:
    """PROCESSES x THREADS x TRIES requests of one user at once; how many were allowed."""
    caches.close_all()
    with multiprocessing.get_context("fork").Pool(PROCESSES) as pool:
        return sum(pool.map(_hammer, [user_id] * PROCESSES))


class RedisServer:
    """A throwaway ``redis-server`` on a free loopback port, nothing saved to disk."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is missing: scripts/system-deps installs it")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(folder)]
        self.proc = subprocess.Popen(
            [binary, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._up, timeout=20, interval=0.1, what="redis-server")

    def _up(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url).ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(params=["diskcache", "redis"])
def real_cache(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The default cache of ``collect``'s settings for one of its two backends."""
    backend: dict[str, Any]
    if request.param == "redis":
        server = RedisServer(tmp_path)
        backend = {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": server.url,
            "KEY_PREFIX": "collect",
        }
    else:
        backend = {
            "BACKEND": "diskcache.DjangoCache",
            "LOCATION": str(tmp_path / "counters"),
            "DATABASE_TIMEOUT": 1.0,
        }
    with override_settings(CACHES={"default": backend}):
        yield request.param
        caches.close_all()
    if request.param == "redis":
        server.stop()


def test_requests_at_once_from_many_processes_are_each_counted(real_cache: str) -> None:
    assert hammer(user_id=7) == LIMIT  # of 800
    assert hammer(user_id=8) == LIMIT  # each user has their own count
    assert hammer(user_id=7) == 0  # and the first is still over it


def test_a_new_window_starts_the_count_again(real_cache: str) -> None:
    request = SimpleNamespace(user=SimpleNamespace(is_authenticated=True, pk=3), META={})
    clock = [NOW]

    class Minute(UserRateThrottle):
        rate = "2/minute"

        @staticmethod
        def timer() -> float:
            return clock[0]

    asked = [Minute() for _ in range(3)]
    assert [t.allow_request(request, None) for t in asked] == [True, True, False]
    assert asked[2].wait() == pytest.approx(60 - NOW % 60)  # to the minute's end: Retry-After
    clock[0] += 60
    assert Minute().allow_request(request, None)


@pytest.mark.django_db
def test_the_api_answers_429_with_retry_after(
    real_cache: str, user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through DRF, on the real cache: the fourth request of a minute is refused."""
    rates = {"user": "3/minute", "anon": None}
    monkeypatch.setattr(FixedWindowRateThrottle, "THROTTLE_RATES", rates)
    monkeypatch.setattr(FixedWindowRateThrottle, "timer", staticmethod(lambda: NOW))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=user)[0]}")
    assert [api.get("/api/tasks/").status_code for _ in range(3)] == [200, 200, 200]
    refused = api.get("/api/tasks/")
    assert refused.status_code == 429
    assert refused["Retry-After"] == str(int(60 - NOW % 60))
    assert refused.json()["detail"].startswith("Request was throttled.")
    # Pausing and stopping have a budget of their own: polls did not use it up.
    job = Job.objects.create(kind="count", owner=user, state=State.SUCCEEDED, params={"n": 1})
    assert api.post(f"/api/tasks/{job.id}/pause/").status_code == 409  # answered, not a 429
    assert api.get(f"/stop_task/{job.id}").status_code == 409
    assert api.post(f"/api/tasks/{job.id}/stop/").status_code == 409
    assert api.post(f"/api/tasks/{job.id}/stop/").status_code == 429  # 3 a minute as well


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("memcached://127.0.0.1:11211", "must be a Redis URL (redis://host:6379/0, rediss://"),
        ("127.0.0.1:6379", "not '127.0.0.1:6379'"),
        (
            "redis://127.0.0.1:6379/abc",
            "database number (redis://host:6379/0), not 'abc'",
        ),
    ],
)
def test_a_cache_url_that_is_not_redis_is_refused_with_what_to_set(
    tmp_path: Path, url: str, message: str
) -> None:
    done = _collect("check", COLLECT_CACHE_URL=url, COLLECT_DATA_DIR=str(tmp_path))
    assert done.returncode == 2
    # One line that says what to set, not a traceback that buries it.
    assert done.stderr.startswith("Collect cannot start: COLLECT_CACHE_URL")
    assert message in done.stderr and "Traceback" not in done.stderr


def test_a_redis_url_in_capitals_is_a_redis_url(tmp_path: Path) -> None:
    done = _collect(
        "check", COLLECT_CACHE_URL="REDIS://127.0.0.1:6379/3", COLLECT_DATA_DIR=str(tmp_path)
    )
    assert done.returncode == 0, done.stderr


def test_the_default_settings_count_on_this_host(tmp_path: Path) -> None:
    """Without COLLECT_CACHE_URL, a rate limit hit in one process is seen by another; the
    counters live on this host's disk, not in the data folder (maybe a network mount)."""
    script = "from django.core.cache import cache; cache.add('k', 0); print(cache.incr('k'))"
    first = _collect("shell", "--no-imports", "-c", script, COLLECT_DATA_DIR=str(tmp_path))
    second = _collect("shell", "--no-imports", "-c", script, COLLECT_DATA_DIR=str(tmp_path))
    assert (first.stdout.split()[-1], second.stdout.split()[-1]) == ("1", "2"), first.stderr
    assert not (tmp_path / "counters").exists()
    other = _collect("shell", "--no-imports", "-c", script, COLLECT_DATA_DIR=str(tmp_path / "b"))
    assert other.stdout.split()[-1] == "1", other.stderr  # another data folder: its own counts


@pytest.mark.django_db
def test_with_redis_down_the_api_answers_and_reset_mails_wait(
    user: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing listens at COLLECT_CACHE_URL: the API is served without its limits and
    password-reset mails are not sent (rather than unlimited); each says so in the log."""
    import collect.throttling

    down = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 1.0},
    }
    monkeypatch.setattr(collect.throttling, "_last_outage_log", [float("-inf")])
    monkeypatch.setattr(collect.throttling, "_down_until", [float("-inf")])
    with override_settings(CACHES={"default": down}):
        api = APIClient()
        api.force_authenticate(user)
        assert [api.get("/api/tasks/").status_code for _ in range(3)] == [200, 200, 200]
        # After a failure the store is not asked again for a while (circuit breaker).
        with pytest.raises(CountersDown):
            hit("any", 60)
        monkeypatch.setattr(collect.throttling, "_last_outage_log", [float("-inf")])
        monkeypatch.setattr(collect.throttling, "_down_until", [float("-inf")])
        answer = Client().post("/accounts/password_reset/", {"email": user.email})
    assert answer.status_code == 302  # the same answer as ever
    assert mail.outbox == []
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2, errors  # once a minute, not once a request
    assert errors[0].startswith("API requests are not rate-limited: the counters' store")
    assert errors[1].startswith("Password-reset mails are not sent: the counters' store")
    assert "ConnectionError" in errors[0]
