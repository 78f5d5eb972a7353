"""Data pages benchmark: ``/teams/`` and ``/responses/`` over a million rows each.

    python bench/bench_pages.py [ROWS]            default 1000000
    BENCH_PAGES_REPEAT=30 python bench/bench_pages.py 1000000

Fills ``Team`` and ``FormResponse`` with ROWS rows each (plain ``executemany``;
kept between runs when the counts already match), then asks for each page
through Django's test client (the whole view, template included, no network)
BENCH_PAGES_REPEAT times and prints p50 and p99 in milliseconds, and the
median time spent in SQL (the rest is Django: middleware, view, template). The
goal is under 300 ms for every page; ``/tasks/`` with two jobs is the
baseline of a page that reads almost nothing. Uses DATABASE_URL like the app.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import os
import statistics
import sys
import time
from typing import Any

from common import bench_user, database_label, setup_django, table

GOAL_MS = 300.0
SMALL_IMPORT = 1_000  # the last rows: a recent, small import to filter by


def fill_teams(n: int) -> tuple[Any, Any]:
    """``n`` teams: the last ``SMALL_IMPORT`` from a small import, the rest from a big one."""
    from django.db import connection, transaction

    from jobs.models import Job, State
    from teams.models import Team

    big, _ = Job.objects.get_or_create(
        label="bench-pages-big", defaults={"kind": "import_teams", "owner": bench_user()}
    )
    small, _ = Job.objects.get_or_create(
        label="bench-pages-small", defaults={"kind": "import_teams", "owner": bench_user()}
    )
    Job.objects.filter(id__in=[big.id, small.id]).update(state=State.SUCCEEDED)
    if Team.objects.count() == n:
        return big, small
    Team.objects.all().delete()
    words = ["alpha", "Zürich", "café", "delta", "Ørjan", "comma, inside", "naïve", "echo"]
    quote = connection.ops.quote_name
    sql = "INSERT INTO {} ({}, {}, {}, {}, {}) VALUES (%s, %s, %s, %s, %s)".format(
        quote(Team._meta.db_table),
        *(quote(c) for c in ("name", "description", "manager", "members", "job_id")),
    )
    small_from = n - SMALL_IMPORT
    as_stored = {j.id: Job._meta.pk.get_db_prep_value(j.id, connection) for j in (big, small)}

    def rows() -> Any:
        for i in range(n):
            job = small if i >= small_from else big
            name = f"Team {i} {words[i % len(words)]}"
            yield (name, "", f"m{i % 997}", "Ada,Grace", as_stored[job.id])

    made = rows()
    for _ in range(0, n, 20_000):
        chunk = list(itertools.islice(made, 20_000))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, chunk)
    return big, small


def fill_responses(n: int) -> None:
    from responses.fake import create_responses
    from responses.models import FormResponse

    if FormResponse.objects.count() == n:
        return
    FormResponse.objects.all().delete()
    end = dt.datetime(2020, 5, 15, tzinfo=dt.UTC)
    create_responses(n, start=end - dt.timedelta(days=3 * 365), end=end, seed=1)


def drf_cursor(position: int) -> str:
    """A ``/teams/`` cursor (DRF's ``CursorPagination``) that starts after ``position``."""
    return base64.b64encode(f"p={position}".encode()).decode()


def timed(client: Any, url: str, repeat: int) -> tuple[float, float, float, int]:
    """(p50 ms, p99 ms, p50 ms in SQL, rows on the page) of ``repeat`` GETs after a warm-up."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext  # forces the timing of each query

    first = client.get(url)
    assert first.status_code == 200, (url, first.status_code)
    shown = first.content.decode().count("<tr><td>")
    took, sql = [], []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as queries:
            t = time.perf_counter()
            response = client.get(url)
            took.append((time.perf_counter() - t) * 1000)
        sql.append(sum(float(q["time"]) for q in queries.captured_queries) * 1000)
        assert response.status_code == 200
    took.sort()
    p99 = took[min(len(took) - 1, round(0.99 * (len(took) - 1)))]
    return statistics.median(took), p99, statistics.median(sql), shown


def main(n: int) -> int:
    from django.contrib.auth.models import Permission
    from django.db import connection
    from django.test import Client

    from responses.models import FormResponse
    from teams.models import Team

    repeat = int(os.environ.get("BENCH_PAGES_REPEAT", "20"))
    t = time.monotonic()
    big, small = fill_teams(n)
    fill_responses(n)
    with connection.cursor() as cursor:
        # The statistics autovacuum gathers after a big load: PostgreSQL's planner
        # needs them to choose the trigram index for rare words, the key for common ones.
        cursor.execute("ANALYZE")
    print(f"filled in {time.monotonic() - t:.0f} s", file=sys.stderr, flush=True)
    user = bench_user()
    user.user_permissions.add(Permission.objects.get(codename="export_responses"))
    client = Client()
    client.force_login(user)

    deep_team = Team.objects.order_by("id").values_list("id", flat=True)[n * 9 // 10]
    newest = FormResponse.objects.order_by("-timestamp", "-id").values_list("timestamp", "id")
    month = newest.filter(timestamp__range=(dt.datetime(2018, 6, 1, tzinfo=dt.UTC),
                                            dt.datetime(2018, 6, 30, tzinfo=dt.UTC)))  # fmt: skip

    def cursor(key: tuple[dt.datetime, int]) -> str:
        return f"{key[0].isoformat()},{key[1]}".replace("+", "%2B")

    before = cursor(newest[n * 9 // 10])
    in_month = cursor(month[month.count() * 9 // 10])
    cases = [
        ("/tasks/ (baseline: 2 jobs)", "/tasks/"),
        ("/teams/ first page", "/teams/"),
        ("/teams/ deep page (90%)", f"/teams/?cursor={drf_cursor(deep_team)}"),
        ("/teams/ name search, common", "/teams/?q=z%C3%BCrich"),
        ("/teams/ name search, one match", f"/teams/?q=Team+{n - 5}+"),
        ("/teams/ name search, no match", "/teams/?q=nobody-is-called-this"),
        ("/teams/ big import", f"/teams/?job={big.id}"),
        ("/teams/ small recent import", f"/teams/?job={small.id}"),
        ("/responses/ first page", "/responses/"),
        ("/responses/ one month", "/responses/?from=2018-06-01&to=2018-06-30"),
        ("/responses/ deep page (90%)", f"/responses/?before={before}"),
        (
            "/responses/ one month, deep (90%)",
            f"/responses/?from=2018-06-01&to=2018-06-30&before={in_month}",
        ),
    ]
    rows = []
    slow = 0
    for name, url in cases:
        p50, p99, sql, shown = timed(client, url, repeat)
        slow += p99 > GOAL_MS
        verdict = "ok" if p99 <= GOAL_MS else "SLOW"
        rows.append([name, shown, f"{p50:.1f}", f"{p99:.1f}", f"{sql:.1f}", verdict])
        print(f"done {name}", file=sys.stderr, flush=True)
    print(
        table(
            f"Data pages over {n:,} teams and {n:,} responses ({database_label()}, "
            f"{repeat} requests each, goal p99 < {GOAL_MS:.0f} ms)",
            ["page", "rows", "p50 ms", "p99 ms", "SQL p50 ms", ""],
            rows,
        )
    )
    return int(bool(slow))


if __name__ == "__main__":
    setup_django()
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000))
