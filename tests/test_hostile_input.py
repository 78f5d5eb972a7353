"""Hostile and malformed CSV files, uploaded through the real endpoint to a real worker.

Every file of the corpus (``tests/data/hostile/``, plus a few too big to commit
that are made here) must get a clear message, write no team, answer no 500,
and leave the worker alive to take the next job. Upload names that look like
paths never become paths: the stored name is generated.

CI runs on MariaDB and PostgreSQL (marker ``servers``) only the cases that
store something hostile in the job row (a row's bad value, the upload name);
the rest is reading and wording, the same on every database.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import Resolver404, resolve
from rest_framework.test import APIClient

from jobs.models import Job, State
from teams.models import Team
from tests.workers import Worker, wait_state

CORPUS = Path(__file__).parent / "data" / "hostile"
HEADER = b"name,description,manager,members\r\n"
NOT_TEXT = [
    "The file is not a CSV text file: its first row contains binary data.",
    'Save it as "CSV UTF-8" or as an Excel workbook (.xlsx)',
]
NAMED = "not a CSV text file or an .xlsx workbook."
# The CSV reader's words (teams/readers/csvfile.py), not yet in binary units.
TOO_BIG = "The value is larger than 1 MiB (1,048,576 bytes), the most a cell may hold."
HEADER_HINT = "The first row must name the column name and may name description, manager, members"
NOT_UTF8 = "The row is not valid UTF-8 text. Save the file as CSV UTF-8."
NOTHING = "Nothing was imported: "
NEVER_CLOSED = 'A quoted field is never closed: a " opens a field that runs to the end of the file.'


def fields(n: int) -> str:
    return f"The row has {n:,} field{'' if n == 1 else 's'}; expected 4 (name, description, manager"


# What the user reads for each file (the key words of the message).
EXPECTED: dict[str, list[str]] = {
    "bom_only.csv": ["The file has no header.", HEADER_HINT],
    "ctrl_z_and_controls.csv": [NOTHING, "1 of 2 rows is bad", "Row 3: " + fields(1)],
    "empty_lines_only.csv": ["The file has no header."],
    "empty_names.csv": [
        NOTHING,
        "all 2 rows are bad",
        "Row 2, column name (A): The name is empty",
    ],
    "formula_payloads.csv": [
        NOTHING,
        "1 of 4 rows is bad",
        "Row 5, column manager (C): The manager is 34 characters long; at most 20",
    ],
    "gzip_renamed.csv": ["The file is a gzip archive, " + NAMED],
    "header_twice_duplicate.csv": [
        'The header (row 1) names the column "name" twice, in columns A and B.'
    ],
    "html_document.csv": [
        "The header (row 1) misses the column name and has the unknown",
        HEADER_HINT,
    ],
    "html_in_header.csv": [
        "The header (row 1) has the unknown column \"<script>alert('header')</script>\" (column D)."
    ],
    "html_in_names.csv": [NOTHING, "Row 3, column manager (C): The manager is 29 characters"],
    "json_document.csv": [
        "The header (row 1) misses the column name and has the unknown",
        HEADER_HINT,
    ],
    # Not UTF-8, so read in the legacy encoding detected (Windows-1252): "déscription".
    "latin1_header.csv": ['has the unknown column "déscription" (column B).', HEADER_HINT],
    "long_manager_unicode.csv": ["Row 2, column manager (C): The manager is 21 characters long"],
    "long_name.csv": ["Row 2, column name (A): The name is 601 characters long; at most 600"],
    "mixed_encodings.csv": [NOTHING, "2 of 3 rows are bad", "Row 3, column name (A): " + NOT_UTF8],
    "nested_quotes.csv": [NOTHING, "Row 2: " + NEVER_CLOSED],
    "no_header_just_data.csv": [
        'has the unknown columns "platform" (column A), "keeps the lights on" (column B)'
    ],
    "nul_bytes.csv": NOT_TEXT,
    "only_quotes.csv": ["The header row (row 1) is not valid CSV."],
    "only_quotes_even.csv": ['has the unknown column """"', HEADER_HINT],
    "overlong_utf8.csv": ["Row 2, column name (A): " + NOT_UTF8],
    "pdf_renamed.csv": ['has the unknown column "%pdf-1.4"', HEADER_HINT],
    "png_renamed.csv": ["The file is a PNG image, " + NAMED],
    "quote_after_closing.csv": [
        "Row 2, column name (A): A quote closes the value but is not followed by a comma."
    ],
    "surrogate_utf8.csv": ["Row 2, column name (A): " + NOT_UTF8],
    "too_few_fields.csv": ["Row 2: " + fields(1)],
    "too_many_fields.csv": ["Row 2: " + fields(6)],
    # Only name is required: the cut-off "descri" is an unknown column.
    "truncated_header.csv": ['has the unknown column "descri" (column B).', HEADER_HINT],
    "truncated_in_quote.csv": ["Row 2: " + NEVER_CLOSED],
    "truncated_mid_row.csv": [NOTHING, "all 2 rows are bad", "Row 2: " + fields(2)],
    "utf8_bom_then_cp1252_row.csv": ["Row 2, column description (B): " + NOT_UTF8],
    "whitespace_only.csv": ["The file has no header."],
    "zip_renamed.csv": ["The file is a ZIP archive, not an Excel workbook."],
}
# Refused before the import read what spreadsheets write (other line ends, delimiters
# and encodings); now read, to the exact row.
ACCEPTED = {
    name: [("Platform", "lights", "ada", "Ada")]
    for name in (
        "cr_only_line_ends.csv",
        "semicolon_delimited.csv",
        "tab_delimited.csv",
        "utf16_be_bom.csv",
        "utf16_le_bom.csv",
        "utf32_bom.csv",
    )
}


