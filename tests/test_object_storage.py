"""Job files in a bucket: a real S3 server (moto's server mode), web and workers sharing no disk.

The test process plays the web side; each worker gets a data folder of its
own (files, temporary files, mail), so the two share only the database, the
broker and the bucket, as on two hosts. Exports here are several S3 parts
long (more than 5 MiB), so pauses, stops and killed workers land between
committed parts.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from django.conf import settings as django_settings
from django.core.files.storage import default_storage
from django.test import Client

from jobs import retention, services
from jobs.models import Job
from responses.fake import create_responses
from responses.models import FormResponse
from tests.test_export_helpers import (
    END,
    START,
    attached_csv,
    expected,
    file_of,
    free_port,
    link_path,
    one_mail,
    parse,
    start,
)
from tests.workers import wait_for, wait_processed, wait_state

BUCKET = "collect-test"
# About 6.3 MB of CSV: a part of 5 MiB and a last one.
ROWS = 60_000


class S3Server:
    """``moto_server`` on a free loopback port, with the tests' bucket."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            # Not from the project's folder: moto needs the PyPI package ``responses``,
            # which our app of that name would hide.
            cwd=log.parent,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        wait_for(self._up, timeout=30, interval=0.2, what="the S3 server")
        self.client.create_bucket(Bucket=BUCKET)

    def _up(self) -> bool:
        try:
            self.client.list_buckets()
        except Exception:
            return False
        return True

    def settings(self) -> dict[str, Any]:
        return {
            "AWS_STORAGE_BUCKET_NAME": BUCKET,
            "AWS_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_S3_REGION_NAME": "us-east-1",
            # What collect/settings.py sets by default with a bucket.
            "AWS_QUERYSTRING_EXPIRE": "300",
            "AWS_S3_SIGNATURE_VERSION": "s3v4",
            "AWS_S3_MAX_MEMORY_SIZE": str(8 * 1024**2),
        }

    def env(self, folder: Path, **extra: str) -> dict[str, str]:
        """A worker as on another host: its own data folder; bucket, database, broker shared."""
        folder.mkdir(parents=True, exist_ok=True)
        return {
            **self.settings(),
            "COLLECT_DATA_DIR": str(folder),
            "MEDIA_ROOT": str(folder / "files"),
            "COLLECT_BROKER_DIR": str(django_settings.BROKER_DIR),
            "SECRET_KEY": django_settings.SECRET_KEY,
            "COLLECT_EXPORT_PART_BYTES": str(5 * 1024**2),  # S3's least
            # Longer than the tests' 3 s: a first connection to the store takes seconds
            # on a busy two-core machine, and a take-over here would test the lease.
            "COLLECT_JOB_LEASE_SECONDS": "10",
            **extra,
        }

    def keys(self, prefix: str) -> list[str]:
        found = self.client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return [item["Key"] for item in found.get("Contents", [])]

    def uploads(self, prefix: str) -> list[str]:
        found = self.client.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
        return [u["Key"] for u in found.get("Uploads", [])]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture(scope="session")
def s3(worker_log_dir: Path) -> Iterator[S3Server]:
    server = S3Server(worker_log_dir / "moto.log")
    yield server
    server.stop()


@pytest.fixture
def bucket(s3: S3Server, settings: Any) -> S3Server:
    """This process (the web side) stores job files in the bucket."""
    for name, value in s3.settings().items():
        setattr(settings, name, int(value) if value.isdigit() else value)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage"},
    }
    return s3


