"""Realistic, reproducible form responses for demos, tests and benchmarks."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Iterator
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from responses.csvrows import FIELDS
from responses.models import FormResponse, Gender

FIRST = [
    "Aarav",
    "Aisha",
    "Ana",
    "Ben",
    "Chen",
    "Chloé",
    "Daniel",
    "Dmitri",
    "Elif",
    "Emma",
    "Fatima",
    "Gabriel",
    "Hana",
    "Ibrahim",
    "Isabella",
    "James",
    "Jin",
    "Kwame",
    "Lena",
    "Liam",
    "Lucía",
    "Maya",
    "Mohammed",
    "Nia",
    "Noah",
    "Olga",
    "Omar",
    "Priya",
    "Rafael",
    "Sara",
    "Sofia",
    "Tariq",
    "Thandiwe",
    "Yuki",
    "Zanele",
    "Zoë",
]
LAST = [
    "Adeyemi",
    "Ahmed",
    "Andersson",
    "Bianchi",
    "Chen",
    "Dubois",
    "Fernández",
    "García",
    "Gupta",
    "Haddad",
    "Ivanova",
    "Jensen",
    "Kim",
    "Kowalski",
    "Martin",
    "Mensah",
    "Müller",
    "Nakamura",
    "Novak",
    "O'Brien",
    "Okafor",
    "Patel",
    "Rossi",
    "Santos",
    "Silva",
    "Smith",
    "Tanaka",
    "van der Berg",
    "Wang",
    "Yilmaz",
]
GENDERS = [Gender.MALE, Gender.FEMALE, Gender.OTHER]


def responses(
    n: int, *, start: dt.datetime, end: dt.datetime, seed: int | None, user_ids: list[int]
) -> Iterator[tuple[Any, ...]]:
    """Rows as tuples in ``COLUMNS`` order (model instances would cost 5 times more)."""
    rng = random.Random(seed)
    # Whole minutes, in random order: many responses share a timestamp and ids do
    # not follow time, as when data is imported late; the export must cope with both.
    first = start.replace(second=0, microsecond=0)
    if first < start:
        try:
            first += dt.timedelta(minutes=1)
        except OverflowError:  # within the last minute of year 9999
            first = start
    if first > end:  # a range shorter than a minute
        first = start
    minutes = max(0, int((end - first).total_seconds() // 60))
    owners: list[int | None] = [*user_ids, None]
    ops = connection.ops
    for _ in range(n):
        yield (
            ops.adapt_datetimefield_value(first + dt.timedelta(minutes=rng.randrange(minutes + 1))),
            rng.choice(owners),
            f"{rng.choice(FIRST)} {rng.choice(LAST)}",
            rng.choice(GENDERS).value,
            rng.random() < 0.5,
            rng.random() < 0.6,
            f"{rng.randrange(6, 10)}{rng.randrange(10**9):09d}",
            f"{rng.uniform(-55, 70):.6f}",
            f"{rng.uniform(-180, 180):.6f}",
        )


# Every field the export reads but the id, which the database assigns.
COLUMNS = [f for f in FIELDS if f != "id"]


def create_responses(
    n: int,
    *,
    start: dt.datetime,
    end: dt.datetime,
    seed: int | None = None,
    batch: int = 20_000,
) -> int:
    """Insert ``n`` responses from ``start`` to ``end`` (inclusive); return how many.

    A plain ``executemany``: mysqlclient turns it into multi-row INSERTs and
    psycopg pipelines it; bulk_create is several times slower at a million rows.
    """
    users = get_user_model()._default_manager.order_by("pk").values_list("pk", flat=True)
    rows = responses(n, start=start, end=end, seed=seed, user_ids=list(users[:20]))
    quote = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608 (names from the model)
        quote(FormResponse._meta.db_table),
        ", ".join(quote(c) for c in COLUMNS),
        ", ".join(["%s"] * len(COLUMNS)),
    )
    done = 0
    while done < n:
        chunk = list(itertools.islice(rows, min(batch, n - done)))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, chunk)
        done += len(chunk)
    return done