def _big_field() -> bytes:
    return HEADER + b"N" * (10 * 1024**2) + b",d,m,x\r\n"


def _wide_header() -> bytes:
    extra = ",".join(f"c{i}" for i in range(100_000)).encode()
    return HEADER.rstrip() + b"," + extra + b"\r\nA,b,c,d\r\n"


def _wide_row() -> bytes:
    return HEADER + b",".join([b"x"] * 100_000) + b"\r\n"


def _long_line() -> bytes:
    # One 8 MB line: a quoted name full of commas (a single field, no line end).
    return HEADER + b'"' + b"a," * (4 * 1024**2) + b'",d,m,x'


def _nul_after_header_check() -> bytes:
    # The NUL sits beyond the first 64 KiB, which is all the file-level check reads.
    good = b"".join(b"Team %d,desc,m,x\r\n" % i for i in range(5000))
    return HEADER + good + b"Bad,de\x00sc,m,x\r\n"


def _deep_quotes() -> bytes:
    return HEADER + b'"' * 1_000_001 + b",d,m,x\r\n"


# Too big to commit: made at test time.
GENERATED: dict[str, tuple[Callable[[], bytes], list[str]]] = {
    "ten_mb_single_field": (_big_field, ["Row 2, column name (A): " + TOO_BIG]),
    "hundred_k_columns_header": (
        _wide_header,
        [
            'has the unknown columns "c0" (column E), "c1" (column F)',
            '"c9" (column N), and 99,990 more.',
            HEADER_HINT,
        ],
    ),
    "hundred_k_columns_row": (_wide_row, ["Row 2: " + fields(100_000)]),
    "eight_mb_line": (_long_line, ["Row 2, column name (A): " + TOO_BIG]),
    "nul_after_64k": (
        _nul_after_header_check,
        [
            NOTHING,
            "1 of 5,001 rows is bad",
            "Row 5,002, column description (B): The row contains a",
        ],
    ),
    "million_quotes": (_deep_quotes, ["Row 2: " + NEVER_CLOSED]),
}

# Upload names that look like paths or carry markup, control characters.
HOSTILE_NAMES: dict[str, bytes] = {
    "parent dirs": b"../../etc/passwd.csv",
    "absolute": b"/etc/cron.d/evil.csv",
    "windows drive": b"C:\\Windows\\System32\\x.csv",
    "nul in name": b"teams\x00.exe.csv",
    "newline in name": b"teams\r\nX-Injected: 1.csv",
    "script in name": b"<script>alert('file')</script>.csv",
    "very long name": b"n" * 900 + b".csv",
    "unicode rtl override": "evil\u202evsc.exe".encode(),
}


def multipart(filename: bytes, data: bytes) -> tuple[bytes, str]:
    """A multipart body built by hand, so hostile names reach the server as sent."""
    boundary = f"hostile{uuid.uuid4().hex}".encode()
    body = b"".join(
        [
            b"--" + boundary + b"\r\n",
            b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n',
            b"Content-Type: text/csv\r\n\r\n",
            data,
            b"\r\n--" + boundary + b"--\r\n",
        ]
    )
    return body, f"multipart/form-data; boundary={boundary.decode()}"


