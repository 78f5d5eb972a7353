"""Who may see and control which job, over pages, the seed's URLs and the API."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from jobs.models import Job, State
from tests.conftest import make_token


@pytest.fixture
def job(user):  # type: ignore[no-untyped-def]
    return Job.objects.create(kind="count", owner=user, state=State.RUNNING, params={"n": 5})


def token_client(u) -> APIClient:  # type: ignore[no-untyped-def]
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Token {make_token(u)}")
    return c


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/tasks/", "/tasks/{id}/", "/stop_task/{id}", "/tasks/{id}/pause/", "/"]
)
def test_it_sends_anonymous_browsers_to_log_in(client, job, path):  # type: ignore[no-untyped-def]
    response = client.get(path.format(id=job.id))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/tasks/"),
        ("get", "/api/tasks/{id}/"),
        ("post", "/api/tasks/{id}/stop/"),
        ("post", "/stop_task/{id}"),
    ],
)
def test_it_refuses_anonymous_api_clients(job, method, path):  # type: ignore[no-untyped-def]
    response = getattr(APIClient(), method)(path.format(id=job.id), HTTP_ACCEPT="application/json")
    assert response.status_code in (401, 403)
    job.refresh_from_db()
    assert job.state == State.RUNNING


@pytest.mark.django_db
def test_it_refuses_a_bad_token(job):  # type: ignore[no-untyped-def]
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert c.post(f"/stop_task/{job.id}").status_code == 401
    assert c.get("/api/tasks/").json() == {"detail": "Invalid token."}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/tasks/{id}/"),
        ("post", "/api/tasks/{id}/pause/"),
        ("post", "/api/tasks/{id}/resume/"),
        ("post", "/api/tasks/{id}/stop/"),
        ("post", "/stop_task/{id}"),
        ("get", "/stop_task/{id}"),
        ("get", "/tasks/{id}/"),
        ("get", "/tasks/{id}/result"),
        ("get", "/tasks/{id}/errors.csv"),
    ],
)
def test_another_users_job_is_a_404(job, other_user, method, path):  # type: ignore[no-untyped-def]
    c = token_client(other_user)
    response = getattr(c, method)(path.format(id=job.id))
    assert response.status_code == 404
    job.refresh_from_db()
    assert job.state == State.RUNNING


@pytest.mark.django_db
def test_a_user_lists_only_their_own_jobs_and_a_manager_all(
    job, other_user, staff_user, manager_user
):  # type: ignore[no-untyped-def]
    Job.objects.create(kind="count", owner=other_user, params={})
    mine = token_client(other_user).get("/api/tasks/").json()["results"]
    assert [j["owner"] for j in mine] == ["bob"]
    # is_staff alone grants nothing: it only opens the admin.
    assert token_client(staff_user).get("/api/tasks/").json()["results"] == []
    everyone = token_client(manager_user).get("/api/tasks/").json()["results"]
    assert sorted(j["owner"] for j in everyone) == ["alice", "bob"]


@pytest.mark.django_db
def test_the_task_detail_has_progress_and_links(api, job):  # type: ignore[no-untyped-def]
    Job.objects.filter(id=job.id).update(processed=25, total=100, rate=12.5)
    body = api.get(f"/api/tasks/{job.id}/").json()
    assert body["task_id"] == str(job.id)
    assert (body["state"], body["processed"], body["total"], body["percent"]) == (
        "running",
        25,
        100,
        25.0,
    )
    assert body["eta_seconds"] == 6.0
    assert body["links"]["stop"] == f"http://testserver/api/tasks/{job.id}/stop/"


@pytest.mark.django_db
def test_control_over_the_api_answers_409_when_impossible(api, job):  # type: ignore[no-untyped-def]
    response = api.post(f"/api/tasks/{job.id}/pause/")
    assert (response.status_code, response.json()["state"]) == (200, "pausing")
    assert api.post(f"/api/tasks/{job.id}/pause/").status_code == 200  # already heading there
    Job.objects.filter(id=job.id).update(state=State.SUCCEEDED)
    response = api.post(f"/api/tasks/{job.id}/stop/")
    assert response.status_code == 409
    assert response.json() == {
        "detail": "This job has already succeeded; there is nothing to stop.",
        "state": "succeeded",
    }


@pytest.mark.django_db
def test_stop_task_with_a_token_answers_json(api, job):  # type: ignore[no-untyped-def]
    response = api.post(f"/stop_task/{job.id}")
    assert response.status_code == 200
    assert response.json() == {"task_id": str(job.id), "state": "stopping"}


@pytest.mark.django_db
def test_stop_task_get_only_asks_for_confirmation(browser_client, job):  # type: ignore[no-untyped-def]
    response = browser_client.get(f"/stop_task/{job.id}")
    assert response.status_code == 200
    assert b"Stop this job?" in response.content
    job.refresh_from_db()
    assert job.state == State.RUNNING


@pytest.mark.django_db
def test_session_posts_need_the_csrf_token(user, job):  # type: ignore[no-untyped-def]
    c = Client(enforce_csrf_checks=True)
    c.force_login(user)
    assert c.post(f"/stop_task/{job.id}").status_code == 403
    assert c.post(f"/api/tasks/{job.id}/stop/").status_code == 403
    job.refresh_from_db()
    assert job.state == State.RUNNING
    # With the token from the confirmation page, the same POST works.
    c.get(f"/stop_task/{job.id}")
    response = c.post(f"/stop_task/{job.id}", {"csrfmiddlewaretoken": c.cookies["csrftoken"].value})
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.state == State.STOPPING


@pytest.mark.django_db
def test_a_bad_task_id_is_a_404(browser_client):  # type: ignore[no-untyped-def]
    assert browser_client.get("/stop_task/not-a-uuid").status_code == 404
    assert browser_client.get("/api/tasks/12345/").status_code == 404


@pytest.mark.django_db
def test_the_openapi_schema_is_served(api):  # type: ignore[no-untyped-def]
    response = api.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert "/api/tasks/{id}/stop/" in response.json()["paths"]


@pytest.mark.django_db
def test_the_pages_render(browser_client, job):  # type: ignore[no-untyped-def]
    listing = browser_client.get("/tasks/")
    assert listing.status_code == 200
    assert job.get_absolute_url().encode() in listing.content
    assert browser_client.get(f"/tasks/{job.id}/").status_code == 200
    assert browser_client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_the_api_root_lists_the_endpoints(api) -> None:  # type: ignore[no-untyped-def]
    body = api.get("/api/").json()
    assert body == {
        "tasks": "http://testserver/api/tasks/",
        "import_teams": "http://testserver/api/imports/teams/",
        "export_responses": "http://testserver/api/exports/responses/",
        "schema": "http://testserver/api/schema/",
        "docs": "http://testserver/api/docs/",
    }
    assert APIClient().get("/api/").status_code == 401


@pytest.mark.django_db
def test_the_jobs_list_renders_what_drfs_own_loop_renders(user, job):  # type: ignore[no-untyped-def]
    import datetime as dt

    from rest_framework import serializers

    from jobs.serializers import JobSerializer

    class Generic(JobSerializer):
        to_representation = serializers.Serializer.to_representation

    when = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    Job.objects.create(  # every kind of value: None, text, numbers, JSON, dates, files
        kind="count", owner=user, state=State.FAILED, params={"n": 1, "x": [None, "é"]},
        processed=3, total=7, rate=0.5, started_at=when, finished_at=when, error="Boom, \"x\"",
        problems=[{"row": 2}], problem_count=1, result={"bytes": 10},
        result_file="exports/x.csv", error_report_file="reports/x.csv", files_deleted_at=when,
    )  # fmt: skip
    Job.objects.create(kind="count", owner=user, result_file="exports/y.csv", total=None)
    jobs = list(Job.objects.select_related("owner"))
    context = {"request": APIClient().get("/").wsgi_request}
    assert JobSerializer(jobs, many=True, context=context).data == (
        Generic(jobs, many=True, context=context).data
    )
    assert len(jobs) == 3
    for zone in ("Europe/Paris", "America/St_Johns", "Asia/Kathmandu"):  # dates in other zones
        with timezone.override(zone):
            ours = JobSerializer(jobs, many=True, context=context).data
            assert ours == Generic(jobs, many=True, context=context).data
            assert "2026-01-02T03:04:05.678901Z" not in {j["started_at"] for j in ours}
    ours = JobSerializer(jobs, many=True, context=context).data
    assert "2026-01-02T03:04:05.678901Z" in {j["started_at"] for j in ours}  # UTC: a Z


@pytest.mark.django_db
def test_a_token_is_looked_up_once_per_request(user, job):  # type: ignore[no-untyped-def]
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    api = token_client(user)
    with CaptureQueriesContext(connection) as queries:
        assert api.get("/api/tasks/").status_code == 200
    lookups = [q for q in queries.captured_queries if "knox_authtoken" in q["sql"]]
    # One: the token (with its user). The user's other tokens are not read; the
    # workers' sweep deletes the expired ones.
    assert len(lookups) == 1


@pytest.mark.django_db
def test_an_expired_token_is_refused_and_the_sweep_deletes_the_others(user):  # type: ignore[no-untyped-def]
    import datetime as dt

    from django.utils import timezone
    from knox.models import AuthToken

    from collect.tokens import delete_expired_tokens, token_create

    expired, _ = token_create(user=user)
    also_expired, _ = token_create(user=user)
    fresh, _ = token_create(user=user)
    AuthToken.objects.filter(token_key__in=[expired[:15], also_expired[:15]]).update(
        expiry=timezone.now() - dt.timedelta(seconds=1)
    )
    api = Client(HTTP_AUTHORIZATION=f"Token {expired}")
    answer = api.get("/api/tasks/")
    assert answer.status_code == 401 and answer.json() == {"detail": "Invalid token."}
    assert not AuthToken.objects.filter(token_key=expired[:15]).exists()  # deleted on sight
    assert Client(HTTP_AUTHORIZATION=f"Token {fresh}").get("/api/tasks/").status_code == 200
    assert AuthToken.objects.filter(token_key=also_expired[:15]).exists()  # not read per request
    assert delete_expired_tokens() == 1
    assert list(AuthToken.objects.values_list("token_key", flat=True)) == [fresh[:15]]


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["abc", "0", "000", "-1", "1.5", "²", "1 2", "1e3"])
def test_a_page_that_is_no_page_number_is_a_400_that_says_so(api, page):  # type: ignore[no-untyped-def]
    answer = api.get("/api/tasks/", {"page": page})
    assert answer.status_code == 400
    assert answer.json() == {"page": [f"{page!r} is not a page number: use 1, 2, 3…"]}
    assert api.get("/api/tasks/", {"page": " "}).status_code == 200  # empty: the first page


@pytest.mark.django_db
def test_a_page_past_the_end_is_a_404_that_counts_the_pages(api, job):  # type: ignore[no-untyped-def]
    assert api.get("/api/tasks/", {"page": "1"}).json()["count"] == 1
    assert api.get("/api/tasks/", {"page": "last"}).status_code == 200
    for page in ("2", "9" * 30):
        answer = api.get("/api/tasks/", {"page": page})
        assert answer.status_code == 404
        assert answer.json()["detail"].endswith(": the list has 1 page.")
    assert api.get("/api/tasks/", {"page": "2"}).json()["detail"].startswith("There is no page 2:")
    assert api.get("/api/tasks/", {"page": "0" * 30 + "1"}).json()["count"] == 1
    assert api.get("/api/tasks/", {"page": "LAST"}).status_code == 200
    huge = api.get("/api/tasks/", {"page": "7" * 5000}).json()["detail"]
    assert huge.startswith("There is no page " + "7" * 24 + "…: the list has 1 page")
    job.delete()
    empty = api.get("/api/tasks/", {"page": "3"}).json()["detail"]
    assert empty == "There is no page 3: the list is empty."
