"""Every export format read back and compared cell by cell with the database.

A real worker, a real SMTP server, the files read with the csv module, a
workbook reader (openpyxl) and json. Then kill-and-resume, pause-resume and
stop for the formats whose file is not a plain CSV (XLSX, GeoJSON).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import time
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
from django.contrib.auth.models import User
from django.core.files.storage import default_storage
from openpyxl.utils.escape import unescape

from jobs import services
from jobs.models import Job
from responses.fake import create_responses
from responses.models import FormResponse
from responses.services import responses_export_start
from tests.test_export_helpers import END, HEADER, START, UTC, body, one_mail
from tests.workers import wait_processed, wait_state

pytestmark = pytest.mark.servers

DAY = dt.datetime(2020, 5, 15, tzinfo=UTC)
LAST = dt.datetime(2020, 5, 15, 23, 59, 59, 999_999, tzinfo=UTC)
# Text a spreadsheet would run (neutralised in the Excel CSV only).
FORMULAS = {
    '=HYPERLINK("http://x","click")',
    "+SUM(1;2)",
    "@cmd",
    "-2+3",
}
NAMES = [
    *sorted(FORMULAS),
    "x;=cmd|' /C calc'!A0",
    'He said "hi", twice',
    "two\r\nlines\nthree",
    # Text a workbook must escape: control characters, and text that reads like an
    # escape (ECMA-376 Part 1, §22.9.2.19), overlapping ones included.
    "bell\x07 _x000D_ _x0041_x0042_ a_x0041\r",
    "<r>&</r>",  # XlsxWriter takes this for rich text and writes it unescaped
    "José Müller 😀 𝄞",
    "-",
    "0",
]
MOBILES = ["+254712345678", "-", "-0.5", "(020) 555 0101", "", "0"]
POINTS = [
    (Decimal("-33.868820"), Decimal("-151.209296")),
    (Decimal("0.000000"), Decimal("0.000000")),
    (Decimal("89.999999"), Decimal("179.999999")),
    (Decimal("-0.000001"), Decimal("12.5")),
]


def seed(user: User) -> list[FormResponse]:
    """Edge values inside 2020-05-15 (both ends included), and rows just outside it."""
    rows = []
    step = (LAST - DAY) / (len(NAMES) - 1)
    for i, name in enumerate(NAMES):
        lat, lon = POINTS[i % len(POINTS)]
        ts = LAST if i == len(NAMES) - 1 else DAY + step * i
        rows.append(
            FormResponse.objects.create(
                timestamp=ts,
                user=None if i % 3 == 1 else user,
                name_of_respondent=name,
                gender_of_respondent=["Male", "Female", "Other"][i % 3],
                reading_books=i % 2 == 0,
                listening_music=i % 3 == 0,
                mobile_no=MOBILES[i % len(MOBILES)],
                record_latitude=lat,
                record_longitude=lon,
            )
        )
    for ts in (DAY - dt.timedelta(microseconds=1), LAST + dt.timedelta(microseconds=1)):
        FormResponse.objects.create(
            timestamp=ts, name_of_respondent="Outside", gender_of_respondent="Male",
            record_latitude=Decimal(1), record_longitude=Decimal(1),
        )  # fmt: skip
    return rows


def stored(qs: Any) -> list[dict[str, Any]]:
    """The database's values, in export order, straight from the model."""
    names = dict(User.objects.values_list("id", "username"))
    return [
        {
            "id": r.id,
            "timestamp": r.timestamp,
            "user": names[r.user_id] if r.user_id else None,
            "name": r.name_of_respondent,
            "gender": r.gender_of_respondent,
            "books": r.reading_books,
            "music": r.listening_music,
            "mobile": r.mobile_no,
            "lat": r.record_latitude,
            "lon": r.record_longitude,
        }
        for r in qs.order_by("timestamp", "id")
    ]