def folder_of(job: Job) -> str:
    return job.param("file").rpartition("/")[0] + "/"


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_it_imports_an_upload_that_is_only_in_the_bucket(  # type: ignore[no-untyped-def]
    bucket, make_worker, api, tmp_path
):
    rows = "".join(f"team {n},about {n},m{n},a;b\n" for n in range(3000))
    upload = io.BytesIO(("name,description,manager,members\n" + rows).encode())
    upload.name = "teams.csv"
    answer = api.post("/api/imports/teams/", {"file": upload}, format="multipart")
    assert answer.status_code == 202, answer.content
    job = Job.objects.get(id=answer.json()["task_id"])
    assert bucket.keys(job.param("file")) == [job.param("file")]
    assert not (Path(django_settings.MEDIA_ROOT) / job.param("file")).exists()

    host = tmp_path / "worker-host"
    make_worker(env=bucket.env(host, COLLECT_IMPORT_BATCH_SIZE="500"))
    wait_state(job, "succeeded")
    assert job.result["imported"] == 3000
    # The worker spooled the upload to a temporary file and removed it.
    assert files_under(host / "tmp") == []


def test_it_mails_an_export_written_in_parts_and_links_a_large_one(  # type: ignore[no-untyped-def]
    bucket, make_worker, smtp, inbox, user, tmp_path
):
    create_responses(ROWS, start=START, end=END, seed=11)
    env = smtp.env(COLLECT_EXPORT_BATCH_ROWS="3000", COLLECT_EXPORT_ATTACH_MAX_BYTES="1000000")
    make_worker(env=bucket.env(tmp_path / "w", **env))
    job = start(user, None, None)
    wait_state(job, "succeeded", timeout=180)
    assert len(job.checkpoint["upload"]["parts"]) == 1  # the last part is uploaded at the end
    msg = one_mail(inbox)
    assert job.result["delivery"] == "link"
    data = file_of(job)
    assert parse(data) == expected(FormResponse.objects.all())
    assert bucket.uploads(folder_of(job)) == []

    # The link: permission checked by the site, then a short-lived presigned URL.
    owner = Client()
    owner.force_login(user)
    got = owner.get(link_path(msg))
    assert got.status_code == 302
    assert got["Location"].startswith(f"{bucket.endpoint}/{BUCKET}/{job.param('file')}")
    assert "X-Amz-Expires=300" in got["Location"]
    with urllib.request.urlopen(got["Location"]) as fetched:
        assert fetched.read() == data
        assert 'filename="responses_start_end.csv"' in fetched.headers["Content-Disposition"]
    assert owner.get(f"/tasks/{job.id}/result").status_code == 302

    # Retention removes the object.
    Job.objects.filter(id=job.id).update(finished_at=job.finished_at - dt_days(31))
    assert retention.retention_sweep() == 1
    assert bucket.keys(folder_of(job)) == []


def test_a_small_export_is_attached(bucket, make_worker, smtp, inbox, user, tmp_path):  # type: ignore[no-untyped-def]
    create_responses(500, start=START, end=END, seed=12)
    make_worker(env=bucket.env(tmp_path / "w", **smtp.env()))
    job = start(user, None, None, format="geojson")
    wait_state(job, "succeeded")
    name, data = attached_csv(one_mail(inbox))
    assert name.endswith(".geojson")
    assert data == file_of(job)
    assert data.rstrip().endswith(b"]}")


def test_a_workbook_is_assembled_from_its_part_object(  # type: ignore[no-untyped-def]
    bucket, make_worker, smtp, inbox, user, tmp_path
):
    from openpyxl import load_workbook

    create_responses(700, start=START, end=END, seed=16)
    host = tmp_path / "w"
    make_worker(env=bucket.env(host, **smtp.env()))
    job = start(user, None, None, format="xlsx")
    wait_state(job, "succeeded")
    name, data = attached_csv(one_mail(inbox))
    assert name.endswith(".xlsx") and data == file_of(job)
    sheet = load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    assert sum(1 for _ in sheet.iter_rows()) == 701
    assert bucket.keys(folder_of(job)) == [job.param("file")]  # the part object is gone
    assert files_under(host / "tmp") == []  # and so is the worker's temporary folder


