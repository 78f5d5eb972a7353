"""The job pages in a real Chromium, against a live server and a real worker.

Chromium is Debian's (``apt-get install chromium``); Playwright's own download
is not used. Set ``UPDATE_SCREENSHOTS=1`` to refresh docs/screenshots/*.png.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from jobs.models import CountRow, Job, State
from jobs.services import job_create
from tests.workers import wait_for, wait_processed, wait_state

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]
if Path(CHROMIUM).exists():
    from playwright.sync_api import Browser, Page, expect

    expect.set_options(timeout=30_000)


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    return {
        "executable_path": CHROMIUM,
        "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run",
        ],
    }  # fmt: skip


@pytest.fixture
def browser_context_args(browser_context_args: dict[str, Any], live_server: Any) -> dict[str, Any]:
    return {
        **browser_context_args,
        "base_url": live_server.url,
        "viewport": {"width": 1280, "height": 800},
    }


@pytest.fixture(autouse=True)
def csp_violations(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Every browser test fails on a Content-Security-Policy violation (Chromium logs each)."""
    found: list[str] = []
    if "page" in request.fixturenames:
        page = request.getfixturevalue("page")
        page.on(
            "console",
            lambda message: (
                found.append(f"{page.url}: {message.text}")
                if "Content Security Policy" in message.text
                else None
            ),
        )
    yield found
    assert found == []


