"""The export page, its API and CLI: what they accept, and the 400s users read."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from jobs.models import Job

DATES = (
    "a date (YYYY-MM-DD), a date and time (YYYY-MM-DD HH:MM) "
    "or an ISO 8601 date-time (2020-05-15T00:00:00+02:00)"
)
pytestmark = pytest.mark.django_db


def test_it_shows_a_prefilled_form_and_starts_nothing(browser_client):  # type: ignore[no-untyped-def]
    page = browser_client.get(
        "/export_data/",
        {"email": "a@example.com", "from": "2017-05-15 00:00", "to": "2020-05-15 00:00"},
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert 'value="a@example.com"' in html
    assert 'value="2017-05-15 00:00"' in html and 'value="2020-05-15 00:00"' in html
    assert Job.objects.count() == 0


def test_it_sends_anonymous_browsers_to_log_in(client):  # type: ignore[no-untyped-def]
    page = client.get("/export_data/?email=a@example.com")
    assert page.status_code == 302 and page["Location"].startswith("/accounts/login/")


def test_a_form_post_starts_the_job_and_goes_to_its_page(browser_client):  # type: ignore[no-untyped-def]
    page = browser_client.post(
        "/export_data/", {"email": "a@example.com", "from": "2017-05-15", "to": "2017-05-15"}
    )
    job = Job.objects.get()
    assert page.status_code == 302 and page["Location"] == f"/tasks/{job.id}/"
    assert job.kind == "export_responses"
    # A date-only "to" covers that whole day.
    assert job.params["from"] == "2017-05-15T00:00:00+00:00"
    assert job.params["to"] == "2017-05-15T23:59:59.999999+00:00"
    assert job.params["email"] == "a@example.com"


@pytest.mark.parametrize("url", ["/export_data/", "/api/exports/responses/"])
def test_a_json_client_gets_202(api, url):  # type: ignore[no-untyped-def]
    answer = api.post(
        url, {"email": "a@example.com", "from": "2019-01-01T10:00:00+02:00"}, format="json"
    )
    assert answer.status_code == 202
    job = Job.objects.get()
    assert answer.json() == {
        "task_id": str(job.id),
        "state": "queued",
        "url": f"http://testserver/api/tasks/{job.id}/",
    }
    assert job.params["from"] == "2019-01-01T10:00:00+02:00" and job.params["to"] is None


A = "a@example.com"
BAD_EMAIL = "Enter a valid e-mail address, such as name@example.com."
NO_EMAIL = "Enter the e-mail address the export should be sent to."
REVERSED = (
    "'to' (2017-05-15 23:59) is before 'from' (2020-05-15 00:00); swap them or widen the range."
)
BAD_INPUT = [
    ({"email": "nope", "from": "2019-01-01"}, {"email": [BAD_EMAIL]}),
    ({"from": "2019-01-01"}, {"email": [NO_EMAIL]}),
    ({"email": A, "from": "15/05/2017"}, {"from": [f"'from' must be {DATES}; got '15/05/2017'."]}),
    ({"email": A, "to": "2021-02-30"}, {"to": [f"'to' must be {DATES}; got '2021-02-30'."]}),
    ({"email": A, "from": "2020-05-15 00:00", "to": "2017-05-15"}, {"to": [REVERSED]}),
]


@pytest.mark.parametrize(("data", "errors"), BAD_INPUT)
@pytest.mark.parametrize("url", ["/export_data/", "/api/exports/responses/"])
def test_bad_input_is_a_400_naming_the_field(api, url, data, errors):  # type: ignore[no-untyped-def]
    answer = api.post(url, data, format="json")
    assert answer.status_code == 400
    assert answer.json() == errors
    assert Job.objects.count() == 0


def test_a_browser_sees_the_form_again_with_the_message(browser_client):  # type: ignore[no-untyped-def]
    page = browser_client.post("/export_data/", {"email": "a@example.com", "from": "yesterday"})
    assert page.status_code == 400
    assert "&#x27;from&#x27; must be a date (YYYY-MM-DD)" in page.content.decode()
    assert Job.objects.count() == 0


def test_the_cli_refuses_bad_dates_and_queues_good_ones(user, capsys):  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match=r"^--from: 'from' must be a date \(YYYY-MM-DD\)"):
        call_command(
            "export-responses", "--email", "a@example.com", "--from", "soon", "--user", "alice"
        )
    call_command(
        "export-responses", "--email", "a@example.com", "--to", "2020-01-01", "--user", "alice"
    )
    job = Job.objects.get()
    assert job.owner == user and job.params["to"] == "2020-01-01T23:59:59.999999+00:00"
    printed = capsys.readouterr()
    assert printed.out == f"{job.id}\n"  # alone, for ID=$(collect export-responses …)
    assert f"Export queued. Watch it at http://localhost:8000/tasks/{job.id}/" in printed.err


def test_fake_responses_is_reproducible():  # type: ignore[no-untyped-def]
    from responses.models import FormResponse

    args = ("fake-responses", "300", "--from", "2019-01-01", "--to", "2019-12-31", "--seed", "9")
    call_command(*args)
    fields = ("timestamp", "name_of_respondent", "mobile_no", "record_latitude")
    first = list(FormResponse.objects.order_by("id").values_list(*fields))
    FormResponse.objects.all().delete()
    call_command(*args)
    assert list(FormResponse.objects.order_by("id").values_list(*fields)) == first
    stamps = [row[0] for row in first]
    assert min(stamps).year == max(stamps).year == 2019 and len(set(first)) == 300
