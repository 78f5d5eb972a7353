"""``collect serve``: everything on one machine, one command.

Migrates the database, checks that the port is free, runs the web server and a
Celery worker, and once the web server answers creates an admin user on the
first start and prints a box with the address and the admin login (the
password only then, once; ``collect reset-admin-password`` makes a new one).
Runs until Ctrl-C. A worker that dies on its own is started again (its jobs
continue from their checkpoints when their lease runs out); the command exits
non-zero if the web server dies, or the worker dies 5 times within a minute.
"""

from __future__ import annotations

import errno
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from typing import IO, Any, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.panel import Panel

from collect.env import env_str

# How long the web server may take to answer its first connection.
START_TIMEOUT_SECONDS = 90
# A worker that dies is started again, unless it died this often within this window.
WORKER_RESTARTS_MAX = 5
WORKER_RESTART_WINDOW_SECONDS = 60


def split_bind(bind: str) -> tuple[str, int]:
    """``"127.0.0.1:8000"`` → ``("127.0.0.1", 8000)``; ``"[::1]:8000"`` → ``("::1", 8000)``.

    Raises ``CommandError`` for anything else, naming the setting to fix.
    """
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CommandError(
            f"COLLECT_BIND={bind!r} is not an address and port such as 127.0.0.1:8000."
        )
    return host.strip("[]"), int(port)


def ensure_port_free(bind: str) -> None:
    """Raise ``CommandError`` with one clear line if nothing can listen on ``bind``."""
    host, port = split_bind(bind)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As the web server will: a port left in TIME_WAIT by a stopped server is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CommandError(
                    f"Port {port} on {host} is already in use (another Collect, or another "
                    f"program). Stop it, or choose another port: make run PORT={port + 1} "
                    f"(or COLLECT_BIND={host}:{port + 1})."
                ) from None
            raise CommandError(f"Cannot listen on {bind}: {exc.strerror}.") from None


def site_url(bind: str) -> str:
    """``http://host:port`` (no trailing slash) for a browser on this machine to reach ``bind``."""
    host, port = split_bind(bind)
    shown = "127.0.0.1" if host in {"0.0.0.0", "::"} else host  # noqa: S104
    return f"http://{shown}:{port}" if ":" not in shown else f"http://[{shown}]:{port}"


def answers(bind: str) -> bool:
    """Whether something accepts TCP connections on ``bind`` now."""
    host, port = split_bind(bind)
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


