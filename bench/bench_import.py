"""Team import benchmark: throughput, peak memory, stop latency and rollback time.

Starts its own web server (`collect web`) and one worker on the configured
database and broker, uploads a generated CSV over HTTP like a user would,
and prints a table. Run it with the environment of the installation to
measure, for example::

    COLLECT_DATA_DIR=/tmp/bench .venv/bin/python bench/bench_import.py 100000 1000000
    DATABASE_URL=postgres://postgres@127.0.0.1/collect_bench \\
        CELERY_BROKER_URL=amqp://guest:guest@127.0.0.1:5672// \\
        .venv/bin/python bench/bench_import.py 100000 --batch-size 1000 5000 20000

Each size is imported once to the end (rows/s from "upload accepted" to
"succeeded") and once more to be stopped half-way (stop latency = stop
request until ``stopped``, which includes deleting what it wrote).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collect.settings")
os.environ.setdefault("COLLECT_QUEUE", f"bench-{os.getpid()}")
os.environ.setdefault("COLLECT_BROKER_POLL_SECONDS", "0.05")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402

from collect.tokens import token_create  # noqa: E402
from jobs.models import Job  # noqa: E402
from teams.fake import write_fake_teams  # noqa: E402
from teams.models import Team  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mib(pgid: int) -> float:
    """The largest peak RSS (VmHWM) of any process in the group, in MiB."""
    peak = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getpgid(int(proc.name)) != pgid:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except (OSError, ProcessLookupError):
            continue
    return peak / 1024


def spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def multipart(
    path: Path, boundary: str, fields: dict[str, str] | None = None
) -> tuple[int, Iterator[bytes]]:
    """A multipart/form-data body streaming ``path`` as ``file`` after the form ``fields``.

    Returns (length in bytes, an iterator of chunks of at most 1 MiB).
    """
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in (fields or {}).items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{path.name}"\r\nContent-Type: text/csv\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        with path.open("rb") as fh:
            while chunk := fh.read(1024 * 1024):
                yield chunk
        yield tail

    return len(head) + path.stat().st_size + len(tail), body()


class Bench:
    def __init__(
        self, batch_size: int, workdir: Path, env: dict[str, str] | None = None, name: str = ""
    ) -> None:
        """A web server and a worker; ``env`` adds to theirs (a bucket), ``name`` to their logs."""
        self.port = free_port()
        env = {
            **os.environ, "COLLECT_IMPORT_BATCH_SIZE": str(batch_size), "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }  # fmt: skip
        self.web = spawn(
            [sys.executable, "-m", "collect", "web", "--bind", f"127.0.0.1:{self.port}",
             "--workers", "1"], env, workdir / f"web{name}.log",
        )  # fmt: skip
        self.worker = spawn(
            [sys.executable, "-m", "celery", "-A", "collect", "worker", "--concurrency", "1",
             "--queues", env.get("COLLECT_QUEUE", settings.CELERY_TASK_DEFAULT_QUEUE),
             "--loglevel", "WARNING",
             "--without-gossip", "--without-mingle", "--without-heartbeat",
             # its own name: a second "celery@host" on one broker is refused (pidbox locked)
             "--hostname", f"bench-{os.getpid()}{name}@%h"], env,
            workdir / f"worker{name}.log",
        )  # fmt: skip
        user, _ = User.objects.get_or_create(username="bench")
        self.token = token_create(user=user)[0]
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the web server did not start") from None
                time.sleep(0.2)
        time.sleep(3)  # the worker's start-up

    def request(self, method: str, url: str, body: object = None, length: int = 0,
                content_type: str = "") -> dict[str, object]:  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json"}
        if content_type:
            headers |= {"Content-Type": content_type, "Content-Length": str(length)}
        conn.request(method, url, body=body, headers=headers)  # type: ignore[arg-type]
        answer = conn.getresponse()
        data = json.loads(answer.read() or b"{}")
        if answer.status >= 300:
            raise RuntimeError(f"{method} {url}: {answer.status} {data}")
        return data  # type: ignore[no-any-return]

    def upload(self, path: Path) -> Job:
        boundary = uuid.uuid4().hex
        length, body = multipart(path, boundary)
        data = self.request(
            "POST", "/api/imports/teams/", body, length, f"multipart/form-data; boundary={boundary}"
        )
        return Job.objects.get(id=data["task_id"])

    def wait(self, job: Job, states: set[str], processed: int = 0) -> float:
        while True:
            job.refresh_from_db()
            if job.state in states or (processed and job.processed >= processed):
                return time.monotonic()
            if job.state in {"failed", "stopped", "succeeded"}:
                raise RuntimeError(f"job {job.id} is {job.state}: {job.error}")
            time.sleep(0.02)

    def close(self) -> tuple[float, float]:
        peaks = peak_rss_mib(self.web.pid), peak_rss_mib(self.worker.pid)
        for proc in (self.web, self.worker):
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in (self.web, self.worker):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        return peaks


def fake_file(workdir: Path, n: int, fmt: str) -> Path:
    """The benchmark's input: CSV with commas or semicolons, or an .xlsx workbook."""
    suffix = "xlsx" if fmt == "xlsx" else "csv"
    path = workdir / f"teams-{n}-{fmt}.{suffix}"
    if path.exists():
        return path
    if fmt != "xlsx":
        with path.open("w", encoding="utf-8", newline="") as fh:
            write_fake_teams(fh, n, seed=1, delimiter=";" if fmt == "semicolon" else ",")
        return path
    import csv
    import io

    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    text = io.StringIO(newline="")
    write_fake_teams(text, n, seed=1)
    text.seek(0)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Teams")
    for row in csv.reader(text):
        cells = []
        for value in row:
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"  # text, even when it starts with "=" like a formula
            cells.append(cell)
        sheet.append(cells)
    book.save(path)
    return path


