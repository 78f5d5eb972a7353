"""Importing teams: bad input gets a clear message and writes nothing; the page; auth."""

from __future__ import annotations

import csv
import html
import io
import random

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from jobs.models import Job, State
from teams.models import Team
from tests.workers import wait_state

HEADER = "name,description,manager,members"
RULE = (
    "The first row must name the column name and may name description, manager, members (in "
    "any order, any case)."
)
# Said once, after the first problem (a row's own message never repeats it).
HINT = "Download the error report, fix that row and upload the file again."


def upload(api, data: bytes, *, name: str = "teams.csv", **fields):  # type: ignore[no-untyped-def]
    file = SimpleUploadedFile(name, data, content_type="text/csv")
    return api.post("/api/imports/teams/", {"file": file, **fields}, format="multipart")


def run(api, data: bytes, *, state: str = State.FAILED, **fields) -> Job:  # type: ignore[no-untyped-def]
    answer = upload(api, data, **fields)
    assert answer.status_code == 202, answer.content
    return wait_state(Job.objects.get(id=answer.json()["task_id"]), state, timeout=30)


@pytest.fixture
def existing(user):  # type: ignore[no-untyped-def]
    """Teams already in the table: a failed import must leave them exactly as they are."""
    Team.objects.create(name="Already here", manager="m")
    return list(Team.objects.values_list("id", "name"))


FILE_CASES = {
    "empty": (
        b"",
        "The file is empty. Upload a CSV file or a workbook whose first row names the columns: "
        "name, and any of description, manager, members.",
    ),
    "binary": (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
        "The file is a PNG image, not a CSV text file or an .xlsx workbook. Save it as "
        '"CSV UTF-8" or as an Excel workbook (.xlsx) and upload it again.',
    ),
    "latin-1 header": (
        # Read as Windows-1252 (detected): the header names a column "namé".
        b"nam\xe9,description,manager,members\r\nx,y,z,w\r\n",
        'The header (row 1) misses the column name and has the unknown column "namé" (column '
        f"A). {RULE}",
    ),
    "header only": (
        b"name,description,manager,members\r\n",
        f"The file has a header but no teams. Add one row per team below the header {HEADER}.",
    ),
    "no name column": (
        b"description,manager,members\nb,c,d\n",
        f"The header (row 1) misses the column name. {RULE}",
    ),
    "no name column below a title row": (
        b"Teams of 2026\n\nManager,Members\nc,d\n",
        f"The header (row 3) misses the column name. {RULE}",
    ),
    "header only, without the optional columns": (
        b"name\r\n",
        "The file has a header but no teams. Add one row per team below the header name.",
    ),
    "wrong column": (
        b"name,description,manager,boss\nA,b,c,d\n",
        f'The header (row 1) has the unknown column "boss" (column D). {RULE}',
    ),
    "duplicate column": (
        b"name,description,Name ,manager,members\nA,b,A,c,d\n",
        'The header (row 1) names the column "name" twice, in columns A and C. Each column '
        f"may appear only once: {HEADER}.",
    ),
    "not csv at all": (
        b"Hello,\nthis is a letter.\n",
        # The second, empty header cell is an unnamed column: ignored while it is empty.
        'The header (row 1) misses the column name and has the unknown column "hello" (column '
        f"A). {RULE}",
    ),
}


@pytest.mark.parametrize("case", FILE_CASES)
def test_it_fails_a_bad_file_with_a_clear_message(worker, api, existing, case):  # type: ignore[no-untyped-def]
    data, message = FILE_CASES[case]
    job = run(api, data)
    assert job.error == message
    assert job.processed == 0
    assert list(Team.objects.values_list("id", "name")) == existing
    assert not default_storage.exists(job.params["file"])  # the upload is cleaned up


def test_it_says_a_file_named_xlsx_that_is_no_workbook_is_not_readable(worker, api, existing):  # type: ignore[no-untyped-def]
    # Random bytes renamed: no ZIP archive, so not read as a workbook, and not text either.
    data = random.Random(18).randbytes(20_000)
    job = run(api, data, name="Budget 2026.xlsx")
    assert job.error == (
        'The file "Budget 2026.xlsx" is not a readable spreadsheet workbook: an .xlsx workbook '
        "is a ZIP archive and this file is not one (it is damaged, or another kind of file "
        "renamed). Open it in Excel or LibreOffice Calc, save it as an Excel workbook (.xlsx) "
        'or as "CSV UTF-8", and upload it again.'
    )
    assert list(Team.objects.values_list("id", "name")) == existing


