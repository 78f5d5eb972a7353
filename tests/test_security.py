"""Who may do what: anonymous users, other users, forged requests, oversized bodies,
download links, exported cells, production settings and the job rate limit."""

from __future__ import annotations

import csv
import io
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django.utils.html import escape
from rest_framework.test import APIClient

from jobs.models import Job, State
from responses import mail
from responses.models import FormResponse
from responses.services import responses_export_start
from responses.views import LINK_EXPIRED, LINK_INVALID
from teams.models import Team
from tests.conftest import make_token
from tests.workers import ROOT, wait_state

# Open to anonymous visitors on purpose: signing in, and getting back in.
PUBLIC = {
    "accounts/login/",
    "accounts/logout/",
    "accounts/password_reset/",
    "accounts/password_reset/done/",
    "accounts/reset/<uidb64>/<token>/",
    "accounts/reset/done/",
    "admin/login/",
    "admin/logout/",
    "healthz",  # the health probe: says "ok", nothing else
}
LOGIN_PATHS = ("/accounts/login/", "/admin/login/")


def routes() -> list[str]:
    """Every URL pattern of the project, as its route text (prefixes joined)."""

    def walk(patterns: list[Any], prefix: str) -> Iterator[str]:
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern)

    return sorted(set(walk(get_resolver().url_patterns, "")))


def concrete(route: str, job: Job, link: str = "x") -> str:
    """A URL for ``route`` that reaches the view (the job's id where one is asked for)."""
    fills = {
        r"<uuid:task_id>": str(job.id),
        r"\(\?P<pk>[^)]*\)": str(job.id),
        r"<str:action>": "stop",
        r"<str:token>": link,
        r"\(\?P<app_label>[^)]*\)": "jobs",
        r"\(\?P<url>[^)]*\)": "jobs/job/",
        r"<path:[a-z_]+>": "1",
        r"<[a-z0-9_]+>": "x",
    }
    path = route
    for pattern, value in fills.items():
        path = re.sub(pattern, value, path)
    return "/" + path.replace("^", "").replace("$", "")


def make_job(owner: User, **fields: Any) -> Job:
    job = Job.objects.create(
        kind="import_teams",
        owner=owner,
        state=State.FAILED,
        label="alice-secret-teams.csv",
        params={"file": "imports/teams/gone.csv", "filename": "alice-secret-teams.csv"},
        **fields,
    )
    return job


@pytest.fixture
def alices_job(user: User) -> Job:
    report = default_storage.save(f"imports/errors/{uuid.uuid4().hex}.csv", ContentFile(b"a,b\n"))
    result = default_storage.save(f"exports/{uuid.uuid4().hex}/r.csv", ContentFile(b"id\n1\n"))
    return make_job(user, error_report_file=report, result_file=result)


def refused(response: Any, method: str) -> bool:
    if response.status_code in (401, 403):
        return True
    if response.status_code == 405 and method == "post":
        return True  # a page that only shows things: nothing done, nothing shown
    location = response.get("Location", "")
    return response.status_code == 302 and urlsplit(location).path in LOGIN_PATHS


def test_every_route_is_accounted_for(db: None) -> None:
    # A new route is checked by the walk below; a public one must be listed in PUBLIC.
    assert set(routes()) >= PUBLIC
    assert len(routes()) > 30


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_access_is_refused_everywhere_but_login(alices_job: Job, method: str) -> None:
    checked = 0
    for route in routes():
        if route in PUBLIC or route.startswith("static/"):
            continue
        path = concrete(route, alices_job, mail.download_token(alices_job))
        for client in (Client(), APIClient()):
            response = getattr(client, method)(path)
            assert refused(response, method), (route, path, response.status_code)
            assert str(alices_job.id).encode() not in response.content, route
            checked += 1
    alices_job.refresh_from_db()
    assert alices_job.state == State.FAILED
    assert checked >= 50


@pytest.mark.django_db
def test_the_login_page_is_public() -> None:
    assert Client().get("/accounts/login/").status_code == 200


def _as(user: User, *, token: bool) -> Client:
    if token:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {make_token(user)}")
        return client
    client = Client()
    client.force_login(user)
    return client


def unmasked(page: bytes) -> bytes:
    """The page without its CSRF token, which Django masks afresh on every response."""
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", page)


