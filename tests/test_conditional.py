"""Conditional GET on the jobs API: an unchanged answer is a 304, any change a fresh 200."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from jobs.models import Job, State
from tests.conftest import make_token


def token_client(u) -> APIClient:  # type: ignore[no-untyped-def]
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Token {make_token(u)}")
    return c


@pytest.fixture
def jobs(user):  # type: ignore[no-untyped-def]
    return [
        Job.objects.create(kind="count", owner=user, state=State.RUNNING, params={"n": 5})
        for _ in range(3)
    ]


def again(api: APIClient, path: str, etag: str):  # type: ignore[no-untyped-def]
    return api.get(path, HTTP_IF_NONE_MATCH=etag)


@pytest.mark.servers  # updated_at's precision and the key-only page query, on each database
@pytest.mark.django_db
def test_it_answers_304_for_an_unchanged_list_and_200_after_any_change(user, jobs):  # type: ignore[no-untyped-def]
    api = token_client(user)
    first = api.get("/api/tasks/")
    etag = first["ETag"]
    assert first.status_code == 200 and etag.startswith('W/"')
    assert first["Cache-Control"] == "private, no-cache"

    unchanged = again(api, "/api/tasks/", etag)
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged["ETag"] == etag

    # Progress as a worker's batch writes it: a plain update(), no updated_at given.
    Job.objects.filter(id=jobs[1].id).update(processed=7)
    changed = again(api, "/api/tasks/", etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert [j["processed"] for j in changed.json()["results"]] == [0, 7, 0]

    etag = changed["ETag"]
    Job.objects.create(kind="count", owner=user, params={"n": 1})
    assert again(api, "/api/tasks/", etag).json()["count"] == 4

    etag = api.get("/api/tasks/")["ETag"]
    Job.objects.filter(id=jobs[0].id).delete()
    assert again(api, "/api/tasks/", etag).json()["count"] == 3


@pytest.mark.django_db
def test_the_tag_depends_on_the_caller_the_page_and_the_filters(  # type: ignore[no-untyped-def]
    user, manager_user, jobs
):
    api = token_client(user)
    etag = api.get("/api/tasks/")["ETag"]
    # The same jobs, shown to someone else or filtered: not the same answer.
    assert again(token_client(manager_user), "/api/tasks/", etag).status_code == 200
    assert again(api, "/api/tasks/?state=running", etag).status_code == 200
    assert again(api, "/api/tasks/?page=1", etag).status_code == 200
    assert again(api, "/api/tasks/", "*").status_code == 304  # RFC 9110: "*" matches any


@pytest.mark.django_db
def test_it_answers_304_for_an_unchanged_job(user, jobs):  # type: ignore[no-untyped-def]
    api = token_client(user)
    path = f"/api/tasks/{jobs[0].id}/"
    etag = api.get(path)["ETag"]
    assert again(api, path, etag).status_code == 304
    assert again(api, f"/api/tasks/{jobs[1].id}/", etag).status_code == 200

    Job.objects.filter(id=jobs[0].id).update(state=State.PAUSING)
    changed = again(api, path, etag)
    assert changed.status_code == 200 and changed.json()["state"] == "pausing"


@pytest.mark.django_db
def test_another_users_job_is_a_404_whatever_the_tag(user, other_user, jobs):  # type: ignore[no-untyped-def]
    api = token_client(user)
    path = f"/api/tasks/{jobs[0].id}/"
    etag = api.get(path)["ETag"]
    assert again(token_client(other_user), path, etag).status_code == 404
    assert again(token_client(other_user), path, "*").status_code == 404


@pytest.mark.django_db
def test_every_update_of_a_job_moves_updated_at(jobs):  # type: ignore[no-untyped-def]
    before = Job.objects.get(id=jobs[0].id).updated_at
    Job.objects.filter(id=jobs[0].id).update(lease_expires_at=timezone.now())
    assert Job.objects.get(id=jobs[0].id).updated_at > before
    # A given updated_at is kept.
    Job.objects.filter(id=jobs[0].id).update(updated_at=before)
    assert Job.objects.get(id=jobs[0].id).updated_at == before


@pytest.mark.django_db
def test_a_list_shows_each_job_as_its_own_page_does_in_a_fixed_number_of_queries(  # type: ignore[no-untyped-def]
    user, jobs
):
    api = token_client(user)
    Job.objects.filter(id=jobs[0].id).update(
        checkpoint={"at": 3}, samples=[[1, 2]], checking={"done": 1}, worker="w1", attempts=2
    )
    with CaptureQueriesContext(connection) as three:
        listed = api.get("/api/tasks/").json()["results"]
    for _ in range(4):
        # Running, with a worker: a running job's time left reads who runs it.
        Job.objects.create(
            kind="count",
            owner=user,
            params={"n": 1},
            state=State.RUNNING,
            worker="w2",
            total=10,
            rate=1.0,
        )
    with CaptureQueriesContext(connection) as seven:
        assert len(api.get("/api/tasks/").json()["results"]) == 7
    # The columns a list leaves unread are never fetched one job at a time.
    assert len(seven) == len(three)
    for shown in listed:
        assert shown == api.get(f"/api/tasks/{shown['task_id']}/").json()


@pytest.mark.django_db
def test_a_finished_job_is_written_once_then_again_after_any_change(user, settings):  # type: ignore[no-untyped-def]
    """The list serves finished jobs as written for an earlier request (``rendered_jobs``)
    until their row, the site's address, the time zone or the retention changes."""
    api = token_client(user)
    done = Job.objects.create(
        kind="count", owner=user, state=State.SUCCEEDED, params={"n": 5}, processed=5, total=5
    )
    Job.objects.filter(id=done.id).update(finished_at=timezone.now(), files_deleted_at=None)
    with CaptureQueriesContext(connection) as first:
        shown = api.get("/api/tasks/").json()["results"][0]
    with CaptureQueriesContext(connection) as second:
        assert api.get("/api/tasks/").json()["results"][0] == shown
    # Served as written: the jobs are not read in full again.
    assert len(second) == len(first) - 1
    assert shown == api.get(f"/api/tasks/{done.id}/").json()

    Job.objects.filter(id=done.id).update(label="renamed")
    assert api.get("/api/tasks/").json()["results"][0]["label"] == "renamed"

    assert shown["links"]["self"].startswith("http://testserver/")
    elsewhere = api.get("/api/tasks/", HTTP_HOST="localhost").json()["results"][0]
    assert elsewhere["links"]["self"].startswith("http://localhost/")

    settings.TIME_ZONE = "Asia/Tokyo"
    assert api.get("/api/tasks/").json()["results"][0]["finished_at"].endswith("+09:00")

    Job.objects.filter(id=done.id).update(files_deleted_at=timezone.now())
    assert "after 30 days" in api.get("/api/tasks/").json()["results"][0]["files_deleted"]
    settings.COLLECT_RETENTION_DAYS = 7
    assert "after 7 days" in api.get("/api/tasks/").json()["results"][0]["files_deleted"]


@pytest.mark.django_db
def test_a_running_job_is_written_anew_for_each_list(user):  # type: ignore[no-untyped-def]
    """A job run in parts shows their progress, which changes without its own row changing."""
    api = token_client(user)
    parent = Job.objects.create(
        kind="count",
        owner=user,
        state=State.RUNNING,
        params={"n": 20},
        total=20,
        checkpoint={"parts": 2},
    )
    parts = [
        Job.objects.create(
            kind="count",
            owner=user,
            state=State.RUNNING,
            params={"n": 10},
            total=10,
            parent=parent,
            part=n,
            processed=3,
        )
        for n in range(2)
    ]
    assert api.get("/api/tasks/").json()["results"][0]["processed"] == 6
    Job.objects.filter(id=parts[1].id).update(processed=9)
    assert api.get("/api/tasks/").json()["results"][0]["processed"] == 12