class Command(BaseCommand):
    help = "Run the web server and a worker together (migrates and creates an admin first)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default=env_str("COLLECT_BIND", "127.0.0.1:8000"))
        parser.add_argument("--concurrency", type=int, default=settings.CELERY_WORKER_CONCURRENCY)

    def handle(self, *args: Any, bind: str, concurrency: int, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        ensure_port_free(bind)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLLECT_DATA_DIR": str(settings.DATA_DIR)}
        web = subprocess.Popen([sys.executable, "-m", "collect", "web", "--bind", bind], env=env)
        # Without Celery's 30-line banner, which would push the login box off the screen.
        worker_command = [sys.executable, "-m", "collect", "worker", "--quiet"]
        worker_command += ["--concurrency", str(concurrency)]
        # The worker in a session of its own: Ctrl-C in a terminal signals the whole
        # foreground process group, and a Celery worker whose pool processes get the
        # signal too can hang at exit (they die before the pool is closed). Here only
        # this process gets it, and stops the worker by signalling its main process.
        worker = subprocess.Popen(worker_command, env=env, start_new_session=True)
        children = [web, worker]
        restarts: list[float] = []  # when the worker was started again, monotonic seconds
        stopping = False

        def shutdown(signum: int, _frame: Any) -> None:
            nonlocal stopping
            stopping = True
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGINT, shutdown)
        signal.signal(signal.SIGTERM, shutdown)
        signal.signal(signal.SIGHUP, shutdown)  # the terminal closed: the worker hears no HUP
        failed = ""
        started = False
        try:
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while not answers(bind) and not stopping:
                if web.poll() is not None or worker.poll() is not None:
                    break
                if time.monotonic() > deadline:
                    failed = f"The web server did not answer on {bind} within "
                    failed += f"{START_TIMEOUT_SECONDS} s; see the lines above."
                    break
                time.sleep(0.2)
            if not failed and all(child.poll() is None for child in children) and not stopping:
                # Only now: a start that fails before this point creates no admin, so
                # no password is made that nobody saw; the next start makes it.
                self.banner(bind, self.ensure_admin())
                started = True
                if not env_str("COLLECT_SITE_URL"):
                    # So that `collect import-teams …` run beside it prints links that work.
                    settings.SITE_URL_FILE.write_text(site_url(bind) + "\n", encoding="utf-8")
            while started and not failed and not stopping:
                time.sleep(0.5)
                if stopping or web.poll() is not None:
                    break
                if worker.poll() is None:
                    continue
                # A worker that died (killed, out of memory) is started again, as a
                # process supervisor would; its jobs continue from their checkpoints
                # once their lease runs out. One that keeps dying is a real fault.
                now = time.monotonic()
                restarts = [t for t in restarts if now - t < WORKER_RESTART_WINDOW_SECONDS]
                if len(restarts) >= WORKER_RESTARTS_MAX:
                    failed = f"The worker stopped {len(restarts) + 1} times within "
                    failed += f"{WORKER_RESTART_WINDOW_SECONDS} s (last exit code "
                    failed += f"{worker.returncode}); see the lines above."
                    break
                restarts.append(now)
                lease = settings.COLLECT_JOB_LEASE_SECONDS
                self.stderr.write(
                    f"The worker stopped on its own (exit code {worker.returncode}); "
                    f"starting a new one. A job it was running continues from its last "
                    f"checkpoint once its lease runs out (about {lease:g} s)."
                )
                worker = subprocess.Popen(worker_command, env=env, start_new_session=True)
                children[1] = worker
            dead = [c for c in children if c.poll() is not None]
            if dead and not stopping and not failed:
                name = "web server" if dead[0] is web else "worker"
                failed = f"The {name} stopped on its own (exit code {dead[0].returncode}); "
                failed += "see the lines above."
        finally:
            if not env_str("COLLECT_SITE_URL"):
                settings.SITE_URL_FILE.unlink(missing_ok=True)
            shutdown(signal.SIGTERM, None)
            for child in children:
                try:
                    child.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    child.kill()
        if failed:
            raise CommandError(failed)  # the password, if any, was in the box above
        self.stdout.write("Collect stopped.")

    def banner(self, bind: str, login: tuple[str, str]) -> None:
        """The box a person looks for: where Collect runs and how to log in."""
        url = site_url(bind) + "/"
        username, password = login
        lines = [f"[bold]Collect is running:[/bold] {url}", ""]
        if password:
            lines += [
                f"user name: {username}",
                f"password:  {password}",
                "(shown only this once; collect reset-admin-password makes a new one)",
            ]
        else:
            lines += [
                f"Log in as {username} (or your own user).",
                "Forgot the password? .venv/bin/collect reset-admin-password",
            ]
        lines += ["", f"Data in {settings.DATA_DIR}. Press Ctrl-C to stop."]
        # The stream under Django's OutputWrapper, which would add a newline to each write.
        out = cast("IO[str]", self.stdout._out)
        console = Console(file=out, width=max(80, len(url) + 30), highlight=False)
        console.print(Panel("\n".join(lines), expand=False))

    def ensure_admin(self) -> tuple[str, str]:
        """(user name, password) of the admin; the password only when created now."""
        User = get_user_model()
        first = User.objects.filter(is_superuser=True).order_by("pk").first()
        if first is not None:
            return first.get_username(), ""
        username = env_str("COLLECT_ADMIN_USER", "admin")
        password = env_str("COLLECT_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        # An address of its own, so that an export from the page or the CLI has
        # somewhere to go; on a laptop mail is written to files (EMAIL_FILE_PATH).
        email = env_str("COLLECT_ADMIN_EMAIL", "admin@example.com")
        User.objects.create_superuser(username=username, email=email, password=password)
        return username, password