def stored_per_row(cases: dict[str, list[str]]) -> list[Any]:
    """The cases, those whose problems keep a row's value in the job row marked ``servers``.

    A message about the whole file (no header, a binary file, a wrong header)
    is ordinary text and reads the same on every database. A row-level problem
    stores the bad value itself (NUL bytes, broken UTF-8, control characters,
    cut long values): what a database accepts there is its own, so CI runs
    those on MariaDB and PostgreSQL too.
    """
    return [
        pytest.param(name, marks=pytest.mark.servers)
        if any(words == NOTHING or words.startswith("Row ") for words in cases[name])
        else name
        for name in sorted(cases)
    ]


_first_worker_pid: list[int] = []


def same_worker(worker: Worker) -> None:
    """The worker that took the first file of the corpus is still the one taking jobs."""
    assert worker.proc is not None and worker.alive
    if not _first_worker_pid:
        _first_worker_pid.append(worker.proc.pid)
    assert worker.proc.pid == _first_worker_pid[0], "the worker died and was restarted"


def import_fails(api: APIClient, data: bytes, name: bytes = b"teams.csv") -> Job:
    before = list(Team.objects.values_list("id", "name"))
    body, content_type = multipart(name, data)
    answer = api.post("/api/imports/teams/", body, content_type=content_type)
    assert answer.status_code == 202, answer.content
    job = wait_state(Job.objects.get(id=answer.json()["task_id"]), State.FAILED, timeout=90)
    assert not job.error.startswith("Unexpected error"), job.error
    assert job.processed == 0
    assert list(Team.objects.values_list("id", "name")) == before
    assert not default_storage.exists(job.params["file"])  # the upload is cleaned up
    # The pages that show the job render whatever was in the file.
    assert api.get(f"/api/tasks/{job.id}/").status_code == 200
    assert api.get(f"/tasks/{job.id}/", HTTP_ACCEPT="text/html").status_code == 200
    return job


@pytest.fixture
def existing(user):  # type: ignore[no-untyped-def]
    Team.objects.create(name="Already here", manager="m")


def test_the_corpus_is_complete() -> None:
    on_disk = {p.name for p in CORPUS.glob("*.csv")}
    assert on_disk == set(EXPECTED) | set(ACCEPTED)
    assert len(on_disk) + len(GENERATED) + len(HOSTILE_NAMES) >= 30


@pytest.mark.parametrize("name", stored_per_row(EXPECTED))
def test_a_hostile_file_gets_a_clear_message(worker, api, existing, name):  # type: ignore[no-untyped-def]
    job = import_fails(api, (CORPUS / name).read_bytes())
    for words in EXPECTED[name]:
        assert words in job.error
    same_worker(worker)


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_a_file_once_refused_is_now_read(worker, api, existing, name):  # type: ignore[no-untyped-def]
    body, content_type = multipart(name.encode(), (CORPUS / name).read_bytes())
    answer = api.post("/api/imports/teams/", body, content_type=content_type)
    job = wait_state(Job.objects.get(id=answer.json()["task_id"]), State.SUCCEEDED, timeout=60)
    fields = ("name", "description", "manager", "members")
    assert list(Team.objects.filter(job=job).values_list(*fields)) == ACCEPTED[name]
    same_worker(worker)


@pytest.mark.parametrize("name", stored_per_row({n: words for n, (_, words) in GENERATED.items()}))
def test_a_huge_hostile_file_gets_a_clear_message(worker, api, existing, name):  # type: ignore[no-untyped-def]
    make, expected = GENERATED[name]
    job = import_fails(api, make())
    for words in expected:
        assert words in job.error
    assert len(job.error) < 2000  # the message quotes the file, but never all of it
    same_worker(worker)


@pytest.mark.servers  # NUL, line ends, 900 characters in a stored name: the database's to refuse
@pytest.mark.parametrize("case", sorted(HOSTILE_NAMES))
def test_an_upload_name_never_becomes_a_path(worker, api, existing, case):  # type: ignore[no-untyped-def]
    job = import_fails(api, (CORPUS / "too_few_fields.csv").read_bytes(), HOSTILE_NAMES[case])
    assert "Row 2: " + fields(1) in job.error
    stored = job.params["file"]
    assert stored.startswith("imports/teams/") and stored.endswith(".csv")
    assert len(stored.split("/")[-1]) == len(uuid.uuid4().hex) + 4
    label = job.params["filename"]
    assert not set(label) & set("/\\\x00\r\n"), label
    assert label not in {"", ".", ".."}
    files = {p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()}
    assert all(p.resolve().is_relative_to(Path(settings.MEDIA_ROOT).resolve()) for p in files)
    same_worker(worker)


