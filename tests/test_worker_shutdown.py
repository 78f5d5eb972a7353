"""A worker stopped the way service managers stop it: SIGTERM to its whole process group.

systemd's default ``KillMode=control-group`` (and ``kill -TERM -PGID``) sends
SIGTERM to the worker and its pool children at once. The worker must exit
soon and hand its running job back, so another worker continues it from the
last committed batch, and the hand-back must not count as a lost worker.
"""

from __future__ import annotations

import io
import os
import signal
import time

import pytest
from django.core.management import call_command

from jobs.models import Job, State
from tests.test_engine import rows, start
from tests.workers import wait_processed, wait_state

# Takeover and shutdown differ by broker (redelivery, pool): CI runs these on each.
pytestmark = pytest.mark.servers


@pytest.mark.timeout(180)
def test_sigterm_to_the_process_group_hands_the_job_back(make_worker, user):  # type: ignore[no-untyped-def]
    first = make_worker()
    job = start(user, n=3000, batch=10, delay=0.02)
    wait_processed(job, 100, timeout=60)
    assert first.proc is not None
    sent = time.monotonic()
    os.killpg(first.proc.pid, signal.SIGTERM)  # the worker was started in its own session
    first.proc.wait(timeout=10)
    took = time.monotonic() - sent
    print(f"worker process group exited {took:.2f} s after SIGTERM while running a job")
    log = first.log()
    assert "handed back" in log, log
    assert "exited with 'signal 15 (SIGTERM)'" not in log, log
    job.refresh_from_db()
    assert job.state == State.RUNNING and job.lease_token is None
    assert len(rows(job)) == job.processed < 3000
    # No worker runs it now: no speed, no time left (the pages, the API and the CLI).
    assert job.handed_back and job.rate > 0 and job.eta_seconds is None
    out = io.StringIO()
    call_command("jobs", stdout=out)
    listed = out.getvalue()
    assert "no worker now" in listed and " left" not in listed and "/s" not in listed, listed

    make_worker()
    job = wait_state(job, State.SUCCEEDED, timeout=120)
    assert rows(job) == list(range(3000))
    assert job.attempts == 1  # handed back, not lost


@pytest.mark.timeout(120)
def test_an_idle_worker_exits_on_sigterm_to_its_process_group(make_worker):  # type: ignore[no-untyped-def]
    w = make_worker()
    assert w.proc is not None
    sent = time.monotonic()
    os.killpg(w.proc.pid, signal.SIGTERM)
    w.proc.wait(timeout=10)
    print(f"idle worker process group exited {time.monotonic() - sent:.2f} s after SIGTERM")
    assert Job.objects.count() == 0
