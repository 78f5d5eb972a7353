"""The export's page reader gives exactly the records the ORM path gives, on each database."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.contrib.auth.models import User

from responses import csvrows, pages
from responses.fake import create_responses
from responses.models import FormResponse

UTC = dt.UTC


def orm_records(qs, tz):  # type: ignore[no-untyped-def]
    """What the exporter read before: values_list through Django's converters, then record()."""
    names = dict(User.objects.values_list("pk", "username"))
    rows = list(qs.order_by("timestamp", "id").values_list(*csvrows.FIELDS))
    return [csvrows.record(r, usernames=names, tz=tz) for r in rows], (rows[-1][1], rows[-1][0])


@pytest.mark.servers  # each database hands back its own types; the reader converts per vendor
@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/St_Johns"])
def test_it_reads_the_same_records_as_the_orm(user, other_user, zone):  # type: ignore[no-untyped-def]
    create_responses(300, start=dt.datetime(2019, 1, 1, tzinfo=UTC),
                     end=dt.datetime(2020, 1, 1, tzinfo=UTC), seed=3)  # fmt: skip
    edge = dict(name_of_respondent="=1+1", gender_of_respondent="female", mobile_no="")
    FormResponse.objects.create(  # whole second, whole and negative coordinates, no user
        timestamp=dt.datetime(2019, 3, 31, 1, 0, tzinfo=UTC), user=None,
        record_latitude=Decimal("-90.000000"), record_longitude=Decimal("0"), **edge,
    )  # fmt: skip
    FormResponse.objects.create(  # microseconds, another user, a book reader
        timestamp=dt.datetime(2019, 10, 27, 0, 59, 59, 999999, tzinfo=UTC), user=other_user,
        reading_books=True, record_latitude=Decimal("1.234567"),
        record_longitude=Decimal("-179.999999"), **edge,
    )  # fmt: skip
    tz = zoneinfo.ZoneInfo(zone)
    expected, last = orm_records(FormResponse.objects.all(), tz)
    got, key = pages.read_records(
        FormResponse.objects.all(),
        size=10_000,
        usernames=lambda ids: dict(User.objects.filter(pk__in=ids).values_list("pk", "username")),
        tz=tz,
    )
    assert got == expected
    assert [[type(v) for v in r] for r in got] == [[type(v) for v in r] for r in expected]
    assert [[str(v) for v in r] for r in got] == [[str(v) for v in r] for r in expected]
    assert key == last and key is not None and key[0].isoformat() == last[0].isoformat()


@pytest.mark.django_db
def test_a_page_is_at_most_size_rows_and_empty_at_the_end(user):  # type: ignore[no-untyped-def]
    create_responses(25, start=dt.datetime(2019, 1, 1, tzinfo=UTC),
                     end=dt.datetime(2019, 2, 1, tzinfo=UTC), seed=4)  # fmt: skip
    page, key = pages.read_records(
        FormResponse.objects.all(), size=10, usernames=lambda ids: {}, tz=UTC
    )
    assert len(page) == 10 and key == (page[-1][1], page[-1][0])
    none, end = pages.read_records(
        FormResponse.objects.none(), size=10, usernames=lambda ids: {}, tz=UTC
    )
    assert none == [] and end is None
