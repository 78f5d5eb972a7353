"""The export page, its API and CLI: what they accept, and the 400s users read."""

from __future__ import annotations

import html

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
RANGE = (
    "Collect handles dates from 0001-01-01 to 9999-12-31 (in UTC and in this server's time zone)"
)
LAST_UTC = "9999-12-31T23:59:59.999999-12:00"  # 10000-01-01 in UTC
FIRST_UTC = "0001-01-01T00:00:00+14:00"  # year 0 in UTC
TOO_LATE = (
    f"'from' is too late: {RANGE}; got '{LAST_UTC}'. "
    "Use a date up to 9999-12-30, or leave 'from' empty for no limit."
)
TOO_EARLY = (
    f"'to' is too early: {RANGE}; got '{FIRST_UTC}'. "
    "Use a date from 0001-01-02 on, or leave 'to' empty for no limit."
)
BAD_INPUT = [
    ({"email": "nope", "from": "2019-01-01"}, {"email": [BAD_EMAIL]}),
    ({"from": "2019-01-01"}, {"email": [NO_EMAIL]}),
    ({"email": A, "from": "15/05/2017"}, {"from": [f"'from' must be {DATES}; got '15/05/2017'."]}),
    ({"email": A, "to": "2021-02-30"}, {"to": [f"'to' must be {DATES}; got '2021-02-30'."]}),
    ({"email": A, "from": "2020-05-15 00:00", "to": "2017-05-15"}, {"to": [REVERSED]}),
    # Well formed, but past year 9999 (or before year 1) once moved to UTC.
    ({"email": A, "from": LAST_UTC}, {"from": [TOO_LATE]}),
    ({"email": A, "to": FIRST_UTC}, {"to": [TOO_EARLY]}),
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


def test_a_date_out_of_range_is_said_next_to_its_field_on_the_page(browser_client):  # type: ignore[no-untyped-def]
    page = browser_client.post("/export_data/", {"email": A, "from": LAST_UTC, "to": FIRST_UTC})
    assert page.status_code == 400
    text = html.unescape(page.content.decode())
    assert text.count('class="error" role="alert"') == 2
    assert f'value="{LAST_UTC}"' in text and TOO_LATE in text
    assert f'value="{FIRST_UTC}"' in text and TOO_EARLY in text
    assert Job.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "value", "said"), [("from", LAST_UTC, TOO_LATE), ("to", FIRST_UTC, TOO_EARLY)]
)
def test_the_seeds_get_with_a_token_refuses_a_date_out_of_range(api, field, value, said):  # type: ignore[no-untyped-def]
    answer = api.get("/export_data/", {"email": A, field: value, "format": "csv"})
    assert answer.status_code == 400
    assert answer.json() == {field: [said]}
    assert Job.objects.count() == 0


def test_the_range_ends_where_the_server_time_zone_ends_too(api, settings):  # type: ignore[no-untyped-def]
    """Fine in UTC, yet past 9999-12-31 where the pages, the mail and the file name show it."""
    settings.TIME_ZONE = "Pacific/Kiritimati"  # UTC+14
    late = "9999-12-31T12:00:00Z"
    answer = api.post("/api/exports/responses/", {"email": A, "from": late}, format="json")
    assert answer.status_code == 400
    assert answer.json() == {
        "from": [
            f"'from' is too late: {RANGE}; got '{late}'. "
            "Use a date up to 9999-12-30, or leave 'from' empty for no limit."
        ]
    }
    settings.TIME_ZONE = "Pacific/Pago_Pago"  # UTC-11: the end of 9999-12-31 there is 10000 in UTC
    answer = api.post("/api/exports/responses/", {"email": A, "to": "9999-12-31"}, format="json")
    assert answer.status_code == 400 and answer.json()["to"][0].startswith("'to' is too late:")


def test_the_dates_the_messages_suggest_are_accepted(api, settings):  # type: ignore[no-untyped-def]
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC"):
        settings.TIME_ZONE = zone
        for field in ("from", "to"):
            for day in ("0001-01-02", "9999-12-30"):
                answer = api.post(
                    "/api/exports/responses/", {"email": A, field: day}, format="json"
                )
                assert answer.status_code == 202, (zone, field, day, answer.json())
    # In UTC the whole of year 9999 and year 1 can be named.
    job = Job.objects.get(
        id=api.post(
            "/api/exports/responses/",
            {"email": A, "from": "0001-01-01", "to": "9999-12-31"},
            format="json",
        ).json()["task_id"]
    )
    assert job.params["from"] == "0001-01-01T00:00:00+00:00"
    assert job.params["to"] == "9999-12-31T23:59:59.999999+00:00"
    assert job.label == (
        "Responses 0001-01-01 00:00:00.000000 +00:00 (UTC) to "
        "9999-12-31 23:59:59.999999 +00:00 (UTC), csv, for a@example.com"
    )
    assert job.params["file"].endswith(
        "/responses_0001-01-01T000000.000000+0000_9999-12-31T235959.999999+0000.csv"
    )


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
    with pytest.raises(CommandError) as refused:
        call_command("export-responses", "--email", A, "--from", LAST_UTC, "--user", "alice")
    assert str(refused.value) == f"--from: {TOO_LATE}"


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


def test_fake_responses_refuses_dates_out_of_range():  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError) as refused:
        call_command("fake-responses", "3", "--to", FIRST_UTC)
    assert str(refused.value) == (
        f"--from and --to must be dates from 0001-01-02 to 9999-12-30; got {FIRST_UTC}."
    )
    with pytest.raises(CommandError) as refused:
        call_command("fake-responses", "3", "--to", "0002-01-01")
    assert str(refused.value) == "--to is less than 3 years after 0001-01-01: give --from too."
    # Within the last minute of year 9999: the responses land in that minute.
    call_command("fake-responses", "2", "--from", "9999-12-31 23:59:30", "--to", "9999-12-31")
    from responses.models import FormResponse

    assert {r.timestamp.year for r in FormResponse.objects.all()} == {9999}