def read_csv(data: bytes, *, excel: bool) -> list[dict[str, Any]]:
    bom = b"\xef\xbb\xbf"
    assert data.startswith(bom) is excel
    text = data[len(bom) :].decode() if excel else data.decode()
    # CRLF ends every line; a bare LF only inside the quoted cell that holds one.
    assert "\n" not in text.replace("two\r\nlines\nthree", "").replace("\r\n", "")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == HEADER

    def unneutralised(cell: str) -> str:
        if excel and cell.startswith("'") and cell[1:] in FORMULAS:
            return cell[1:]
        assert cell not in FORMULAS or not excel, f"{cell!r} left live"
        return cell

    return [
        {
            "id": int(r[0]),
            "timestamp": dt.datetime.fromisoformat(r[1]),
            "timestamp_text": r[1],
            "user": r[2] or None,
            "name": unneutralised(r[3]),
            "gender": r[4],
            "books": {"true": True, "false": False}[r[5]],
            "music": {"true": True, "false": False}[r[6]],
            "mobile": r[7],
            "lat": Decimal(r[8]),
            "lon": Decimal(r[9]),
        }
        for r in rows[1:]
    ]


def read_xlsx(data: bytes) -> list[dict[str, Any]]:
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book["responses"]
    assert sheet.freeze_panes == "A2"
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == [name.replace("timestamp", "timestamp (UTC)") for name in HEADER]
    out = []

    def text(value: str | None) -> str | None:
        # A control character such as CR is stored as the OOXML escape _x000D_, which
        # Excel reads back as the character; openpyxl leaves inline strings escaped.
        # Its unescape reads each _xHHHH_ left to right, as Excel does.
        return None if value is None else unescape(value)

    for r in rows[1:]:
        assert isinstance(r[0], int) and isinstance(r[1], dt.datetime)
        assert isinstance(r[5], bool) and isinstance(r[8], float | int)
        out.append(
            {
                "id": r[0],
                "timestamp": r[1],
                "user": text(r[2]),
                "name": text(r[3]),
                "gender": r[4],
                "books": r[5],
                "music": r[6],
                "mobile": text(r[7]) or "",
                "lat": Decimal(str(r[8])),
                "lon": Decimal(str(r[9])),
            }
        )
    return out


def read_geojson(data: bytes) -> list[dict[str, Any]]:
    doc = json.loads(data, parse_float=Decimal)
    assert doc["type"] == "FeatureCollection"
    out = []
    for f in doc["features"]:
        assert f["type"] == "Feature" and f["geometry"]["type"] == "Point"
        assert f["id"] == f["properties"]["id"]
        lon, lat = f["geometry"]["coordinates"]
        p = f["properties"]
        out.append(
            {
                "id": p["id"],
                "timestamp": dt.datetime.fromisoformat(p["timestamp"]),
                "timestamp_text": p["timestamp"],
                "user": p["user"],
                "name": p["name_of_respondent"],
                "gender": p["gender_of_respondent"],
                "books": p["reading_books"],
                "music": p["listening_music"],
                "mobile": p["mobile_no"],
                "lat": Decimal(lat),
                "lon": Decimal(lon),
            }
        )
    return out


READERS = {
    "csv": lambda data: read_csv(data, excel=True),
    "csv_raw": lambda data: read_csv(data, excel=False),
    "xlsx": read_xlsx,
    "geojson": read_geojson,
}


