"""``/teams/`` and ``/responses/``: the data, in keyset pages, searchable, by import or date."""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
from decimal import Decimal

import pytest
from django.test import Client

from jobs.models import Job, State
from responses.models import FormResponse
from teams.models import Team


def rows(html: str) -> list[str]:
    return re.findall(r"<tr><td>([^<]*)</td>", html)


@pytest.mark.django_db
def test_teams_come_in_keyset_pages_with_search_and_a_job_filter(browser_client, user) -> None:  # type: ignore[no-untyped-def]
    first = Job.objects.create(kind="import_teams", owner=user, state=State.SUCCEEDED)
    second = Job.objects.create(kind="import_teams", owner=user, state=State.SUCCEEDED)
    Team.objects.bulk_create(
        Team(name=f"Team {i:03d}", manager="m", job=first if i < 70 else second) for i in range(120)
    )
    page = browser_client.get("/teams/").content.decode()
    assert rows(page) == [f"Team {i:03d}" for i in range(50)]
    following = re.search(r'href="(/teams/\?cursor=[^"]+)" rel="next"', page)
    assert following, page
    page2 = browser_client.get(following.group(1).replace("&amp;", "&")).content.decode()
    assert rows(page2) == [f"Team {i:03d}" for i in range(50, 100)]
    assert 'rel="prev"' in page2

    found = browser_client.get("/teams/", {"q": "team 11"}).content.decode()
    assert rows(found) == [f"Team {i}" for i in range(110, 120)]
    by_job = browser_client.get("/teams/", {"job": str(second.id)}).content.decode()
    assert rows(by_job) == [f"Team {i:03d}" for i in range(70, 120)]
    assert f'href="/tasks/{second.id}/"' in by_job

    bad = browser_client.get("/teams/", {"job": "nope"})
    assert bad.status_code == 200
    assert "“nope” is not a task id" in bad.content.decode()
    assert rows(bad.content.decode()) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("state", "params", "said"),
    [
        (State.STOPPED, {}, "This import was stopped, and the teams it had written were removed."),
        (State.FAILED, {}, "This import failed, and the teams it had written were removed."),
        (State.SUCCEEDED, {"dry_run": True}, "This was a dry run: it wrote nothing."),
        (State.SUCCEEDED, {"mode": "upsert"}, "This import created no team (it may have updated"),
    ],
)
def test_an_import_without_teams_says_why_its_list_is_empty(
    browser_client, user, state, params, said
) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.create(kind="import_teams", owner=user, state=state, params=params)
    page = html.unescape(
        re.sub(r"<[^>]+>", "", browser_client.get("/teams/", {"job": str(job.id)}).content.decode())
    )
    assert said in page


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",  # not base64: DRF's "Incorrect padding"
        "cD01M",  # a real one ("p=50") cut short
        "é",
        _b64("r=x"),
        _b64("o=-1"),
        _b64("p=abc"),  # decodes, but the position is no id
        _b64("p=1.5"),
        _b64("p=99999999999999999999999999"),
    ],
)
def test_a_damaged_team_page_link_starts_the_list_again(browser_client, user, cursor) -> None:  # type: ignore[no-untyped-def]
    Team.objects.bulk_create(Team(name=f"Team {i:03d}", manager="m") for i in range(60))
    page = browser_client.get("/teams/", {"q": "team", "cursor": cursor})
    assert page.status_code == 200
    text = page.content.decode()
    assert (
        '<p class="error" role="alert">This page link is damaged or cut short; the list starts '
        "again at the first team.</p>"
    ) in text
    assert rows(text) == [f"Team {i:03d}" for i in range(50)]
    assert 'rel="prev"' not in text
    following = re.search(r'href="(/teams/\?[^"]+)" rel="next"', text)
    assert following, text
    page2 = browser_client.get(html.unescape(following.group(1))).content.decode()
    assert rows(page2) == [f"Team {i:03d}" for i in range(50, 60)]
    assert "damaged" not in page2


@pytest.mark.servers  # PostgreSQL refuses a NUL in a query's text: it was a 500 there
@pytest.mark.django_db
def test_a_nul_in_the_team_search_is_ignored(browser_client) -> None:  # type: ignore[no-untyped-def]
    Team.objects.bulk_create(Team(name=name, manager="m") for name in ("Alpha", "Beta"))
    page = browser_client.get("/teams/", {"q": "alp\x00ha"})
    assert page.status_code == 200
    assert rows(page.content.decode()) == ["Alpha"]


@pytest.mark.django_db
def test_teams_need_a_login(client: Client) -> None:
    assert client.get("/teams/").status_code == 302


# ``/responses/``: newest first, keyset pages, the export's date range.


def response_rows(html: str) -> list[str]:
    return re.findall(r"<tr><td>[^<]*</td><td>([^<]*)</td>", html)


