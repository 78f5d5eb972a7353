"""Celery tasks are thin: they carry a job id and call the engine."""

from __future__ import annotations

import os

from celery import Task, shared_task

from jobs import engine


@shared_task(name="jobs.run_job", bind=True, acks_late=True, reject_on_worker_lost=True)
def run_job(self: Task, job_id: str) -> None:
    engine.run(job_id, worker=f"{self.request.hostname or 'worker'}:{os.getpid()}")
