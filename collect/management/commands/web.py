"""``collect web``: the web server alone (gunicorn), for production and Docker."""

from __future__ import annotations

import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run the web server (gunicorn) on --bind."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default=os.environ.get("COLLECT_BIND", "127.0.0.1:8000"))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", "2")))
        parser.add_argument("--threads", type=int, default=int(os.environ.get("WEB_THREADS", "4")))

    def handle(self, *args: Any, bind: str, workers: int, threads: int, **options: Any) -> None:
        argv = [
            sys.executable, "-m", "gunicorn", "collect.wsgi:application",
            "--bind", bind, "--workers", str(workers), "--threads", str(threads),
            "--timeout", "600", "--access-logfile", "-", "--forwarded-allow-ips", "*",
            "--no-control-socket",
        ]  # fmt: skip
        # Uploads may be large and slow: a long timeout, and threads so one upload
        # does not hold up everyone else.
        os.execv(sys.executable, argv)  # noqa: S606 (replace this process: signals reach gunicorn)
