"""CSV lines built by the database are byte for byte those of the Python writers.

``responses.sqllines`` builds the export's CSV in SQL on PostgreSQL and
MariaDB; the Python writers (``responses.writers.csv``) are the reference.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import connection

from responses import pages, sqllines
from responses.models import FormResponse
from responses.writers import writer_for

UTC = dt.UTC

# Cells the database decides itself: formulas, number-like text, quoting, unicode
# (full-width = @ + are not formulas).
EASY = [
    "=1+1", '=HYPERLINK("http://x")', "@SUM(A1)", "+SUM(A1)", "-2+3", "-A1", "+cmd|' /C calc'!A0",
    "+254712345678", "-", "+", "-0.5", "+44 20 7946 0958", "-1,5", "+1.5,", "(020) 555 0101",
    "O'Brien, Jr.", "a;b", 'say "hi"', "line\nbreak", "cr\rx", "crlf\r\nx", ",", '"', ";", "",
    "José 😀", "日本語", "\uff1d1", "\uff20x", "\uff0b1", "'=quoted", "back\\slash", "100%",
    "%s %%", "tab\tinside", "Kelvin \u212a", "a=b", "x;=cmd|' /C calc'!A0",
    "\u00a0nbsp first", "\ufeffbom",
]  # fmt: skip
# Cells whose formula status needs Python's Unicode \d and \s: the page goes to Python.
HARD = [" =1", "\t=1", "\r\n@x", "\tTab", " plain", "+\u0663", "+\uff11", "-\u00a0"]
HARD += ["-\x0b", "+\x1c1", "-é"]

MOMENTS = [
    dt.datetime(2019, 3, 31, 1, 0, tzinfo=UTC),  # a DST change in Europe
    dt.datetime(2019, 10, 27, 0, 59, 59, 999999, tzinfo=UTC),
    dt.datetime(2020, 2, 29, 23, 59, 59, 1, tzinfo=UTC),
    dt.datetime(1850, 6, 1, 12, 0, 0, 500000, tzinfo=UTC),  # local mean time: offsets in seconds
    dt.datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC),  # past 32-bit time
    dt.datetime(2000, 1, 1, tzinfo=UTC),
]
COORDINATES = [
    (Decimal("-90.000000"), Decimal("0")),
    (Decimal("1.5"), Decimal("-179.999999")),
    (Decimal("-0.000001"), Decimal("180.000000")),
    (Decimal("12.345678"), Decimal("-0.5")),
]


def fill(cells: list[str], users: list[User | None]) -> None:
    for n, cell in enumerate(cells):
        lat, lon = COORDINATES[n % len(COORDINATES)]
        FormResponse.objects.create(
            timestamp=MOMENTS[n % len(MOMENTS)] + dt.timedelta(days=n),
            user=users[n % len(users)],
            name_of_respondent=cell,
            gender_of_respondent=cell[:6],
            mobile_no=cell[:20],
            reading_books=n % 2 == 0,
            listening_music=n % 3 == 0,
            record_latitude=lat,
            record_longitude=lon,
        )


def python_page(flavour: str, tz: dt.tzinfo, size: int = 10_000) -> tuple[bytes, object]:
    """What the Python writer gives for the same page, and the page's last key."""
    records, key = pages.read_records(
        FormResponse.objects.all(),
        size=size,
        usernames=lambda ids: dict(User.objects.filter(pk__in=ids).values_list("pk", "username")),
        tz=tz,
    )
    name = "csv" if flavour == sqllines.EXCEL else "csv_raw"
    return writer_for(name).encode(records, first=False), key


def builds_in_sql(zone: str) -> bool:
    """Where the database is expected to build the lines (see responses.sqllines)."""
    if connection.vendor == "postgresql":
        return True
    return connection.vendor == "mysql" and zone == "UTC"


@pytest.mark.servers  # the database builds the text: each has its own functions and types
@pytest.mark.django_db
@pytest.mark.parametrize("flavour", [sqllines.EXCEL, sqllines.RAW])
@pytest.mark.parametrize("zone", ["UTC", "Africa/Nairobi", "America/St_Johns", "Asia/Kolkata"])
def test_it_builds_the_same_bytes_as_the_python_writer(user, flavour, zone):  # type: ignore[no-untyped-def]
    signs = User.objects.create_user("+1-2"), User.objects.create_user("@bob,x")
    fill(EASY, [None, user, *signs])
    tz = zoneinfo.ZoneInfo(zone)
    got = sqllines.read_page(FormResponse.objects.all(), size=10_000, flavour=flavour, tz=tz)
    if not builds_in_sql(zone):
        assert got is None
        return
    assert got is not None
    expected, key = python_page(flavour, tz)
    data, count, last = got
    assert data.decode() == expected.decode()  # a readable difference first
    assert data == expected and count == len(EASY) and last == key


@pytest.mark.servers  # the database decides which cells need Python
@pytest.mark.django_db
@pytest.mark.parametrize("cell", HARD)
def test_a_page_with_a_cell_sql_cannot_decide_goes_to_python(user, cell):  # type: ignore[no-untyped-def]
    fill(["plain", cell, "=1"], [user])
    got = sqllines.read_page(FormResponse.objects.all(), size=10, flavour=sqllines.EXCEL, tz=UTC)
    assert got is None
    raw = sqllines.read_page(FormResponse.objects.all(), size=10, flavour=sqllines.RAW, tz=UTC)
    if builds_in_sql("UTC"):  # nothing is neutralised in raw CSV: the database builds it
        assert raw is not None and raw[0] == python_page(sqllines.RAW, UTC)[0]


@pytest.mark.servers  # keyset pages read by the database
@pytest.mark.django_db
def test_pages_follow_the_keyset_and_end_empty(user):  # type: ignore[no-untyped-def]
    fill(EASY[:7], [user])
    if not builds_in_sql("UTC"):
        assert (
            sqllines.read_page(FormResponse.objects.all(), size=3, flavour="excel", tz=UTC) is None
        )
        return
    qs, parts, key = FormResponse.objects.all(), [], None
    while True:
        page = (
            qs
            if key is None
            else qs.filter(timestamp__gte=key[0]).exclude(timestamp=key[0], id__lte=key[1])
        )
        got = sqllines.read_page(page, size=3, flavour=sqllines.EXCEL, tz=UTC)
        assert got is not None
        data, count, key = got
        if not count:
            assert (data, key) == (b"", None)
            break
        assert count <= 3
        parts.append(data)
    assert len(parts) == 3 and b"".join(parts) == python_page(sqllines.EXCEL, UTC)[0]
    assert sqllines.read_page(qs.none(), size=3, flavour="excel", tz=UTC) == (b"", 0, None)