@pytest.mark.django_db
@pytest.mark.parametrize("token", [False, True], ids=["session", "token"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_another_user_cannot_learn_a_job_exists(
    alices_job: Job, other_user: User, token: bool, method: str
) -> None:
    """Bob gets exactly what he gets for a job id that does not exist: a 404."""
    bob = _as(other_user, token=token)
    ghost = Job(id=uuid.uuid4())  # an id that exists nowhere
    ghost_id = ghost.id
    before = Job.objects.values().get(id=alices_job.id)
    job_routes = [r for r in routes() if "task_id" in r or "(?P<pk>" in r]
    assert len(job_routes) >= 9
    not_found = 0
    for route in job_routes:
        answer = getattr(bob, method)(concrete(route, alices_job))
        nothing = getattr(bob, method)(concrete(route, ghost))
        # 405: the route does not take this method, whatever the job (same answer).
        assert answer.status_code in (404, 405), route
        assert answer.status_code == nothing.status_code, route
        not_found += answer.status_code == 404
        assert unmasked(answer.content.replace(str(alices_job.id).encode(), b"ID")) == (
            unmasked(nothing.content.replace(str(ghost_id).encode(), b"ID"))
        ), route
    assert not_found >= 4
    assert Job.objects.values().get(id=alices_job.id) == before
    for listing in ("/tasks/", "/api/tasks/", "/tasks/?state=failed", "/api/tasks/?state=failed"):
        page = bob.get(listing, HTTP_ACCEPT="text/html" if not token else "application/json")
        assert page.status_code == 200
        assert str(alices_job.id).encode() not in page.content
        assert b"alice-secret-teams" not in page.content


@pytest.mark.django_db
def test_another_user_cannot_use_a_download_link(alices_job: Job, other_user: User) -> None:
    Job.objects.filter(id=alices_job.id).update(kind="export_responses", state=State.SUCCEEDED)
    alices_job.refresh_from_db()
    alices_job.params = {"file": alices_job.result_file}
    bob = _as(other_user, token=False)
    answer = bob.get(f"/export_data/download/{mail.download_token(alices_job)}")
    alices_job.id = uuid.uuid4()  # the same link for a job that does not exist
    nothing = bob.get(f"/export_data/download/{mail.download_token(alices_job)}")
    assert answer.status_code == nothing.status_code == 404
    assert unmasked(answer.content) == unmasked(nothing.content)


@pytest.mark.django_db
def test_download_links_are_signed_and_expire(alices_job: Job, user: User, settings: Any) -> None:
    Job.objects.filter(id=alices_job.id).update(kind="export_responses", state=State.SUCCEEDED)
    alices_job.params = {"file": alices_job.result_file}
    link = f"/export_data/download/{mail.download_token(alices_job)}"
    alice = _as(user, token=False)
    ok = alice.get(link)
    assert ok.status_code == 200
    assert b"".join(ok.streaming_content) == b"id\n1\n"
    # Another file named in a link signed with another key.
    forged = signing.TimestampSigner(key="not-the-secret", salt=mail.LINK_SALT).sign_object(
        {"job": str(alices_job.id), "file": "imports/teams/other.csv"}, compress=True
    )
    for bad in (forged, link.rsplit("/", 1)[1][:-3], "x"):
        refusal = alice.get(f"/export_data/download/{bad}")
        assert refusal.status_code == 400
        assert escape(LINK_INVALID) in refusal.content.decode()
    settings.COLLECT_EXPORT_LINK_MAX_AGE_SECONDS = -1
    expired = alice.get(link)
    assert expired.status_code == 410
    assert escape(LINK_EXPIRED) in expired.content.decode()


@pytest.mark.django_db
def test_csrf_is_enforced_on_every_session_post(alices_job: Job, user: User) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    Job.objects.filter(id=alices_job.id).update(state=State.RUNNING)
    checked = 0
    for route in routes():
        if route.startswith("static/"):
            continue
        answer = browser.post(concrete(route, alices_job), {"on_error": "fail"})
        assert answer.status_code == 403, (route, answer.status_code)
        checked += 1
    alices_job.refresh_from_db()
    assert alices_job.state == State.RUNNING
    assert Job.objects.count() == 1
    assert checked > 30
    # With the token the same request goes through: the 403s were the CSRF check.
    browser.get(f"/tasks/{alices_job.id}/stop/")
    token = browser.cookies["csrftoken"].value
    answer = browser.post(f"/stop_task/{alices_job.id}", {"csrfmiddlewaretoken": token})
    assert answer.status_code == 302
    alices_job.refresh_from_db()
    assert alices_job.state == State.STOPPING


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/api/imports/teams/", "/import_teams/"])
def test_an_oversized_upload_is_refused_before_its_body_is_read(
    live_server: Any, user: User, settings: Any, path: str
) -> None:
    """Over a real socket: 10 GB announced, a few bytes sent, the answer comes at once."""
    settings.COLLECT_UPLOAD_MAX_BYTES = 1000
    key = make_token(user)
    url = urlsplit(live_server.url)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Token {key}\r\n"
        "Accept: application/json\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {10 * 1024**3}\r\nConnection: close\r\n\r\n--b\r\n"
    )
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head.encode())
        # Read the answer only: a development server keeps the connection open to
        # drain the announced body, which never comes.
        answer = b""
        while b"}" not in answer:
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
    status, _, body = answer.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"The file is too large: at most 1,000 bytes can be uploaded" in body
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_an_upload_name_is_never_a_path(api: APIClient) -> None:
    data = b"name,description,manager,members\r\nA,b,c,d\r\n"
    answer = api.post(
        "/api/imports/teams/",
        {"file": ContentFile(data, name="../../../../tmp/evil.csv")},
        format="multipart",
    )
    job = Job.objects.get(id=answer.json()["task_id"])
    assert re.fullmatch(r"imports/teams/[0-9a-f]{32}\.csv", job.params["file"])
    assert job.label == "evil.csv"
    assert default_storage.open(job.params["file"]).read() == data


