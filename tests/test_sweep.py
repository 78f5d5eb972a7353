"""The workers' sweep: jobs whose message was lost go to the workers again."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from collect.broker import waiting_task_ids
from jobs import services
from jobs.models import Job, State


def queue() -> set[str]:
    waiting = waiting_task_ids(django_settings.CELERY_TASK_DEFAULT_QUEUE)
    if waiting is None:
        pytest.skip("a server broker gives a dead worker's unacknowledged messages to another")
    return waiting


def forget(job_ids: set[str]) -> None:
    """Remove these jobs' messages, so no later test's worker gets them."""
    folder = django_settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError:
            continue
        if any(job_id in text for job_id in job_ids):
            os.unlink(path)


@pytest.fixture
def no_worker(shared_worker):  # type: ignore[no-untyped-def]
    """The queue folder as the test leaves it: a shared worker still running from an
    earlier test would take its messages (and drop them: the jobs are not committed)."""
    if shared_worker.worker is not None:
        shared_worker.stop()


@pytest.mark.django_db
def test_a_queued_job_whose_message_a_dead_worker_took_is_sent_again_after_a_lease(  # type: ignore[no-untyped-def]
    user, settings, no_worker
):
    """The embedded broker cannot redeliver a message a killed worker had taken: the sweep
    sends the job again once it has waited a lease, not after COLLECT_REQUEUE_QUEUED_SECONDS."""
    queue()
    settings.COLLECT_JOB_LEASE_SECONDS, settings.COLLECT_REQUEUE_QUEUED_SECONDS = 30, 300
    long_ago = timezone.now() - timedelta(seconds=settings.COLLECT_JOB_LEASE_SECONDS + 30)
    lost, waiting, new = (
        Job.objects.create(kind="count", owner=user, params={"n": 1}, state=State.QUEUED)
        for _ in range(3)
    )
    ids = {str(lost.id), str(waiting.id), str(new.id)}
    try:
        assert services.enqueue_now(waiting.id)  # its message is in the queue folder
        Job.objects.filter(id__in=[lost.id, waiting.id]).update(enqueued_at=long_ago)
        # ``new`` has no message either, but was sent a moment ago: a worker may be taking it.
        Job.objects.filter(id=new.id).update(enqueued_at=timezone.now() - timedelta(seconds=5))
        assert str(waiting.id) in queue() and str(lost.id) not in queue()

        assert services.job_sweep() == 1
        assert str(lost.id) in queue()
        assert Job.objects.get(id=lost.id).enqueued_at > long_ago
        assert Job.objects.get(id=waiting.id).enqueued_at == long_ago
        assert str(new.id) not in queue()
        assert services.job_sweep() == 0  # its message waits now
    finally:
        forget(ids)