def test_it_reads_a_csv_named_xlsx_as_csv(worker, api):  # type: ignore[no-untyped-def]
    # The content decides, not the name.
    job = run(api, f"{HEADER}\r\nA,d,m,x\r\n".encode(), name="teams.xlsx", state=State.SUCCEEDED)
    assert list(Team.objects.filter(job=job).values_list("name", flat=True)) == ["A"]


def test_a_file_with_only_the_name_column_imports_with_the_others_empty(worker, api):  # type: ignore[no-untyped-def]
    job = run(api, b"name\nSolo\n  Duo  \n", state=State.SUCCEEDED)
    teams = Team.objects.filter(job=job).values_list("name", "description", "manager", "members")
    assert list(teams) == [("Solo", "", "", ""), ("Duo", "", "", "")]
    assert job.result["created"] == 2


def test_optional_columns_may_be_left_out_in_any_order(worker, api):  # type: ignore[no-untyped-def]
    data = b'Manager;Name\r\nada;"Platform; core"\r\n;Data\r\n'
    job = run(api, data, state=State.SUCCEEDED)
    teams = Team.objects.filter(job=job).values_list("name", "description", "manager", "members")
    assert list(teams) == [("Platform; core", "", "ada", ""), ("Data", "", "", "")]


def test_a_row_is_checked_against_the_files_own_header(worker, api):  # type: ignore[no-untyped-def]
    job = run(api, b"name,manager\nA,m\nB,m,extra\n")
    message = "The row has 3 fields; expected 2 (name, manager). Quote fields that contain commas."
    assert (
        job.error
        == f"Nothing was imported: 1 of 2 rows is bad. First problem: Row 3: {message} {HINT}"
    )
    assert not Team.objects.exists()


ROW_CASES = {
    "too few fields": (
        b"A,d,m\n",
        "",
        "A,d,m",
        "The row has 3 fields; expected 4 (name, description, manager, members). Fill in the "
        "missing values (members), or leave them empty: one separator for each.",
    ),
    "too many fields": (
        b"A,d,m,x,y\n",
        "",
        "A,d,m,x,y",
        "The row has 5 fields; expected 4 (name, description, manager, members). Quote "
        "fields that contain commas.",
    ),
    "invalid utf-8": (
        b"A,caf\xe9,m,x\n",
        "description",
        "caf\ufffd",
        "The row is not valid UTF-8 text. Save the file as CSV UTF-8.",
    ),
    "long manager": (
        "A,d,Ünïcödé-manager-name,x\n".encode(),
        "manager",
        "Ünïcödé-manager-name",
        "The manager is 20 characters long; at most 20 are allowed.",
    ),
    # Spaces around values are trimmed: a name of spaces is empty.
    "empty name": (b' ,d,m,"a,b"\n', "name", "", "The name is empty; every team needs a name."),
    "long name": (
        ("N" * 601 + ",d,m,x\n").encode(),
        "name",
        "N" * 200 + "…",
        "The name is 601 characters long; at most 600 are allowed.",
    ),
    "unterminated quote": (
        b'A,"never closed,m,x\nB,d,m,x\n',
        "",
        "",
        'A quoted field is never closed: a " opens a field that runs to the end of the file. '
        'Close the quote, and write a quote inside a quoted field as "".',
    ),
}


