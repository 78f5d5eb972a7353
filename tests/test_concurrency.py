"""Many jobs at once on several workers: each one exact, and controlling one leaves the rest alone.

Two real ``celery worker`` processes of two pool processes each run four team
imports and two response exports at the same time, on the test database. One
import is stopped, one import and one export are paused and resumed while the
others run. Every other job must end exactly as it would alone (the rows of
its file, in order; the exported file and the mail equal to what is built here
from the database), and the jobs must really have run side by side.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from django.core.files.storage import default_storage

from jobs import services
from jobs.models import LEASED, TERMINAL, Job, State
from responses.fake import create_responses
from responses.models import FormResponse
from teams.models import Team
from tests.test_export_helpers import END, START, YEAR_TO, attached_csv, expected, file_of, parse
from tests.test_export_helpers import start as export_start
from tests.test_import_helpers import expected_rows, fake_csv, rows_of
from tests.test_import_helpers import start as import_start
from tests.workers import wait_for

# The outcome depends on the database and the broker: CI runs it on each.
pytestmark = pytest.mark.servers


class Watch:
    """Polls the jobs while the test waits: how many ran at once, every state each was seen in."""

    def __init__(self, jobs: Iterable[Job]) -> None:
        self.ids = [job.id for job in jobs]
        self.most_running = 0
        self.seen: dict[uuid.UUID, set[str]] = defaultdict(set)
        self.hosts: set[str] = set()  # the workers seen running them
        self.now: dict[uuid.UUID, tuple[str, int]] = {}

    def sample(self) -> dict[uuid.UUID, tuple[str, int]]:
        rows = Job.objects.filter(id__in=self.ids).values_list("id", "state", "processed", "worker")
        self.now = {}
        for job_id, state, processed, worker in rows:
            self.now[job_id] = (state, processed)
            self.seen[job_id].add(state)
            if state in LEASED and worker:
                self.hosts.add(worker.rsplit(":", 1)[0])  # "hostname:pid"
        running = sum(1 for state, _ in self.now.values() if state in LEASED)
        self.most_running = max(self.most_running, running)
        return self.now

    def state(self, job: Job) -> str:
        return self.now[job.id][0]

    def processed(self, job: Job) -> int:
        return self.now[job.id][1]

    def until(self, predicate: Callable[[], Any], *, timeout: float = 180, what: str = "") -> Any:
        def check() -> Any:
            self.sample()
            return predicate()

        try:
            return wait_for(check, timeout=timeout, interval=0.05, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; jobs: {self.now}") from None


# Rows per file and batch size: hundreds of batches with a short rest after each
# (COLLECT_IMPORT_THROTTLE_SECONDS), so each import takes seconds.
IMPORTS = {
    "stop": (40_000, 100),
    "pause": (30_000, 100),
    "keep": (20_000, 50),
    "keep2": (30_000, 50),
}
RESPONSES = 20_000


@pytest.mark.timeout(600)
def test_four_imports_and_two_exports_at_once_with_stop_and_pauses(  # type: ignore[no-untyped-def]
    make_worker, smtp, inbox, user, tmp_path
):
    create_responses(RESPONSES, start=START, end=END, seed=21)
    env = smtp.env(
        COLLECT_IMPORT_THROTTLE_SECONDS="0.005",
        COLLECT_EXPORT_BATCH_ROWS="200",
        COLLECT_EXPORT_THROTTLE_SECONDS="0.05",
    )
    workers = [make_worker(concurrency=2, env=env) for _ in range(2)]
    paths = {
        name: fake_csv(tmp_path, n, seed=30 + i) for i, (name, (n, _)) in enumerate(IMPORTS.items())
    }

    def imp(name: str) -> Job:
        return import_start(user, paths[name], batch_size=IMPORTS[name][1])

    # Six jobs for four pool processes: the last ones wait for a free one.
    stop = imp("stop")
    exp_pause = export_start(user, None, None)
    pause = imp("pause")
    keep = imp("keep")
    exp_keep = export_start(user, START, YEAR_TO)
    keep2 = imp("keep2")
    jobs = [stop, exp_pause, pause, keep, exp_keep, keep2]
    assert len({job.id for job in jobs}) == 6
    keepers = [keep, keep2, exp_keep]
    w = Watch(jobs)

    # Stop one import, pause another import and one export, each mid-way.
    w.until(lambda: w.processed(stop) >= 1_000, what="the import to stop to be under way")
    others_running = [j for j in jobs if j is not stop and w.state(j) in LEASED]
    services.job_stop(job=stop, by=user)
    w.until(lambda: w.processed(pause) >= 1_000, what="the import to pause to be under way")
    services.job_pause(job=pause, by=user)
    w.until(lambda: w.processed(exp_pause) >= 2_000, what="the export to pause to be under way")
    services.job_pause(job=exp_pause, by=user)
    w.until(
        lambda: (
            (w.state(stop), w.state(pause), w.state(exp_pause))
            == (State.STOPPED, State.PAUSED, State.PAUSED)
        ),
        what="the stop and the pauses to take effect",
    )
    assert others_running, "nothing else ran when the stop was asked for"
    assert Team.objects.filter(job=stop).count() == 0
    assert not default_storage.exists(stop.param("file"))  # its upload is gone too

    # While paused they write nothing, and the others carry on meanwhile.
    pause.refresh_from_db()
    exp_pause.refresh_from_db()
    assert 0 < pause.processed < IMPORTS["pause"][0]
    assert 0 < exp_pause.processed < RESPONSES
    paused_rows = Team.objects.filter(job=pause).count()
    assert paused_rows == pause.processed  # committed is exactly what the checkpoint says
    export_path = default_storage.path(exp_pause.param("file"))
    assert os.path.getsize(export_path) == exp_pause.checkpoint["size"]
    snapshot = {job.id: w.processed(job) for job in keepers}

    def went_on() -> int:
        return sum(w.processed(j) - snapshot[j.id] for j in keepers)

    w.until(
        lambda: went_on() >= 2_000 or all(w.state(j) in TERMINAL for j in keepers),
        what="the other jobs to go on",
    )
    time.sleep(1)
    print(f"while two jobs were paused, the others wrote {went_on()} rows")
    assert Team.objects.filter(job=pause).count() == paused_rows
    assert Job.objects.get(id=pause.id).processed == pause.processed
    assert Job.objects.get(id=exp_pause.id).processed == exp_pause.processed
    assert os.path.getsize(export_path) == exp_pause.checkpoint["size"]

    services.job_resume(job=Job.objects.get(id=pause.id), by=user)
    services.job_resume(job=Job.objects.get(id=exp_pause.id), by=user)
    finished = [pause, exp_pause, *keepers]
    w.until(
        lambda: all(w.state(j) in TERMINAL for j in finished), timeout=300, what="all jobs to end"
    )
    for job in jobs:
        job.refresh_from_db()
    assert {job.label: job.state for job in finished} == {
        job.label: State.SUCCEEDED for job in finished
    }, {job.label: job.error for job in finished}
    assert stop.state == State.STOPPED and Team.objects.filter(job=stop).count() == 0

    # They really ran side by side, on both workers.
    for job in jobs:
        took = (job.finished_at - job.started_at).total_seconds()
        print(f"{job.label}: {job.state} {job.processed} rows in {took:.1f} s")
    print(f"at most {w.most_running} jobs ran at once, on {sorted(w.hosts)}")
    assert w.most_running >= 3, f"at most {w.most_running} jobs ran at once"
    assert w.hosts == {worker.name for worker in workers}

    # Nothing went wrong on the way (a deadlock between two workers, say).
    assert [line for worker in workers for line in worker.errors()] == []

    # The stop and the pauses touched none of the others.
    for job in keepers:
        assert w.seen[job.id] <= {State.QUEUED, State.RUNNING, State.SUCCEEDED}, job.label
    assert pause.attempts == 1 and exp_pause.attempts == 1  # a pause is not a lost worker

    # Every import is exactly its file, in order; nothing else is in the table.
    for name, job in (("pause", pause), ("keep", keep), ("keep2", keep2)):
        n = IMPORTS[name][0]
        assert job.result == {
            "imported": n,
            "created": n,
            "updated": 0,
            "unchanged": 0,
            "skipped": 0,
        }, name
        assert (job.processed, job.total) == (n, n), name
        assert rows_of(job) == expected_rows(paths[name]), name
    assert Team.objects.count() == sum(IMPORTS[name][0] for name in ("pause", "keep", "keep2"))

    # Every export is exactly its range, in its file and in its mail; one mail each.
    wait_for(lambda: len(inbox.messages) >= 2, timeout=60, what="two export mails")
    time.sleep(0.5)  # a third mail would be a bug: give it the chance to show up
    assert len(inbox.messages) == 2
    attachments = dict(attached_csv(msg) for msg in inbox.messages)
    ranges = {
        exp_pause: FormResponse.objects.all(),
        exp_keep: FormResponse.objects.filter(timestamp__gte=START, timestamp__lte=YEAR_TO),
    }
    for job, qs in ranges.items():
        want = expected(qs)
        assert job.total == job.processed == job.result["rows"] == len(want) - 1
        data = file_of(job)
        assert parse(data) == want
        assert attachments[job.result["attachment"]] == data
    assert exp_keep.processed < exp_pause.processed == RESPONSES


@pytest.mark.timeout(300)
def test_the_same_csv_imported_twice_at_once(make_worker, user, tmp_path):  # type: ignore[no-untyped-def]
    path = fake_csv(tmp_path, 20_000, seed=41)
    want = expected_rows(path)
    worker = make_worker(concurrency=2)
    first = import_start(user, path, batch_size=100)
    second = import_start(user, path, batch_size=100)
    assert first.id != second.id
    assert first.param("file") != second.param("file")  # each upload is stored on its own
    w = Watch([first, second])
    w.until(
        lambda: all(w.state(j) in TERMINAL for j in (first, second)),
        timeout=240,
        what="both imports to end",
    )
    for job in (first, second):
        job.refresh_from_db()
        assert job.state == State.SUCCEEDED, job.error
        assert job.result == {
            "imported": 20_000,
            "created": 20_000,
            "updated": 0,
            "unchanged": 0,
            "skipped": 0,
        }
        assert rows_of(job) == want  # each is the whole file, in order, once
    assert Team.objects.count() == 2 * len(want)

    # They ran at the same time: both held at once, their rows interleaved in the table.
    assert w.most_running == 2
    ids = {
        job.id: list(Team.objects.filter(job=job).values_list("id", flat=True))
        for job in (first, second)
    }
    a, b = ids[first.id], ids[second.id]
    assert min(a) < max(b) and min(b) < max(a), "one import ran entirely before the other"
    assert worker.errors() == []
