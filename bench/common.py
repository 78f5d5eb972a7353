"""Shared by the benchmarks: Django set-up, a real worker process, RSS sampling, tables."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    """Benchmarks use the normal settings; by default their own data dir under var/."""
    os.environ.setdefault("COLLECT_DATA_DIR", str(ROOT / "var" / "bench"))
    os.environ.setdefault("COLLECT_QUEUE", "collect-bench")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collect.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def bench_user() -> Any:
    from django.contrib.auth.models import Permission, User

    user = User.objects.get_or_create(username="bench", defaults={"email": "bench@example.com"})[0]
    # Exports need the permission (personal data), and go to the user's own address.
    if user.email != "bench@example.com":
        user.email = "bench@example.com"
        user.save(update_fields=["email"])
    user.user_permissions.add(
        Permission.objects.get(codename="export_responses", content_type__app_label="responses")
    )
    return user


class WorkerProcess:
    """``collect worker`` in its own process group, with peak-RSS sampling of the group."""

    def __init__(self, concurrency: int = 2, env: dict[str, str] | None = None) -> None:
        self.log = open(Path(os.environ["COLLECT_DATA_DIR"]) / "bench-worker.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "collect", "worker", "--concurrency", str(concurrency)],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.peak_rss = 0
        self._stop = threading.Event()
        deadline = time.monotonic() + 60
        log_path = Path(self.log.name)
        while b" ready." not in log_path.read_bytes():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(log_path.read_text())
            time.sleep(0.1)
        threading.Thread(target=self._sample, daemon=True).start()

    def _pids(self) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-g", str(self.proc.pid)], capture_output=True, text=True, check=False
        ).stdout
        return [int(p) for p in out.split()]

    def _sample(self) -> None:
        while not self._stop.is_set():
            for pid in self._pids():
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            self.peak_rss = max(self.peak_rss, int(line.split()[1]) * 1024)
                except OSError:
                    pass
            time.sleep(0.05)

    def reset_peak(self) -> None:
        self.peak_rss = 0

    def stop(self) -> None:
        self._stop.set()
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def wait_state(job: Any, states: set[str], timeout: float = 3600, interval: float = 0.005) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        job.refresh_from_db()
        if job.state in states:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job.id} stuck in {job.state}")
        time.sleep(interval)


def table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for r in cells[1:]:
        lines.append("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
    return "\n".join(lines)


def database_label() -> str:
    from django.conf import settings
    from django.db import connection

    broker = settings.CELERY_BROKER_URL.split("://")[0]
    return f"{connection.vendor}+{broker}"


class S3Server:
    """``moto_server`` (a real S3 endpoint, objects in its memory) on a free loopback port.

    Creates the bucket ``collect-bench``; ``env`` is what a web server or worker
    needs to keep its job files there (collect/settings.py's AWS_* variables),
    ``storage()`` the same bucket for this process. Its output goes to ``log``.
    Raises RuntimeError if it does not answer within 30 s.
    """

    BUCKET = "collect-bench"

    def __init__(self, log: Path) -> None:
        import socket

        import boto3

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        self.endpoint = f"http://127.0.0.1:{port}"
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            # Not from the project's folder: moto imports the PyPI package ``responses``,
            # which our app of that name would hide.
            cwd=log.parent,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.env = {
            "AWS_STORAGE_BUCKET_NAME": self.BUCKET,
            "AWS_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",  # moto takes any key
            "AWS_S3_REGION_NAME": "us-east-1",
        }
        client = boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                client.create_bucket(Bucket=self.BUCKET)
                break
            except Exception:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"moto_server did not start: see {log}") from None
                time.sleep(0.2)

    def storage(self) -> Any:
        """django-storages' S3 backend on the bucket, as the web server and workers use it."""
        from storages.backends.s3 import S3Storage

        return S3Storage(
            bucket_name=self.BUCKET, endpoint_url=self.endpoint,
            access_key=self.env["AWS_ACCESS_KEY_ID"],
            secret_key=self.env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
        )  # fmt: skip

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