@pytest.mark.parametrize("case", ROW_CASES)
def test_it_reports_a_bad_row_and_writes_nothing(worker, api, existing, case):  # type: ignore[no-untyped-def]
    bad, column, value, message = ROW_CASES[case]
    if case == "long manager":  # 20 characters is the limit: make it 21
        bad = bad.replace(b"-name", b"-names")
        value += "s"
        message = message.replace("is 20", "is 21")
    data = b"\xef\xbb\xbfName , DESCRIPTION,manager,members\r\nGood,one,m,x\r\n" + bad
    job = run(api, data)
    letter = {"name": "A", "description": "B", "manager": "C", "members": "D"}.get(column, "")
    where = f"Row 3, column {column} ({letter})" if column else "Row 3"
    assert job.error == (
        f"Nothing was imported: 1 of 2 rows is bad. First problem: {where}: {message} {HINT}"
    )
    assert job.problems == [
        {"row": 3, "column": column, "letter": letter, "value": value, "message": message}
    ]
    assert job.problem_count == 1
    assert default_storage.exists(job.error_report_file)  # downloadable from the job page
    assert list(Team.objects.values_list("id", "name")) == existing


def test_it_skips_bad_rows_when_asked_and_reports_them(worker, api, browser_client):  # type: ignore[no-untyped-def]
    data = (
        b"members,name,manager,description\n"
        b'"a,b",First,m1,d1\n'
        b"x,,m2,no name\n"
        b"\n"
        b'x,Third,"=cmd|calc-too-long-manager",d3\n'
        b"x,Fourth,m4,d4\n"
    )
    job = run(api, data, state=State.SUCCEEDED, on_error="skip")
    assert job.result == {
        "imported": 2,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "skipped": 2,
        "empty_rows": 1,
    }  # the blank line
    assert (job.processed, job.total) == (2, 2)
    teams = Team.objects.filter(job=job).values_list("name", "description", "manager", "members")
    assert list(teams) == [("First", "d1", "m1", "a,b"), ("Fourth", "d4", "m4", "x")]
    assert job.problem_count == 2
    assert [(p["row"], p["column"]) for p in job.problems] == [(3, "name"), (5, "manager")]
    report = browser_client.get(f"/tasks/{job.id}/errors.csv")
    assert report.status_code == 200
    data = b"".join(report.streaming_content)
    # Like the export's CSV for Excel: a UTF-8 byte order mark (else Excel shows mojibake), CRLF.
    assert data.startswith(b"\xef\xbb\xbfrow,column,value,message\r\n")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows == [
        ["row", "column", "value", "message"],
        ["3", "name", "", "The name is empty; every team needs a name."],
        # A cell a spreadsheet would run as a formula is neutralised.
        [
            "5",
            "manager",
            "'=cmd|calc-too-long-manager",
            "The manager is 26 characters long; at most 20 are allowed.",
        ],
    ]


def test_it_asks_for_a_file(api):  # type: ignore[no-untyped-def]
    before = Team.objects.count()
    answer = api.post("/api/imports/teams/", {"on_error": "fail"}, format="multipart")
    assert answer.status_code == 400
    assert answer.json() == {
        "detail": 'No file was uploaded. Send the CSV file in the multipart form field "file".'
    }
    answer = upload(api, b"name\n", on_error="maybe")
    assert answer.status_code == 400
    assert answer.json() == {"detail": 'on_error must be "fail" or "skip".'}
    assert Team.objects.count() == before
    assert not Job.objects.exists()


TOO_LARGE = (
    "The file is too large: at most 1,000 bytes can be uploaded. "
    "Split it into smaller files and import them one after the other."
)


def test_it_refuses_a_declared_size_over_the_limit_before_reading_it(api, settings):  # type: ignore[no-untyped-def]
    settings.COLLECT_UPLOAD_MAX_BYTES = 1000
    # The body is tiny but claims 2 GiB: the test client's payload refuses to be
    # read past its end, so a 413 here proves the body was never read.
    file = SimpleUploadedFile("t.csv", b"name\n")
    answer = api.post(
        "/api/imports/teams/", {"file": file}, format="multipart", CONTENT_LENGTH=str(2 * 1024**3)
    )
    assert answer.status_code == 413
    assert answer.json() == {"detail": TOO_LARGE}
    assert not Job.objects.exists()


def test_it_refuses_a_file_over_the_limit_while_it_streams(api, browser_client, settings):  # type: ignore[no-untyped-def]
    settings.COLLECT_UPLOAD_MAX_BYTES = 1000
    data = HEADER.encode() + b"\n" + b"a,b,c,d\n" * 200
    answer = upload(api, data)
    assert answer.status_code == 413
    assert answer.json() == {"detail": TOO_LARGE}
    page = browser_client.post("/import_teams/", {"file": SimpleUploadedFile("t.csv", data)})
    assert page.status_code == 413
    assert TOO_LARGE in page.content.decode()
    assert not Job.objects.exists()


