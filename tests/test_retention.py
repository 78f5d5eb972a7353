"""Retention and quota of the files jobs keep (uploads, exports, error reports).

Retention runs in a real worker's periodic sweep with a short setting; the
page, the API and the download then say when the file was deleted. The quota
refuses an upload with 413 before any of its body is stored.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from jobs import retention
from jobs.models import Job, State
from responses import mail
from tests.test_export_helpers import start as export_start
from tests.test_import_helpers import fake_csv
from tests.test_import_helpers import start as import_start
from tests.workers import wait_for, wait_state

SECONDS = 3
DAYS = SECONDS / 86400


def stored_bytes(*names: str) -> int:
    return sum(default_storage.size(n) for n in names if default_storage.exists(n))


def text(response) -> str:  # type: ignore[no-untyped-def]
    return " ".join(response.content.decode().split())


@pytest.mark.servers
@pytest.mark.timeout(180)
def test_files_are_deleted_after_the_retention_period(  # type: ignore[no-untyped-def]
    make_worker, user, tmp_path, settings, browser_client, api
):
    settings.COLLECT_RETENTION_DAYS = DAYS  # the pages read it too
    make_worker(env={"COLLECT_RETENTION_DAYS": repr(DAYS)})
    imported = wait_state(import_start(user, fake_csv(tmp_path, 2000)), State.SUCCEEDED)
    exported = wait_state(export_start(user), State.SUCCEEDED)
    upload, export = imported.param("file"), exported.param("file")
    before = stored_bytes(upload, export)
    assert before > 0 and default_storage.exists(upload) and default_storage.exists(export)

    for job in (imported, exported):
        wait_for(
            Job.objects.filter(id=job.id).exclude(files_deleted_at=None).exists,
            timeout=60,
            what=f"the sweep to delete the files of {job.kind}",
        )
        job.refresh_from_db()
    after = stored_bytes(upload, export)
    print(f"kept files: {before} bytes before the retention sweep, {after} after")
    assert after == 0
    assert not default_storage.exists(upload) and not default_storage.exists(export)

    day = timezone.localtime(exported.files_deleted_at).date().isoformat()
    said = f"The export file was deleted on {day} after {SECONDS} s."
    assert said in text(browser_client.get(f"/tasks/{exported.id}/"))
    download = browser_client.get(f"/tasks/{exported.id}/result")
    assert (download.status_code, download.content.decode()) == (410, said)
    link = browser_client.get(f"/export_data/download/{mail.download_token(exported)}")
    assert link.status_code == 410 and said in text(link)
    body = api.get(f"/api/tasks/{exported.id}/").json()
    assert (body["files_deleted"], body["links"]["result"]) == (said, None)
    assert body["files_deleted_at"]

    day = timezone.localtime(imported.files_deleted_at).date().isoformat()
    said = f"The uploaded file was deleted on {day} after {SECONDS} s."
    assert said in text(browser_client.get(f"/tasks/{imported.id}/"))
    assert api.get(f"/api/tasks/{imported.id}/").json()["files_deleted"] == said


def test_the_message_names_the_period_in_days(user, settings):  # type: ignore[no-untyped-def]
    settings.COLLECT_RETENTION_DAYS = 30
    job = Job(kind="export_responses", owner=user, state=State.SUCCEEDED)
    job.files_deleted_at = timezone.make_aware(timezone.datetime(2026, 12, 1, 12, 0))
    assert retention.files_deleted_message(job) == (
        "The export file was deleted on 2026-12-01 after 30 days."
    )
    job.error_report_file = "reports/x.csv"
    job.state = State.FAILED
    job.kind = "import_teams"
    assert retention.files_deleted_message(job) == (
        "The error report was deleted on 2026-12-01 after 30 days."
    )


def _temp_files() -> set[str]:
    return {p.name for p in Path(settings.FILE_UPLOAD_TEMP_DIR).iterdir()}


def _uploads() -> set[str]:
    folder = Path(settings.MEDIA_ROOT) / "imports" / "teams"
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


@pytest.mark.servers
def test_an_upload_over_the_quota_is_refused_before_it_is_stored(  # type: ignore[no-untyped-def]
    api, browser_client, user, tmp_path, settings
):
    settings.COLLECT_USER_QUOTA_BYTES = 100_000
    settings.COLLECT_RETENTION_DAYS = 30
    first = fake_csv(tmp_path, 800, seed=1)  # about 57 kB
    size = first.stat().st_size
    assert 50_000 < size < 100_000
    with first.open("rb") as fh:
        assert api.post("/api/imports/teams/", {"file": fh}, format="multipart").status_code == 202
    temp, stored = _temp_files(), _uploads()

    said = (
        f"This upload ({_size(size)}) would take your stored files to {_size(2 * size)}, "
        f"over your quota of 97.7 KiB (you use {_size(size)}). Wait until older files are "
        "deleted (files are deleted 30 days after their job ends, or ask the person who "
        "runs Collect for a larger quota), or upload a smaller file."
    )
    with first.open("rb") as fh:
        refused = api.post("/api/imports/teams/", {"file": fh}, format="multipart")
    assert (refused.status_code, refused.json()) == (413, {"detail": said})
    with first.open("rb") as fh:
        page = browser_client.post("/import_teams/", {"file": fh})
    assert page.status_code == 413 and " ".join(said.split()) in text(page)
    assert (_temp_files(), _uploads()) == (temp, stored)  # nothing of the body was kept
    assert Job.objects.filter(owner=user).count() == 1


def _size(n: int) -> str:
    """In binary units, named as such (``55.2 KiB``, not Django's ``56.5\xa0KB``)."""
    from jobs.formatting import size

    return size(n)