def test_exported_cells_are_neutralised(worker: Any, user: User) -> None:
    hostile = ["=cmd|' /C calc'!A0", "+SUM(1+1)", "-2+3", "@SUM(1)", "\tTabbed", "\rCR"]
    for i, name in enumerate(hostile):
        FormResponse.objects.create(
            timestamp=timezone.now(),
            user=user,
            name_of_respondent=name,
            gender_of_respondent="Other",
            mobile_no="=1+1" if i == 0 else "",
            record_latitude=Decimal("-33.868820"),
            record_longitude=Decimal("151.209290"),
        )
    User.objects.filter(id=user.id).update(username="=HYPERLINK(x)")
    job = responses_export_start(email="a@example.com", date_from=None, date_to=None, by=user)
    job = wait_state(job, State.SUCCEEDED, timeout=60)
    with default_storage.open(job.result_file, "rb") as fh:
        rows = list(csv.reader(io.StringIO(fh.read().decode("utf-8-sig"))))
    # Formulas get a quote; a leading tab or CR alone is no formula and stays as stored.
    assert [r[3] for r in rows[1:]] == ["'" + name for name in hostile[:4]] + hostile[4:]
    assert {r[2] for r in rows[1:]} == {"'=HYPERLINK(x)"}
    assert rows[1][7] == "'=1+1"
    assert {(r[8], r[9]) for r in rows[1:]} == {("-33.868820", "151.209290")}  # numbers stay


def _collect(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # The test run's own settings (DJANGO_ALLOW_ASYNC_UNSAFE, …) are not production's.
    unset = {"SECRET_KEY", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    base = {k: v for k, v in os.environ.items() if k not in unset}
    base.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "-m", "collect", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_deploy_check_is_clean_in_production(tmp_path: Path) -> None:
    done = _collect(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        COLLECT_PRODUCTION="true",
        SECRET_KEY="k" * 20 + "-production-secret-key-for-the-test-" + "z" * 20,
        COLLECT_DATA_DIR=str(tmp_path),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "SECRET_KEY must be set when COLLECT_PRODUCTION=true"),
        ({"SECRET_KEY": "s" * 60, "DEBUG": "true"}, "DEBUG must be off when COLLECT_PRODUCTION"),
    ],
)
def test_production_refuses_to_start_unsafe(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    done = _collect("check", COLLECT_PRODUCTION="true", COLLECT_DATA_DIR=str(tmp_path), **env)
    assert done.returncode != 0
    assert message in done.stderr
    assert not (tmp_path / "secret_key").exists()  # no key made up in production


LIMITED = (
    "You started 2 jobs in the last minute, the most allowed. "
    "Wait a minute and try again, or stop jobs you do not need."
)


@pytest.mark.django_db
def test_job_creation_is_rate_limited(user: User, api: APIClient, settings: Any) -> None:
    settings.COLLECT_JOBS_PER_MINUTE = 2
    make_job(user)
    make_job(user)
    data = b"name,description,manager,members\r\nA,b,c,d\r\n"
    upload = ContentFile(data, name="t.csv")
    answer = api.post("/api/imports/teams/", {"file": upload}, format="multipart")
    assert answer.status_code == 429
    assert answer["Retry-After"] == "60"
    assert answer.json() == {"detail": LIMITED}
    export = api.post("/api/exports/responses/", {"email": "a@example.com"}, format="json")
    assert (export.status_code, export["Retry-After"]) == (429, "60")
    browser = Client()
    browser.force_login(user)
    page = browser.post("/import_teams/", {"file": ContentFile(data, name="t.csv")})
    assert page.status_code == 429
    assert page["Retry-After"] == "60"
    assert LIMITED in page.content.decode()
    page = browser.post("/export_data/", {"email": "a@example.com"})
    assert (page.status_code, page["Retry-After"]) == (429, "60")
    assert Job.objects.count() == 2
    assert not Team.objects.exists()


@pytest.mark.servers  # PostgreSQL refuses NUL in text: a 500 there, not on SQLite
@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/tasks/", f"/stop_task/{uuid.uuid4()}", "/tasks/"])
def test_a_token_with_a_nul_byte_is_refused_not_a_500(path: str) -> None:
    # PostgreSQL refuses NUL in a query; the token must be refused before the lookup.
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token abc\x00def")
    answer = client.get(path)
    assert answer.status_code == 401
    assert answer.json() == {"detail": "Invalid token."}


@pytest.mark.servers
@pytest.mark.django_db
def test_a_login_with_a_nul_byte_is_a_form_error(user: User) -> None:
    browser = Client()
    answer = browser.post("/accounts/login/", {"username": "ali\x00ce", "password": "x"})
    assert answer.status_code == 200
    assert answer.context["form"].errors["username"] == ["Null characters are not allowed."]
    assert "_auth_user_id" not in browser.session