def run(n: int, batch_size: int, workdir: Path, stop: bool, fmt: str = "csv") -> dict[str, object]:
    path = fake_file(workdir, n, fmt)
    bench = Bench(batch_size, workdir)
    try:
        started = time.monotonic()
        job = bench.upload(path)
        accepted = time.monotonic()
        done = bench.wait(job, {"succeeded"})
        assert Team.objects.filter(job=job).count() == n, "row count differs"
        figures: dict[str, object] = {
            "format": fmt,
            "rows": n,
            "batch": batch_size,
            "MiB": round(path.stat().st_size / 1024**2, 1),
            "upload s": round(accepted - started, 2),
            "import s": round(done - accepted, 2),
            "rows/s": round(n / (done - accepted)),
        }
        Team.objects.filter(job=job).delete()
        if stop:
            job = bench.upload(path)
            bench.wait(job, set(), processed=n // 2)
            asked = time.monotonic()
            bench.request("POST", f"/stop_task/{job.id}")
            stopped = bench.wait(job, {"stopped"})
            figures["stop at"] = job.processed
            figures["stop→stopped s"] = round(stopped - asked, 2)
            figures["left"] = Team.objects.filter(job=job).count()
    finally:
        web_peak, worker_peak = bench.close()
    figures["web MiB"] = round(web_peak)
    figures["worker MiB"] = round(worker_peak)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("sizes", nargs="+", type=int, help="rows per file")
    parser.add_argument(
        "--batch-size", nargs="+", type=int, default=[settings.COLLECT_IMPORT_BATCH_SIZE]
    )
    parser.add_argument("--no-stop", action="store_true", help="skip the stop measurement")
    parser.add_argument(
        "--format", nargs="+", default=["csv"], choices=["csv", "semicolon", "xlsx"],
        help="csv (commas), semicolon (CSV with semicolons), xlsx (a workbook)",
    )  # fmt: skip
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    workdir = Path(settings.DATA_DIR) / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, "
          f"broker: {settings.CELERY_BROKER_URL.split(':', 1)[0]}")  # fmt: skip
    rows = []
    for n in args.sizes:
        for fmt in args.format:
            for batch_size in args.batch_size:
                rows.append(run(n, batch_size, workdir, stop=not args.no_stop, fmt=fmt))
                print(rows[-1], flush=True)
    columns = list(rows[0])
    for row in rows[1:]:
        columns += [c for c in row if c not in columns]
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(str(row.get(c, "")) for c in columns))


if __name__ == "__main__":
    main()