def make_responses(count: int, *, start: dt.datetime, step: dt.timedelta) -> None:
    FormResponse.objects.bulk_create(
        FormResponse(
            # Pairs share a timestamp: the pages must go by (timestamp, id), not timestamp alone.
            timestamp=start + step * (i // 2),
            name_of_respondent=f"Person {i:03d}",
            gender_of_respondent="Other",
            record_latitude=Decimal("1.5"),
            record_longitude=Decimal("2.5"),
        )
        for i in range(count)
    )


def follow(client: Client, page: str, rel: str) -> str:
    link = re.search(rf'href="([^"]+)" rel="{rel}"', page)
    assert link, page
    return client.get("/responses/" + html.unescape(link.group(1))).content.decode()


@pytest.mark.django_db
def test_responses_come_newest_first_in_keyset_pages(browser_client: Client) -> None:
    make_responses(120, start=dt.datetime(2020, 5, 1, tzinfo=dt.UTC), step=dt.timedelta(hours=1))
    newest = [f"Person {i:03d}" for i in reversed(range(120))]
    page = browser_client.get("/responses/").content.decode()
    assert response_rows(page) == newest[:50]
    assert 'rel="prev"' not in page
    page2 = follow(browser_client, page, "next")
    assert response_rows(page2) == newest[50:100]
    page3 = follow(browser_client, page2, "next")
    assert response_rows(page3) == newest[100:]
    assert 'rel="next"' not in page3
    back = follow(browser_client, page3, "prev")
    assert response_rows(back) == newest[50:100]
    assert response_rows(follow(browser_client, back, "prev")) == newest[:50]


@pytest.mark.django_db
def test_responses_take_the_exports_date_range_and_offer_to_export_it(
    browser_client: Client,
) -> None:
    make_responses(
        20, start=dt.datetime(2020, 5, 14, 22, tzinfo=dt.UTC), step=dt.timedelta(hours=1)
    )
    page = browser_client.get("/responses/", {"from": "2020-05-15", "to": "2020-05-15 02:00"})
    text = page.content.decode()
    # 00:00 to 02:00 inclusive of the whole minute: hours 2, 3 and 4 from the start, two rows each.
    assert response_rows(text) == [f"Person {i:03d}" for i in reversed(range(4, 10))]
    assert 'href="/export_data/?from=2020-05-15&amp;to=2020-05-15+02%3A00"' in text
    form = browser_client.get(
        "/export_data/?from=2020-05-15&to=2020-05-15+02%3A00"
    ).content.decode()
    assert 'value="2020-05-15 02:00"' in form

    bad = browser_client.get("/responses/", {"from": "15/05/2020"})
    assert bad.status_code == 400
    assert "&#x27;from&#x27; must be a date (YYYY-MM-DD)" in bad.content.decode()
    backwards = browser_client.get("/responses/", {"from": "2020-05-16", "to": "2020-05-15"})
    assert "swap them or widen the range" in backwards.content.decode()

    broken = browser_client.get("/responses/", {"before": "yesterday"})
    assert "This page link is damaged" in broken.content.decode()
    assert len(response_rows(broken.content.decode())) == 20


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        (
            "from",
            "9999-12-31T23:59:59-12:00",
            "'from' is too late: Collect handles dates from 0001-01-01 to 9999-12-31 (in UTC "
            "and in this server's time zone); got '9999-12-31T23:59:59-12:00'. Use a date up "
            "to 9999-12-30, or leave 'from' empty for no limit.",
        ),
        (
            "to",
            "0001-01-01T00:00:00+14:00",
            "'to' is too early: Collect handles dates from 0001-01-01 to 9999-12-31 (in UTC "
            "and in this server's time zone); got '0001-01-01T00:00:00+14:00'. Use a date "
            "from 0001-01-02 on, or leave 'to' empty for no limit.",
        ),
    ],
)
def test_responses_refuse_a_date_out_of_range_next_to_its_field(
    browser_client: Client, field: str, value: str, said: str
) -> None:
    make_responses(2, start=dt.datetime(2020, 5, 1, tzinfo=dt.UTC), step=dt.timedelta(hours=1))
    page = browser_client.get("/responses/", {field: value})
    assert page.status_code == 400
    text = html.unescape(page.content.decode())
    assert f'value="{value}"' in text
    assert f'<span class="error" role="alert">{said}</span>' in text
    assert response_rows(text) == []


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["before", "after"])
@pytest.mark.parametrize(
    "stamp", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "2020-05-01T00:00:00"]
)
def test_a_page_link_out_of_range_is_a_damaged_link(
    browser_client: Client, name: str, stamp: str
) -> None:
    make_responses(4, start=dt.datetime(2020, 5, 1, tzinfo=dt.UTC), step=dt.timedelta(hours=1))
    page = browser_client.get("/responses/", {name: f"{stamp},1"})
    assert page.status_code == 200
    text = page.content.decode()
    assert (
        "This page link is damaged or cut short; the list starts again at the newest response."
        in text
    )
    assert response_rows(text) == [f"Person {i:03d}" for i in (3, 2, 1, 0)]


@pytest.mark.django_db
def test_responses_need_the_export_permission(client: Client, other_user, user) -> None:  # type: ignore[no-untyped-def]
    client.force_login(other_user)
    refused = client.get("/responses/")
    assert refused.status_code == 403
    assert "listing them needs the same right as exporting them" in refused.content.decode()
    assert 'href="/responses/"' not in client.get("/teams/").content.decode()
    client.force_login(user)
    assert 'href="/responses/"' in client.get("/teams/").content.decode()