def expected(fmt: str, qs: Any) -> list[dict[str, Any]]:
    rows = stored(qs)
    for row in rows:
        if fmt == "xlsx":
            # A workbook cell holds a date-time without zone, to the millisecond (cut).
            ts = row["timestamp"].astimezone(UTC).replace(tzinfo=None)
            row["timestamp"] = ts.replace(microsecond=ts.microsecond // 1000 * 1000)
        else:
            row["timestamp_text"] = row["timestamp"].isoformat(timespec="microseconds")
    return rows


def attachment(msg: Any) -> tuple[str, str, bytes]:
    (part,) = list(msg.iter_attachments())
    return part.get_filename(), part.get_content_type(), part.get_payload(decode=True)


def export(user: User, fmt: str, date_from: Any = None, date_to: Any = None) -> Job:
    return responses_export_start(
        email="alice@example.com", date_from=date_from, date_to=date_to, by=user, format=fmt
    )


MEDIA = {
    "csv": ("csv", "text/csv"),
    "csv_raw": ("csv", "text/csv"),
    "xlsx": ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "geojson": ("geojson", "application/geo+json"),
}


@pytest.mark.parametrize("fmt", ["csv", "csv_raw", "xlsx", "geojson"])
def test_it_gives_back_every_stored_value(fmt, make_worker, smtp, inbox, user):  # type: ignore[no-untyped-def]
    seed(user)
    make_worker(env=smtp.env(COLLECT_EXPORT_BATCH_ROWS="3"))
    job = export(user, fmt, DAY, LAST)
    wait_state(job, "succeeded")
    msg = one_mail(inbox)
    name, media_type, data = attachment(msg)
    extension, want_type = MEDIA[fmt]
    assert name == (
        f"responses_2020-05-15T000000.000000+0000_2020-05-15T235959.999999+0000.{extension}"
    )
    assert media_type == want_type
    with default_storage.open(job.result_file, "rb") as fh:
        assert fh.read() == data
    in_range = FormResponse.objects.filter(timestamp__gte=DAY, timestamp__lte=LAST)
    assert in_range.count() == len(NAMES)
    assert READERS[fmt](data) == expected(fmt, in_range)
    assert "from 2020-05-15 00:00:00.000000 +00:00 (UTC) to 2020-05-15 23:59:59.999999" in body(msg)
    if fmt == "csv":
        # Quoted, so a semicolon locale does not split it and run its second half.
        assert "\"x;=cmd|' /C calc'!A0\"" in data.decode("utf-8-sig")
    # Nothing left over from writing.
    assert os.listdir(os.path.dirname(default_storage.path(job.result_file))) == [name]


def _running(fmt: str, make_worker: Any, smtp: Any, user: User) -> tuple[Job, Any, dict[str, str]]:
    create_responses(3000, start=START, end=END, seed=11)
    env = smtp.env(COLLECT_EXPORT_BATCH_ROWS="100", COLLECT_EXPORT_THROTTLE_SECONDS="0.03")
    first = make_worker(env=env)
    job = export(user, fmt)
    wait_processed(job, 500)
    return job, first, env


def _part(job: Job) -> str:
    path = default_storage.path(job.param("file"))
    return path + ".rows" if job.param("format") == "xlsx" else path


def _check_file(fmt: str, inbox: Any, job: Job) -> None:
    data = attachment(one_mail(inbox))[2]
    assert READERS[fmt](data) == expected(fmt, FormResponse.objects.all())
    assert job.processed == job.total == 3000


@pytest.mark.parametrize("fmt", ["xlsx", "geojson"])
def test_it_resumes_after_a_killed_worker_to_an_exact_file(fmt, make_worker, smtp, inbox, user):  # type: ignore[no-untyped-def]
    job, first, env = _running(fmt, make_worker, smtp, user)
    first.kill()  # SIGKILL while it writes
    job.refresh_from_db()
    assert job.state == "running" and job.processed < 3000
    with open(_part(job), "ab") as fh:
        # A write the dead worker never committed: the next run must cut it off.
        fh.write(b'[99999999, "torn line without an e')
    make_worker(env=env)
    wait_state(job, "succeeded", timeout=120)
    assert job.attempts >= 2
    _check_file(fmt, inbox, job)


@pytest.mark.parametrize("fmt", ["xlsx", "geojson"])
def test_it_pauses_and_resumes_to_an_exact_file(fmt, make_worker, smtp, inbox, user):  # type: ignore[no-untyped-def]
    job, _, _ = _running(fmt, make_worker, smtp, user)
    services.job_pause(job=job, by=user)
    wait_state(job, "paused")
    assert job.processed < 3000
    assert os.path.getsize(_part(job)) == job.checkpoint["size"]
    services.job_resume(job=Job.objects.get(id=job.id), by=user)
    wait_state(job, "succeeded", timeout=120)
    _check_file(fmt, inbox, job)


@pytest.mark.parametrize("fmt", ["xlsx", "geojson"])
def test_it_stops_without_file_or_mail(fmt, make_worker, smtp, inbox, user):  # type: ignore[no-untyped-def]
    job, _, _ = _running(fmt, make_worker, smtp, user)
    folder = os.path.dirname(default_storage.path(job.param("file")))
    assert os.path.exists(_part(job))
    services.job_stop(job=job, by=user)
    wait_state(job, "stopped")
    assert job.processed < 3000
    assert not os.path.exists(folder)
    assert job.result_file == ""
    time.sleep(1)
    assert inbox.messages == []
