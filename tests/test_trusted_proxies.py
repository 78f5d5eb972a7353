"""X-Forwarded-For / -Proto are believed only from COLLECT_TRUSTED_PROXIES, by the real server.

Against a real ``collect web``: by default a client that invents
X-Forwarded-For is still seen (and locked out) at its own address, and one that
claims ``X-Forwarded-Proto: https`` is still sent to HTTPS; with the test's
loopback address listed as a proxy, both headers are believed.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_export_helpers import free_port
from tests.test_web_restart import Web

PRODUCTION_KEY = "trusted-proxies-test-" + "k7Q" * 15


def request(
    web: Web, method: str, path: str, headers: dict[str, str], body: str = ""
) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=30)
    conn.request(method, path, body=body.encode(), headers=headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def failed_login(web: Web, username: str, forwarded_for: str) -> int:
    """One wrong password through the real form (its CSRF cookie and token first)."""
    page = http.client.HTTPConnection("127.0.0.1", web.port, timeout=30)
    page.request("GET", "/accounts/login/", headers={"X-Forwarded-For": forwarded_for})
    got = page.getresponse()
    html = got.read().decode()
    cookie = got.headers["Set-Cookie"].split(";")[0]
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match
    page.close()
    body = f"csrfmiddlewaretoken={match.group(1)}&username={username}&password=wrong"
    response = request(
        web, "POST", "/accounts/login/",
        {"X-Forwarded-For": forwarded_for, "Cookie": cookie,
         "Content-Type": "application/x-www-form-urlencoded"},
        body,
    )  # fmt: skip
    return response.status


@pytest.fixture
def start_web(
    transactional_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[object]:
    started: list[Web] = []

    def start(**env: str) -> Web:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        web = Web(free_port(), tmp_path / f"web-{len(started)}.log")
        started.append(web)
        return web.start()

    yield start
    for web in started:
        web.close()


def test_by_default_a_forged_address_does_not_dodge_the_lockout(start_web) -> None:  # type: ignore[no-untyped-def]
    web = start_web()
    statuses = [failed_login(web, f"nobody-{n}", f"203.0.113.{n}") for n in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    assert 'ip_address: "127.0.0.1"' in web.log()
    assert "203.0.113." not in web.log().split("Repeated login failure")[-1]


def test_a_trusted_proxy_sets_the_address_and_the_scheme(start_web) -> None:  # type: ignore[no-untyped-def]
    web = start_web(COLLECT_TRUSTED_PROXIES="127.0.0.0/8")
    statuses = [failed_login(web, f"nobody-{n}", f"203.0.113.{n}") for n in range(5)]
    assert statuses == [200] * 5  # five addresses, one failure each
    assert 'ip_address: "203.0.113.4"' in web.log()


def test_production_believes_https_only_from_a_trusted_proxy(start_web) -> None:  # type: ignore[no-untyped-def]
    claims = {"X-Forwarded-Proto": "https"}
    web = start_web(COLLECT_PRODUCTION="true", SECRET_KEY=PRODUCTION_KEY)
    refused = request(web, "GET", "/accounts/login/", claims)
    assert refused.status == 301
    assert refused.headers["Location"] == f"https://127.0.0.1:{web.port}/accounts/login/"
    web.close()
    web = start_web(COLLECT_TRUSTED_PROXIES="127.0.0.1")
    believed = request(web, "GET", "/accounts/login/", claims)
    assert believed.status == 200
    assert "max-age=31536000" in believed.headers["Strict-Transport-Security"]