def log_in(page: Page, user: User) -> None:
    page.goto("/tasks/")  # an anonymous visit goes to the login form and comes back
    page.get_by_label("User name").fill(user.username)
    page.get_by_label("Password").fill(f"{user.username}-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()


def slow_count(user: User, label: str, n: int = 5000) -> Job:
    """A count job of about 50 rows/s: slow enough to watch, pause and stop."""
    return job_create(
        kind="count", owner=user, params={"n": n, "batch": 10, "delay": 0.2}, label=label
    )


def done_rows(page: Page, scope: Any) -> int:
    """The rows done as the page shows them ("1,234 of 5,000 rows"); -1 before it counts."""
    found = re.search(r"([\d,]+) of [\d,]+ rows", scope.locator(".progress .numbers").inner_text())
    return int(found.group(1).replace(",", "")) if found else -1


def save_screenshot(page: Page, name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    if os.environ.get("UPDATE_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SCREENSHOTS / name)


@pytest.fixture
def seen_jobs(user: User) -> Iterator[None]:
    """Finished jobs of each kind, so the list looks like a list in use."""
    now = timezone.now()
    Job.objects.create(
        kind="import_teams", owner=user, label="teams-2024.csv", state=State.SUCCEEDED,
        processed=48_210, total=48_210, rate=21_455.3, run_seconds=2.25,
        started_at=now - dt.timedelta(minutes=42), finished_at=now - dt.timedelta(minutes=42),
    )  # fmt: skip
    Job.objects.create(
        kind="import_teams", owner=user, label="new-teams.csv", state=State.FAILED,
        processed=0, total=1_204, error="3 rows have problems; nothing was imported. "
        "Fix them and import the file again, or choose to skip bad rows.",
        started_at=now - dt.timedelta(minutes=30), finished_at=now - dt.timedelta(minutes=30),
    )  # fmt: skip
    Job.objects.create(
        kind="export_responses",
        owner=user,
        state=State.SUCCEEDED,
        label="Responses 2025-01-01 to 2025-03-31, for ana@example.com",
        processed=310_400,
        total=310_400,
        rate=88_114.0,
        run_seconds=3.5,
        started_at=now - dt.timedelta(minutes=12),
        finished_at=now - dt.timedelta(minutes=12),
    )
    yield


def test_watch_pause_resume_and_stop_a_job(
    page: Page, worker: Any, user: User, seen_jobs: None, tmp_path: Path
) -> None:
    log_in(page, user)
    job = slow_count(user, "Counting to 5,000")
    wait_processed(job, 1)
    page.goto("/tasks/")
    row = page.locator(f"#job-{job.id}")
    expect(row.locator(".state")).to_have_text("running")
    # The bar moves by itself: the page polls while a job runs.
    first = done_rows(page, row)
    assert first >= 1
    wait_for(lambda: done_rows(page, row) >= first + 30, timeout=30, what="the bar to move")
    expect(row).to_contain_text("rows/s")
    expect(row).to_contain_text("left")
    save_screenshot(page, "jobs.png", tmp_path)

    row.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("status")).to_contain_text("Counting to 5,000")
    expect(row.locator(".state")).to_have_text("paused")
    paused_at = wait_state(job, State.PAUSED).processed
    # The count stops: the page and the database stay where they are.
    time.sleep(1.5)
    job.refresh_from_db()
    assert job.processed == paused_at
    assert done_rows(page, row) == paused_at
    expect(page.locator("#jobs-live")).to_have_attribute("data-live", "false")
    expect(page.locator("#jobs-live")).not_to_have_attribute("hx-trigger", re.compile(".*"))

    row.get_by_role("button", name="Resume").click()
    expect(row.locator(".state")).to_have_text("running")
    wait_for(lambda: done_rows(page, row) > paused_at + 20, timeout=30, what="the count to go on")

    row.get_by_role("button", name="Stop").click()
    expect(page.get_by_role("heading", name="Stop this job?")).to_be_visible()
    page.get_by_role("button", name="Stop the job").click()
    expect(page).to_have_url(re.compile(r"/tasks/\?page=1$"))
    expect(row.locator(".state")).to_have_text("stopped")
    wait_state(job, State.STOPPED)
    assert not CountRow.objects.filter(job_id=job.id).exists()
    expect(row.get_by_role("button")).to_have_count(0)


def test_the_detail_page_follows_a_job_and_draws_its_throughput(
    page: Page, worker: Any, user: User, tmp_path: Path
) -> None:
    log_in(page, user)
    job = slow_count(user, "Counting to 5,000")
    wait_processed(job, 1)
    page.goto(f"/tasks/{job.id}/")
    expect(page.get_by_role("heading", name="Counting to 5,000")).to_be_visible()
    expect(page.locator("#job-live .state")).to_have_text("running")
    params = page.get_by_role("region", name="Parameters")
    expect(params).to_contain_text("Rows")
    expect(params).to_contain_text("5,000")
    expect(params).to_contain_text("Delay per batch (s)")
    live = page.locator("#job-live")
    first = done_rows(page, live)
    assert first >= 1
    wait_for(lambda: done_rows(page, live) >= first + 50, timeout=30, what="the numbers to move")
    # The chart is drawn on the server once a few samples exist (about one a second).
    expect(page.locator("figure.chart svg polyline")).to_be_visible(timeout=30_000)
    expect(page.locator("figure.chart figcaption")).to_contain_text(
        re.compile(r"over ([5-9]|\d\d) s of work: on average \d+ rows/s")
    )
    save_screenshot(page, "job.png", tmp_path)
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#job-live .state")).to_have_text("paused")
    expect(live).to_have_attribute("data-live", "false")


def test_upload_a_csv_and_watch_it_finish(
    page: Page, worker: Any, user: User, tmp_path: Path
) -> None:
    from teams.fake import write_fake_teams
    from teams.models import Team

    path = tmp_path / "our-teams.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        write_fake_teams(out, 3000, seed=5)
    log_in(page, user)
    page.get_by_role("link", name="Import teams").first.click()
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("heading", name="our-teams.csv")).to_be_visible()
    expect(page.locator("#job-live .state")).to_have_text("succeeded")
    expect(page.locator("#job-live .progress")).to_contain_text("100% · 3,000 of 3,000 rows")
    job = Job.objects.get(kind="import_teams", owner=user)
    assert Team.objects.filter(job=job).count() == 3000


def test_a_bad_csv_shows_its_problems(page: Page, worker: Any, user: User, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("name,description,manager,members\nOk,,ada,\n,,grace,\n", encoding="utf-8")
    log_in(page, user)
    page.goto("/import_teams/")
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#job-live .state")).to_have_text("failed")
    problems = page.locator("table.problems tbody tr")
    expect(problems).to_have_count(1)
    expect(problems.first).to_contain_text("3")
    expect(problems.first).to_contain_text("name")
    with page.expect_download() as info:
        page.get_by_role("link", name=re.compile("error report")).click()
    report = Path(info.value.path()).read_text(encoding="utf-8-sig")
    assert "name" in report.splitlines()[1]


def test_start_an_export_and_download_the_file(page: Page, worker: Any, user: User) -> None:
    from responses.fake import create_responses

    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    create_responses(500, start=start, end=start + dt.timedelta(days=30), seed=3)
    log_in(page, user)
    page.goto("/export_data/?email=ana@example.com&from=2030-01-01&to=2030-12-31")
    page.get_by_role("button", name="Start the export").click()
    expect(page.locator("#job-live .state")).to_have_text("succeeded")
    expect(page.locator("#job-live .progress")).to_contain_text("500 of 500 rows")
    with page.expect_download() as info:
        page.get_by_role("link", name=re.compile("Download the result")).click()
    rows = list(csv.reader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8-sig"))))
    assert len(rows) == 501


def reload_until(page: Page, locator: Any, text: str, timeout: float = 30) -> None:
    """Without JavaScript nothing updates by itself: reload until the page says ``text``."""
    deadline = time.monotonic() + timeout
    while text not in locator.inner_text():
        assert time.monotonic() < deadline, f"the page never said {text!r}"
        time.sleep(0.3)
        page.reload()


def test_the_buttons_work_without_javascript(
    browser: Browser, live_server: Any, worker: Any, user: User
) -> None:
    context = browser.new_context(java_script_enabled=False, base_url=live_server.url)
    page = context.new_page()
    try:
        log_in(page, user)
        job = slow_count(user, "No-script count")
        page.goto(f"/tasks/{job.id}/")
        assert page.locator("#job-live").get_attribute("data-live") == "true"
        wait_processed(job, 20)
        page.get_by_role("button", name="Pause").click()
        expect(page.get_by_role("status")).to_contain_text("No-script count")
        wait_state(job, State.PAUSED)
        reload_until(page, page.locator("#job-live .state"), "paused")
        page.get_by_role("button", name="Resume").click()
        expect(page.get_by_role("status")).to_contain_text("you resumed “No-script count”")
        wait_for(lambda: Job.objects.get(id=job.id).state == State.RUNNING, timeout=30)
        page.get_by_role("button", name="Stop").click()
        page.get_by_role("button", name="Stop the job").click()
        expect(page.get_by_role("status")).to_contain_text("you asked to stop “No-script count”")
        wait_state(job, State.STOPPED)
        reload_until(page, page.locator("#job-live .state"), "stopped")
        assert not CountRow.objects.filter(job_id=job.id).exists()
    finally:
        context.close()


def test_no_page_breaks_the_content_security_policy(
    page: Page, worker: Any, staff_user: User, csp_violations: list[str]
) -> None:
    staff_user.is_superuser = True
    staff_user.save()
    log_in(page, staff_user)
    job = slow_count(staff_user, "Counting under the CSP", n=600)
    wait_processed(job, 1)
    page.goto(f"/tasks/{job.id}/")
    live = page.locator("#job-live")
    first = done_rows(page, live)
    # htmx runs: the page updates itself.
    wait_for(lambda: done_rows(page, live) >= first + 20, timeout=30, what="the numbers to move")
    wait_state(job, State.SUCCEEDED, timeout=120)
    page.goto(f"/tasks/{job.id}/")
    expect(page.locator("figure.chart svg polyline")).to_be_visible()
    pages = {
        "/tasks/": "Jobs",
        "/import_teams/": "Import teams",
        "/export_data/": "Export form responses",
        "/admin/": "Site administration",
        f"/admin/jobs/job/{job.id}/change/": "Change job",
        "/accounts/password_change/": "Password change",
    }
    for path, heading in pages.items():
        page.goto(path)
        expect(page.get_by_role("heading", name=heading).first).to_be_visible()
    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Collect API")
    page.wait_for_load_state("networkidle")
    assert csp_violations == []