@pytest.mark.parametrize("name", [b"", b"..", b"/", b"../"])
def test_an_upload_without_a_usable_name_is_no_file(api, existing, name):  # type: ignore[no-untyped-def]
    # Django drops a file part whose name is empty once cleaned (".." is): nothing is stored.
    body, content_type = multipart(name, HEADER + b"A,b,c,d\r\n")
    answer = api.post("/api/imports/teams/", body, content_type=content_type)
    assert answer.status_code == 400
    assert answer.json() == {
        "detail": 'No file was uploaded. Send the CSV file in the multipart form field "file".'
    }
    assert not Job.objects.exists()


def test_a_name_past_the_multipart_header_limit_is_refused(api, existing):  # type: ignore[no-untyped-def]
    body, content_type = multipart(b"n" * 2000 + b".csv", HEADER + b"A,b,c,d\r\n")
    answer = api.post("/api/imports/teams/", body, content_type=content_type)
    assert answer.status_code == 400
    assert answer.json() == {
        "detail": "Multipart form parse error - Request max total header size exceeded."
    }
    assert not Job.objects.exists()


def test_the_worker_survived_and_takes_the_next_job(worker, api):  # type: ignore[no-untyped-def]
    body, content_type = multipart(b"good.csv", HEADER + b"Platform,lights,ada,Ada\r\n")
    answer = api.post("/api/imports/teams/", body, content_type=content_type)
    job = wait_state(Job.objects.get(id=answer.json()["task_id"]), State.SUCCEEDED, timeout=30)
    assert job.result == {"imported": 1, "created": 1, "updated": 0, "unchanged": 0, "skipped": 0}
    same_worker(worker)


def test_formulas_are_imported_as_text_and_neutralised_in_the_report(worker, api, client, user):  # type: ignore[no-untyped-def]
    """Formula-like values are data: stored verbatim; the error report defuses them."""
    data = (CORPUS / "formula_payloads.csv").read_bytes()
    good_rows = [[v.strip() for v in row] for row in csv.reader(io.StringIO(data.decode()))][1:4]
    body, content_type = multipart(b"formulas.csv", data)
    answer = api.post("/api/imports/teams/", body, content_type=content_type)
    failed = wait_state(Job.objects.get(id=answer.json()["task_id"]), State.FAILED, timeout=30)
    client.force_login(user)
    report = client.get(f"/tasks/{failed.id}/errors.csv")
    assert report.status_code == 200
    lines = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode())))
    assert lines[1][:3] == ["5", "manager", "'=this manager name is far too long"]

    upload = SimpleUploadedFile("formulas.csv", data, content_type="text/csv")
    skip = api.post("/api/imports/teams/", {"file": upload, "on_error": "skip"}, format="multipart")
    job = wait_state(Job.objects.get(id=skip.json()["task_id"]), State.SUCCEEDED, timeout=30)
    assert job.result == {"imported": 3, "created": 3, "updated": 0, "unchanged": 0, "skipped": 1}
    stored = list(
        Team.objects.filter(job=job).values_list("name", "description", "manager", "members")
    )
    assert stored == [tuple(row) for row in good_rows]


def _routed(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def test_markup_in_names_is_escaped_on_every_page(worker, api, client, user):  # type: ignore[no-untyped-def]
    # No "/" in the upload name: Django keeps only what follows the last one.
    data = (CORPUS / "html_in_names.csv").read_bytes()
    body, content_type = multipart(b"<svg onload=alert('file')>.csv", data)
    answer = api.post("/api/imports/teams/", body, content_type=content_type)
    job = wait_state(Job.objects.get(id=answer.json()["task_id"]), State.FAILED, timeout=30)
    assert job.label == "<svg onload=alert('file')>.csv"
    client.force_login(user)
    shown = "&lt;svg onload=alert(&#x27;file&#x27;)&gt;.csv"
    for path in (f"/tasks/{job.id}/", "/tasks/", f"/tasks/{job.id}/stop/", f"/stop_task/{job.id}"):
        page = client.get(path).content.decode()
        assert "<svg onload" not in page, path
        assert shown in page, path
    # The live fragments the pages poll, where the project has them.
    for path in (f"/tasks/{job.id}/fragment/", "/tasks/fragment/"):
        if _routed(path):
            page = client.get(path).content.decode()
            assert "<svg onload" not in page and "<script>alert(" not in page, path
    detail = client.get(f"/tasks/{job.id}/").content.decode()
    assert "<script>alert(" not in detail
    assert "&lt;script&gt;alert(&#x27;mgr&#x27;)&lt;/script&gt;" in detail  # the problem value
