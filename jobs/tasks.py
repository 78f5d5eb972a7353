"""Celery tasks are thin: they carry a job id and call the engine."""

from __future__ import annotations

import os

from celery import shared_task

from jobs import engine


@shared_task(name="jobs.run_job", bind=True, acks_late=True, reject_on_worker_lost=True)
def run_job(self, job_id: str) -> None:  # type: ignore[no-untyped-def]
    engine.run(job_id, worker=f"{self.request.hostname or 'worker'}:{os.getpid()}")
