"""Hardening rules: JSON bodies, weak production keys, headers, tokens and the admin."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import make_token
from tests.workers import ROOT

NOT_AN_OBJECT = (
    'The request body must be a JSON object with named fields, such as {{"email": '
    '"you@example.com"}}; this one is {kind}.'
)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "kind"),
    [("[1,2]", "an array"), ('"x"', "a string"), ("7", "a number"), ("null", "null")],
)
@pytest.mark.parametrize("path", ["/api/exports/responses/", "/export_data/", "/import_teams/"])
def test_a_json_body_that_is_not_an_object_is_a_400_that_says_so(
    api: APIClient, path: str, body: str, kind: str
) -> None:
    response = api.post(path, body, content_type="application/json")
    if path == "/import_teams/":
        # The import takes a file, never JSON.
        assert response.status_code == 415
        return
    assert response.status_code == 400
    assert response.json() == {"detail": NOT_AN_OBJECT.format(kind=kind)}


@pytest.mark.django_db
def test_pages_carry_a_csp_a_referrer_policy_and_a_permissions_policy(client: Client) -> None:
    response = client.get("/accounts/login/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["Referrer-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]
    assert "geolocation=()" in response["Permissions-Policy"]


@pytest.mark.django_db
def test_the_admin_never_accepts_a_token(staff_user: User) -> None:
    staff_user.is_superuser = True
    staff_user.save()
    key = make_token(staff_user)
    client = Client(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    # Without a session there is no CSRF exemption either: a forged POST is refused.
    csrf = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {key}")
    assert csrf.post("/admin/auth/user/add/", {"username": "mallory"}).status_code == 403
    assert not User.objects.filter(username="mallory").exists()
    # The token still works where scripts need it.
    assert client.get("/tasks/").status_code == 200


def _check(**env: str) -> subprocess.CompletedProcess[str]:
    unset = {"SECRET_KEY", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_SETTINGS_MODULE"}
    base = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "-m", "collect", "check"],
        cwd=ROOT,
        env={**base, "COLLECT_PRODUCTION": "true", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


WELL_KNOWN = "SECRET_KEY is a well-known value: anyone could forge sessions and download links."


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("changeme", WELL_KNOWN),
        ("django-insecure-" + "q" * 50, WELL_KNOWN),
        ("build-only-not-secret", WELL_KNOWN),
        ("x" * 49, "SECRET_KEY is too short (49 characters): production needs at least 50"),
    ],
)
def test_production_refuses_a_weak_secret_key(tmp_path: Path, key: str, message: str) -> None:
    done = _check(SECRET_KEY=key, COLLECT_DATA_DIR=str(tmp_path))
    assert done.returncode != 0
    assert done.stderr.startswith("Collect cannot start: ")
    assert message in done.stderr and "Traceback" not in done.stderr


def test_a_database_url_that_cannot_work_is_one_line_that_says_so(tmp_path: Path) -> None:
    done = _check(
        SECRET_KEY="k3y-" + "Zq9" * 20,
        COLLECT_DATA_DIR=str(tmp_path),
        DATABASE_URL="postgress://db/x",
    )
    assert done.returncode == 2
    assert done.stderr.startswith("Collect cannot start: DATABASE_URL='postgress://db/x' ")
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1


def test_a_variable_set_to_nothing_means_its_default(tmp_path: Path) -> None:
    # As an env file or a CI matrix leaves them: the default database in the data dir.
    data = tmp_path / "data"
    done = _check(
        SECRET_KEY="k3y-" + "Zq9" * 20,
        COLLECT_DATA_DIR=str(data),
        DATABASE_URL="",
        CELERY_BROKER_URL=" ",
        COLLECT_QUEUE="",
    )
    assert done.returncode == 0, done.stderr
    empty = _check(SECRET_KEY="", COLLECT_DATA_DIR=str(data))
    assert empty.returncode != 0 and "SECRET_KEY must be set" in empty.stderr
    # The same for a secret file holding nothing, and blanks around a value go.
    blank = tmp_path / "blank"
    blank.write_text("\n")
    done = _check(
        SECRET_KEY="k3y-" + "Zq9" * 20,
        COLLECT_DATA_DIR=str(data),
        DATABASE_URL_FILE=str(blank),
        TIME_ZONE=" Africa/Nairobi ",
    )
    assert done.returncode == 0, done.stderr
    assert not (ROOT / "secret_key").exists()


def test_a_time_zone_that_is_no_zone_is_one_line_that_says_so(tmp_path: Path) -> None:
    done = _check(
        SECRET_KEY="k3y-" + "Zq9" * 20, COLLECT_DATA_DIR=str(tmp_path), TIME_ZONE="Mars/Base"
    )
    assert done.returncode == 2
    assert done.stderr.startswith("Collect cannot start: TIME_ZONE='Mars/Base' is not a time zone")
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1


def test_the_commands_read_blank_variables_as_their_defaults(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(WEB_WORKERS="", COLLECT_BIND=" ", COLLECT_WORKER_POOL="", LOG_LEVEL="")
    for command in ("web", "worker"):
        done = subprocess.run(
            [sys.executable, "-m", "collect", command, "--help"],
            cwd=ROOT,
            env={**env, "COLLECT_DATA_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr


def test_production_accepts_a_long_random_key(tmp_path: Path) -> None:
    done = _check(SECRET_KEY="k3y-" + "Zq9" * 20, COLLECT_DATA_DIR=str(tmp_path))
    assert done.returncode == 0, done.stderr


# --- API tokens -------------------------------------------------------------------


def _tasks(key: str) -> tuple[int, dict[str, object]]:
    response = APIClient().get("/api/tasks/", HTTP_AUTHORIZATION=f"Token {key}")
    return response.status_code, response.json()


@pytest.mark.django_db
def test_drf_create_token_prints_a_token_that_is_stored_only_hashed(user: User) -> None:
    from io import StringIO

    from django.core.management import call_command
    from knox.models import AuthToken

    out, err = StringIO(), StringIO()
    call_command("drf_create_token", "alice", stdout=out, stderr=err)
    words = out.getvalue().split()
    assert words[:2] == ["Generated", "token"] and words[3:] == ["for", "user", "alice"]
    key = words[2]
    assert "It works until" in err.getvalue()
    assert _tasks(key)[0] == 200
    (row,) = AuthToken.objects.filter(user=user).values()
    assert key not in {str(value) for value in row.values()}  # only a digest and a prefix
    assert row["expiry"] is not None


@pytest.mark.django_db
def test_an_expired_token_is_refused(user: User) -> None:
    from django.utils import timezone
    from knox.models import AuthToken

    key = make_token(user)
    AuthToken.objects.filter(user=user).update(expiry=timezone.now() - dt.timedelta(seconds=1))
    assert _tasks(key) == (401, {"detail": "Invalid token."})


@pytest.mark.django_db
def test_a_password_change_revokes_the_tokens(user: User) -> None:
    key = make_token(user)
    client = Client()
    client.force_login(user)
    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": "alice-password",
            "new_password1": "a new long passphrase",
            "new_password2": "a new long passphrase",
        },
    )
    assert response.status_code == 302
    assert _tasks(key) == (401, {"detail": "Invalid token."})
    assert _tasks(make_token(user))[0] == 200  # a new one works


@pytest.mark.django_db
def test_a_token_that_is_not_text_is_a_401(user: User) -> None:
    response = APIClient().get("/api/tasks/", HTTP_AUTHORIZATION="Token \xff\xfe")
    assert response.status_code == 401


@pytest.mark.django_db
def test_the_api_is_throttled_per_user(
    user: User, other_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.cache import cache
    from rest_framework.throttling import SimpleRateThrottle

    # The rates are read once, from COLLECT_API_USER_RATE / COLLECT_API_ANON_RATE.
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"user": "3/minute", "anon": None})
    # Counted per minute of the clock: a clock that stands mid-minute.
    monkeypatch.setattr(SimpleRateThrottle, "timer", staticmethod(lambda: 1_800_000_030.0))
    cache.clear()
    key = make_token(user)
    assert [_tasks(key)[0] for _ in range(3)] == [200, 200, 200]
    status, body = _tasks(key)
    assert status == 429
    assert str(body["detail"]).startswith("Request was throttled. Expected available in")
    assert _tasks(make_token(other_user))[0] == 200  # each user has their own budget


@pytest.mark.django_db
def test_an_error_on_our_side_is_json_for_scripts_and_a_page_for_browsers(
    user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobs.api import JobViewSet

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(JobViewSet, "list", broken)
    script = APIClient(raise_request_exception=False)
    script.credentials(HTTP_AUTHORIZATION=f"Token {make_token(user)}")
    answer = script.get("/api/tasks/")
    assert answer.status_code == 500
    assert answer.json()["detail"].startswith("Something went wrong on our side")
    browser = Client(raise_request_exception=False)
    browser.force_login(user)
    page = browser.get("/api/tasks/", HTTP_ACCEPT="text/html")
    assert page.status_code == 500 and page.json()["detail"]  # /api/ is JSON for everyone
    monkeypatch.setattr("jobs.views._list_context", broken)
    page = browser.get("/tasks/")
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")
    assert "Something went wrong on our side" in page.content.decode()
    assert script.get("/tasks/").json()["detail"].startswith("Something went wrong")  # a token


@pytest.mark.django_db
def test_a_request_for_another_host_is_refused_and_logged_as_one_line(client, caplog) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.WARNING, logger="django.security"):
        response = client.get("/tasks/", HTTP_HOST="scanner.example")
    assert response.status_code == 400
    (record,) = [r for r in caplog.records if r.name == "django.security.DisallowedHost"]
    assert record.levelname == "WARNING" and record.exc_info is None
    assert "'scanner.example'" in record.getMessage()
