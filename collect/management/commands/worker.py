"""``collect worker``: a Celery worker with Collect's defaults.

Run as many as the load needs, on as many hosts (each with the same
``DATABASE_URL`` and ``CELERY_BROKER_URL``).
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from collect.env import env_str


class Command(BaseCommand):
    help = "Run a Celery worker that takes Collect's jobs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrency", "-c", type=int, default=settings.CELERY_WORKER_CONCURRENCY
        )
        parser.add_argument(
            "--hostname",
            "-n",
            default=env_str("COLLECT_WORKER_NAME")
            or f"collect@{socket.gethostname()}-{os.getpid()}",
        )
        parser.add_argument("--loglevel", "-l", default=env_str("LOG_LEVEL", "INFO"))
        parser.add_argument("--pool", default=env_str("COLLECT_WORKER_POOL", "prefork"))
        parser.add_argument(
            "--quiet", action="store_true", help="no start-up banner (collect serve uses it)"
        )

    def handle(
        self,
        *args: Any,
        concurrency: int,
        hostname: str,
        loglevel: str,
        pool: str,
        quiet: bool,
        **options: Any,
    ) -> None:
        argv = [
            sys.executable, "-m", "celery", "-A", "collect", *(["--quiet"] if quiet else []),
            "worker",
            "--loglevel", loglevel, "--concurrency", str(concurrency),
            "--hostname", hostname, "--queues", settings.CELERY_TASK_DEFAULT_QUEUE,
            "--pool", pool, "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        os.execv(sys.executable, argv)  # noqa: S606 (replace this process: signals reach celery)
