"""``collect web``: the web server alone, for production and Docker.

gunicorn manages the processes (restarts, graceful stop on SIGTERM) and each
process is an uvicorn event loop serving Django over ASGI (``collect.asgi``).
The event loop holds any number of slow connections (headers or bodies sent a
byte at a time) without tying up a worker, so the server holds by itself with
no proxy in front; sync gunicorn workers were stalled by 12 such clients.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from collect.env import env_int, env_str


class Command(BaseCommand):
    help = "Run the web server (gunicorn with uvicorn workers) on --bind."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default=env_str("COLLECT_BIND", "127.0.0.1:8000"))
        parser.add_argument("--workers", type=int, default=env_int("WEB_WORKERS", 2))

    def handle(self, *args: Any, bind: str, workers: int, **options: Any) -> None:
        # X-Forwarded-For/-Proto are believed only from these addresses (none by
        # default): anyone else could claim to be anybody, or to use HTTPS.
        trusted = ",".join(settings.COLLECT_TRUSTED_PROXIES)
        argv = [
            sys.executable, "-m", "gunicorn", "collect.asgi:application",
            "--worker-class", "uvicorn_worker.UvicornWorker",
            "--bind", bind, "--workers", str(workers),
            "--timeout", "600", "--access-logfile", "-", "--forwarded-allow-ips", trusted,
            "--no-control-socket",
        ]  # fmt: skip
        os.execv(sys.executable, argv)  # noqa: S606 (replace this process: signals reach gunicorn)
