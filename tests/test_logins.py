"""Logins resist guessing: lockout per user name and per address, on the form and the admin.

Through Django's test client, i.e. the real login views, django-axes and the
database; the address a client claims in X-Forwarded-For is tried against the
real ``collect web`` in tests/test_trusted_proxies.py.
"""

from __future__ import annotations

import logging
import time

import pytest
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client

pytestmark = pytest.mark.django_db

LOCKED = (
    "Logging in is blocked for 15 minutes after 5 failed attempts in a row, "
    "for this user name or from this address."
)
WRONG = "Please enter a correct username and password. Note that both fields may be case-sensitive."


def attempt(client: Client, path: str, username: str, password: str, addr: str) -> int:
    response = client.post(path, {"username": username, "password": password}, REMOTE_ADDR=addr)
    if response.status_code == 429:
        assert LOCKED in response.content.decode()
    return response.status_code


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_it_locks_a_user_name_out_after_5_failures_even_from_other_addresses(
    staff_user: User, path: str
) -> None:
    client = Client()
    for n in range(4):
        assert attempt(client, path, "carol", f"guess-{n}", f"10.0.0.{n}") == 200
    # The 5th failure locks the user name out: its answer says so.
    assert attempt(client, path, "carol", "guess-4", "10.0.0.4") == 429
    # The right password, from yet another address: still locked out.
    assert attempt(client, path, "carol", "carol-password", "10.0.0.99") == 429
    assert "_auth_user_id" not in client.session


def test_it_locks_an_address_out_whatever_the_user_names(user: User) -> None:
    client = Client()
    for n in range(4):
        assert attempt(client, "/accounts/login/", f"nobody-{n}", "guess", "10.1.1.1") == 200
    assert attempt(client, "/accounts/login/", "nobody-4", "guess", "10.1.1.1") == 429
    assert attempt(client, "/accounts/login/", "alice", "alice-password", "10.1.1.1") == 429
    # Alice herself, from her own address, is not locked out.
    assert attempt(client, "/accounts/login/", "alice", "alice-password", "10.2.2.2") == 302


def test_a_failure_is_logged_with_the_address_and_a_success_resets_the_count(
    user: User, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client()
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.3.3.3"
    )
    assert WRONG in response.content.decode()
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            assert attempt(client, "/accounts/login/", "alice", "wrong", "10.3.3.3") == 200
    failures = [r.getMessage() for r in caplog.records if "login failure" in r.getMessage()]
    assert len(failures) == 4
    assert all('"alice"' in m and '"10.3.3.3"' in m for m in failures)
    assert attempt(Client(), "/accounts/login/", "alice", "alice-password", "10.3.3.3") == 302
    # The count started again: four more failures do not lock her out.
    for _ in range(4):
        assert attempt(client, "/accounts/login/", "alice", "wrong", "10.3.3.3") == 200
    assert attempt(Client(), "/accounts/login/", "alice", "alice-password", "10.3.3.3") == 302


def test_password_reset_mails_are_throttled_per_address_and_per_e_mail(user: User) -> None:
    client = Client()
    for n in range(8):
        response = client.post(
            "/accounts/password_reset/", {"email": "alice@example.com"}, REMOTE_ADDR=f"10.4.0.{n}"
        )
        # The same answer every time: it tells nobody whether a mail went.
        assert response.status_code == 302
        assert response["Location"] == "/accounts/password_reset/done/"
    assert len(mail.outbox) == 5
    mail.outbox.clear()
    for n in range(8):
        client.post(
            "/accounts/password_reset/", {"email": f"x{n}@example.com"}, REMOTE_ADDR="10.5.0.1"
        )
    client.post("/accounts/password_reset/", {"email": "bob@example.com"}, REMOTE_ADDR="10.5.0.1")
    assert mail.outbox == []  # that address has used up its hour


def test_passwords_need_12_characters() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_password("Tr0ub4dor&3")
    assert caught.value.messages == [
        "This password is too short. It must contain at least 12 characters."
    ]
    validate_password("correct horse battery")


def test_a_session_ends_after_its_idle_time_and_activity_renews_it(
    user: User, settings: object
) -> None:
    settings.SESSION_COOKIE_AGE = 3  # type: ignore[attr-defined]
    client = Client()
    assert attempt(client, "/accounts/login/", "alice", "alice-password", "10.6.0.1") == 302
    for _ in range(3):  # active: each request pushes the end back
        time.sleep(1.5)
        assert client.get("/tasks/").status_code == 200
    time.sleep(3.5)  # idle
    response = client.get("/tasks/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