def test_it_pauses_on_one_host_and_resumes_on_another(  # type: ignore[no-untyped-def]
    bucket, make_worker, smtp, inbox, user, tmp_path
):
    create_responses(ROWS, start=START, end=END, seed=13)
    env = smtp.env(COLLECT_EXPORT_BATCH_ROWS="3000", COLLECT_EXPORT_THROTTLE_SECONDS="0.05")
    first = make_worker(env=bucket.env(tmp_path / "a", **env))
    job = start(user, None, None)
    wait_for(lambda: parts(job) >= 1, timeout=120, what="a first committed part")
    services.job_pause(job=job, by=user)
    wait_state(job, "paused")
    assert job.processed < ROWS
    first.stop()
    make_worker(env=bucket.env(tmp_path / "b", **env))
    services.job_resume(job=Job.objects.get(id=job.id), by=user)
    wait_state(job, "succeeded", timeout=180)
    assert job.processed == ROWS  # rows read again after the rewind are not counted twice
    assert parse(file_of(job)) == expected(FormResponse.objects.all())
    assert bucket.uploads(folder_of(job)) == []
    one_mail(inbox)


def test_a_stop_leaves_no_object_and_no_upload(bucket, make_worker, smtp, inbox, user, tmp_path):  # type: ignore[no-untyped-def]
    create_responses(ROWS, start=START, end=END, seed=14)
    env = smtp.env(COLLECT_EXPORT_BATCH_ROWS="3000", COLLECT_EXPORT_THROTTLE_SECONDS="0.05")
    make_worker(env=bucket.env(tmp_path / "w", **env))
    job = start(user, None, None)
    wait_for(lambda: parts(job) >= 1, timeout=120, what="a first committed part")
    assert bucket.uploads(folder_of(job)) == [job.param("file")]
    services.job_stop(job=job, by=user)
    wait_state(job, "stopped")
    assert bucket.keys(folder_of(job)) == []
    assert bucket.uploads(folder_of(job)) == []
    time.sleep(0.5)
    assert inbox.messages == []


@pytest.mark.servers
def test_a_killed_worker_completes_the_object_once_with_exact_bytes(  # type: ignore[no-untyped-def]
    bucket, make_worker, smtp, inbox, user, tmp_path
):
    create_responses(ROWS, start=START, end=END, seed=15)
    env = smtp.env(COLLECT_EXPORT_BATCH_ROWS="3000", COLLECT_EXPORT_THROTTLE_SECONDS="0.05")
    first = make_worker(env=bucket.env(tmp_path / "a", **env))
    job = start(user, None, None)
    wait_for(lambda: parts(job) >= 1, timeout=120, what="a first committed part")
    wait_processed(job, Job.objects.get(id=job.id).processed + 6000)  # rows past the part
    first.kill()
    job.refresh_from_db()
    assert job.state == "running" and job.processed < ROWS
    make_worker(env=bucket.env(tmp_path / "b", **env))
    wait_state(job, "succeeded", timeout=180)
    assert job.attempts >= 2
    assert job.processed == ROWS
    data = attached_or_file(inbox, job)
    assert parse(data) == expected(FormResponse.objects.all())
    assert bucket.keys(folder_of(job)) == [job.param("file")]
    assert bucket.uploads(folder_of(job)) == []
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert len(rows) == ROWS + 1


def parts(job: Job) -> int:
    job.refresh_from_db()
    return len(((job.checkpoint or {}).get("upload") or {}).get("parts", []))


def attached_or_file(inbox: Any, job: Job) -> bytes:
    one_mail(inbox)
    return file_of(job)


def dt_days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def test_the_bucket_fixture_really_stores_in_the_bucket(bucket) -> None:  # type: ignore[no-untyped-def]
    # So that no test above can pass on the local folder.
    from jobs.files import bucket as current

    store = current()
    assert store is not None and store.name == BUCKET
    name = default_storage.save("probe/x.txt", io.BytesIO(b"x"))
    assert bucket.keys("probe/") == ["probe/x.txt"]
    default_storage.delete(name)
