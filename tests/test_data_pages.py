"""``/teams/``: the imported data, in keyset pages, searchable, by import."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from jobs.models import Job, State
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
def test_teams_need_a_login(client: Client) -> None:
    assert client.get("/teams/").status_code == 302
