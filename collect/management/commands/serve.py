"""``collect serve``: everything on one machine, one command.

Migrates the database, creates an admin user on the first start (and prints
its password once), then runs the web server and a Celery worker until Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run the web server and a worker together (migrates and creates an admin first)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default=os.environ.get("COLLECT_BIND", "127.0.0.1:8000"))
        parser.add_argument("--concurrency", type=int, default=settings.CELERY_WORKER_CONCURRENCY)

    def handle(self, *args: Any, bind: str, concurrency: int, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        self.ensure_admin()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLLECT_DATA_DIR": str(settings.DATA_DIR)}
        web = subprocess.Popen([sys.executable, "-m", "collect", "web", "--bind", bind], env=env)
        worker = subprocess.Popen(
            [sys.executable, "-m", "collect", "worker", "--concurrency", str(concurrency)],
            env=env,
        )
        children = [web, worker]
        self.stdout.write(f"Collect is running on http://{bind}/ (data in {settings.DATA_DIR}).")
        self.stdout.write("Press Ctrl-C to stop.")

        def shutdown(signum: int, _frame: Any) -> None:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGINT, shutdown)
        signal.signal(signal.SIGTERM, shutdown)
        try:
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
        finally:
            shutdown(signal.SIGTERM, None)
            for child in children:
                try:
                    child.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    child.kill()
        self.stdout.write("Collect stopped.")

    def ensure_admin(self) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        username = os.environ.get("COLLECT_ADMIN_USER", "admin")
        password = os.environ.get("COLLECT_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(self.style.SUCCESS("Created the admin user (shown only this once):"))
        self.stdout.write(f"    user name: {username}\n    password:  {password}")