def test_the_page_shows_the_format_and_a_sample(browser_client):  # type: ignore[no-untyped-def]
    page = browser_client.get("/import_teams/")
    assert page.status_code == 200
    html = page.content.decode()
    assert '<input type="file" name="file"' in html
    assert HEADER in html and "/import_teams/sample.csv" in html
    sample = browser_client.get("/import_teams/sample.csv")
    assert sample["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(sample.content.decode(), newline="")))
    assert rows[0] == HEADER.split(",")
    assert len(rows) == 4


def test_a_browser_upload_goes_to_the_job_page(worker, browser_client):  # type: ignore[no-untyped-def]
    data = f"{HEADER}\nA,b,c,d\n".encode()
    answer = browser_client.post(
        "/import_teams/", {"file": SimpleUploadedFile("my teams.csv", data)}
    )
    job = Job.objects.get()
    assert answer.status_code == 302 and answer["Location"] == job.get_absolute_url()
    assert job.label == "my teams.csv" and job.params["file"].startswith("imports/teams/")
    assert "my teams" not in job.params["file"]  # the user's name is never a path
    wait_state(job, State.SUCCEEDED)
    assert Team.objects.filter(job=job).count() == 1


def test_the_seed_url_answers_json_clients_202(worker, api):  # type: ignore[no-untyped-def]
    data = SimpleUploadedFile("t.csv", f"{HEADER}\nA,b,c,d\n".encode())
    answer = api.post("/import_teams/", {"file": data}, format="multipart")
    assert answer.status_code == 202
    body = answer.json()
    assert set(body) == {"task_id", "state", "url"}
    assert body["url"].endswith(f"/api/tasks/{body['task_id']}/")
    wait_state(Job.objects.get(id=body["task_id"]), State.SUCCEEDED)


def test_it_needs_a_login_and_a_csrf_token(user):  # type: ignore[no-untyped-def]
    data = f"{HEADER}\nA,b,c,d\n".encode()
    anonymous = Client()
    assert anonymous.get("/import_teams/")["Location"].startswith("/accounts/login/")
    answer = anonymous.post("/import_teams/", {"file": SimpleUploadedFile("t.csv", data)})
    assert answer.status_code == 302 and answer["Location"].startswith("/accounts/login/")
    api_answer = anonymous.post("/api/imports/teams/", {"file": SimpleUploadedFile("t.csv", data)})
    assert api_answer.status_code == 401
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    refused = strict.post("/import_teams/", {"file": SimpleUploadedFile("t.csv", data)})
    assert refused.status_code == 403
    # A browser's form: the page says what happened (not DRF's JSON "CSRF Failed: …").
    assert refused["Content-Type"].startswith("text/html")
    assert (
        "This form has expired, or it was not sent from one of Collect's pages, so nothing was "
        "done. Go back, reload the page and try again."
    ) in html.unescape(refused.content.decode())
    assert not Job.objects.exists()


def test_the_api_is_in_the_openapi_schema(api):  # type: ignore[no-untyped-def]
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/imports/teams/"]["post"]
    assert set(operation["responses"]) == {"202", "400", "403", "413", "415", "429"}
    assert "multipart/form-data" in operation["requestBody"]["content"]


@pytest.mark.servers  # PostgreSQL refuses a NUL in text and JSON: a 500 before
@pytest.mark.django_db
def test_control_characters_in_a_sheet_name_are_refused_and_dropped_from_a_file_name(api):  # type: ignore[no-untyped-def]
    data = f"{HEADER}\r\nOwls,d,m,x\r\n".encode()
    answer = upload(api, data, sheet="Teams\x00")
    assert answer.status_code == 400, answer.content
    assert "The sheet name contains a control character" in answer.content.decode()
    answer = upload(api, data, name="te\x00a\nms.csv")
    assert answer.status_code == 202, answer.content
    job = Job.objects.get(id=answer.json()["task_id"])
    assert (job.label, job.param("filename")) == ("teams.csv", "teams.csv")
