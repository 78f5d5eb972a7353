"""The import's bulk path: checked CSV bytes handed to the database's own loader.

Every row the loaders could read differently from our reader (trimmed spaces,
quotes, the word NULL, PostgreSQL's ``\\.``, Excel's ``="0042"``, line breaks
in a value, blank and bad rows) must come out exactly as the row-by-row path
writes it, on each database.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from jobs import engine, services
from jobs.models import Job, State
from teams import csvformat, loader
from teams.csvformat import read_header
from teams.models import Team
from teams.readers import open_reader
from teams.services import teams_import_start

# The outcome depends on the database's loader (COPY, LOAD DATA, executemany).
pytestmark = pytest.mark.servers

LONG = "x" * 601  # longer than a name may be: a bad row, skipped with on_error=skip
LINES = [
    "name{d}description{d}manager{d}members",
    'Plain{d}words here{d}Ada1{d}"Ada, Grace"',
    "  Padded  {d} trimmed {d}Bo{d}x",
    'Quote{d}"say ""hi"""{d}Cy{d}',
    "Nul word{d}NULL{d}NULL{d}NULL",
    'Multi{d}"line one\r\nline two\nthree"{d}Di{d}',
    'Dot{d}"first\n\\.\nlast"{d}Ed{d}',
    'Zeros{d}"=""0042"""{d}Fa{d}',
    "",
    "{d}{d}{d}",
    "Unicode 東京{d}café{d}Zoë{d}Łukasz",
    LONG + "{d}too long{d}Gi{d}",
    "Back\\slash{d}a\\nb{d}Ha{d}",
    "Last{d}no line end{d}Gu{d}Ω",
]
EXPECTED = [
    ("Plain", "words here", "Ada1", "Ada, Grace"),
    ("Padded", "trimmed", "Bo", "x"),
    ("Quote", 'say "hi"', "Cy", ""),
    ("Nul word", "NULL", "NULL", "NULL"),
    ("Multi", "line one\r\nline two\nthree", "Di", ""),
    ("Dot", "first\n\\.\nlast", "Ed", ""),
    ("Zeros", "0042", "Fa", ""),
    ("Unicode 東京", "café", "Zoë", "Łukasz"),
    ("Back\\slash", "a\\nb", "Ha", ""),
    ("Last", "no line end", "Gu", "Ω"),
]


def hostile(delimiter: str, newline: str) -> bytes:
    return newline.join(line.format(d=delimiter) for line in LINES).encode("utf-8")


def stored(job: Job) -> list[tuple[str, ...]]:
    fields = ("name", "description", "manager", "members")
    return list(Team.objects.filter(job=job).order_by("id").values_list(*fields))


@pytest.mark.parametrize(
    ("delimiter", "newline", "batch_size"),
    [(",", "\r\n", 100), (",", "\n", 3), (";", "\r\n", 2), ("\t", "\n", 1)],
)
def test_it_loads_every_row_exactly_as_the_row_by_row_path(  # type: ignore[no-untyped-def]
    user, caplog, delimiter, newline, batch_size
):
    data = hostile(delimiter, newline)
    job = teams_import_start(
        file=SimpleUploadedFile("teams.csv", data), by=user, on_error="skip", batch_size=batch_size
    )
    with caplog.at_level(logging.INFO, logger="teams.importer"):
        engine.run(job.id, worker="test")
    job.refresh_from_db()
    assert job.state == State.SUCCEEDED, job.error
    assert stored(job) == EXPECTED
    assert job.result["skipped"] == 1 and job.result["empty_rows"] == 2
    assert "bulk loader refused" not in caplog.text  # the loader took every batch
    planned = "planned for the database's bulk loader" in caplog.text
    assert planned == (connection.vendor != "sqlite")  # SQLite: row by row, faster there


def plan_of(data: bytes, size: int) -> tuple[Any, Any, dict[int, loader.Span]]:
    fh = io.BytesIO(data)
    reader = open_reader(fh, options={})
    layout = read_header(reader)
    planner = loader.Planner.for_file(reader, layout, size)
    assert planner is not None
    record = None
    for record in reader.records(layout.start, layout.row):
        planner.add(record, *csvformat.check(record, layout))
    return reader, layout, planner.spans(record)


def test_only_rows_the_loaders_read_alike_go_verbatim() -> None:
    reader, layout, plan = plan_of(hostile(",", "\r\n"), 100)
    (span,) = plan.values()
    assert (span.count, span.skipped, span.empty) == (10, 1, 2)
    # Padded, Quote, NULL, Multi, Dot, Zeros rewritten; the blank rows and the bad one left out.
    assert len(span.others) // 2 == 9
    data = loader.stream(reader.fh, reader, layout, span)
    assert data.startswith(b'Plain,words here,Ada1,"Ada, Grace"\n"Padded","trimmed","Bo","x"\n')
    assert b"\r\n" not in data.replace(b"line one\r\nline", b"")
    assert data.endswith("Back\\slash,a\\nb,Ha,\nLast,no line end,Gu,Ω\n".encode())


def test_a_file_the_loaders_cannot_read_as_it_is_has_no_plan() -> None:
    for data in (
        hostile(",", "\r\n").decode().encode("cp1252", "replace"),  # not UTF-8
        b"name,description,manager,members,\r\nTeam,,Ada,x,\r\n",  # an unnamed column
        b"name,description,manager,members\rTeam,,Ada,x\r",  # CR line ends
    ):
        fh = io.BytesIO(data)
        reader = open_reader(fh, options={})
        assert loader.Planner.for_file(reader, read_header(reader), 10) is None


# A header that leaves optional columns out, in its own order: the loader gets the file's
# columns, then the left-out ones empty at the end of each line.
PARTIAL = [
    "Manager{d}Name",
    "Ada1{d}Plain",
    "  Bo {d}  Padded  ",
    'Cy{d}"Multi\nline"',
    'Di{d}"Quoted{d} name"',
    "NULL{d}Nul word",
    "",
    "Ed{d}" + LONG,
    "{d}No manager",
    "Fa{d}Last",
]
PARTIAL_EXPECTED = [
    ("Plain", "", "Ada1", ""),
    ("Padded", "", "Bo", ""),
    ("Multi\nline", "", "Cy", ""),
    ("Quoted{d} name", "", "Di", ""),
    ("Nul word", "", "NULL", ""),
    ("No manager", "", "", ""),
    ("Last", "", "Fa", ""),
]


@pytest.mark.parametrize(
    ("delimiter", "newline", "batch_size"), [(",", "\r\n", 100), (";", "\n", 2), ("\t", "\n", 1)]
)
def test_a_header_without_optional_columns_loads_like_the_row_by_row_path(  # type: ignore[no-untyped-def]
    user, caplog, delimiter, newline, batch_size
):
    data = newline.join(line.format(d=delimiter) for line in PARTIAL).encode("utf-8")
    job = teams_import_start(
        file=SimpleUploadedFile("teams.csv", data), by=user, on_error="skip", batch_size=batch_size
    )
    with caplog.at_level(logging.INFO, logger="teams.importer"):
        engine.run(job.id, worker="test")
    job.refresh_from_db()
    assert job.state == State.SUCCEEDED, job.error
    want = [tuple(v.format(d=delimiter) for v in row) for row in PARTIAL_EXPECTED]
    assert stored(job) == want
    assert job.result["skipped"] == 1 and job.result["empty_rows"] == 1
    assert "bulk loader refused" not in caplog.text
    planned = "planned for the database's bulk loader" in caplog.text
    assert planned == (connection.vendor != "sqlite")


def test_left_out_columns_are_written_empty_at_the_end_of_each_line() -> None:
    reader, layout, plan = plan_of(b"name\nSolo\nDuo\n", 100)
    (span,) = plan.values()
    assert loader.load_columns(layout) == ["name", "description", "manager", "members"]
    assert loader.stream(reader.fh, reader, layout, span) == b"Solo,,,\nDuo,,,\n"
    data = b'manager;name\r\nada;"A;B"\r\n bo ;C\r\ncy;"D\nE"\r\ndi;F'
    reader, layout, plan = plan_of(data, 100)
    (span,) = plan.values()
    assert loader.load_columns(layout) == ["manager", "name", "description", "members"]
    assert loader.stream(reader.fh, reader, layout, span) == (
        b'ada;"A;B";;\n"bo";"C";"";""\n"cy";"D\nE";"";""\ndi;F;;\n'
    )
    # The whole header in another order: verbatim lines, nothing added.
    reader, layout, plan = plan_of(b"members,name,description,manager\r\nx,Team,,Ada\r\n", 10)
    (span,) = plan.values()
    assert loader.load_columns(layout) == ["members", "name", "description", "manager"]
    assert loader.stream(reader.fh, reader, layout, span) == b"x,Team,,Ada\n"


def test_the_undo_deletes_the_jobs_rows_in_chunks_and_no_other(user) -> None:  # type: ignore[no-untyped-def]
    mine, other = (
        services.job_create(kind="import_teams", owner=user, params={}) for _ in range(2)
    )
    Team.objects.bulk_create([Team(name=f"T{i}", job=mine if i % 3 else other) for i in range(30)])
    deleted, after = [], 0
    while (chunk := loader.delete_created(job_id=mine.id, limit=7, after=after))[1]:
        deleted.append(chunk[0])
        after = chunk[1]
    assert deleted == [7, 7, 6]
    assert loader.delete_created(job_id=mine.id, limit=7, after=after) == (0, None)
    assert not Team.objects.filter(job=mine).exists()
    assert Team.objects.filter(job=other).count() == 10


@pytest.mark.django_db
def test_deleting_an_import_job_keeps_its_teams(user) -> None:  # type: ignore[no-untyped-def]
    # teams.job has no database constraint (migration 0005): Django itself sets
    # job_id to NULL, so the teams of a finished import outlive its record.
    job = Job.objects.create(kind="import", owner=user, params={}, state=State.SUCCEEDED)
    other = Job.objects.create(kind="import", owner=user, params={}, state=State.SUCCEEDED)
    Team.objects.bulk_create([Team(name="Kept", job=job), Team(name="Other", job=other)])
    job.delete()
    assert dict(Team.objects.values_list("name", "job_id")) == {"Kept": None, "Other": other.id}


@pytest.mark.django_db
def test_the_undo_goes_on_from_its_last_chunk_and_ends_with_nothing_left(user) -> None:  # type: ignore[no-untyped-def]
    from jobs.kinds import RunContext, get_kind

    job = services.job_create(kind="import_teams", owner=user, params={})
    Team.objects.bulk_create([Team(name=f"T{i}", job=job) for i in range(12)])
    kind, ctx = get_kind(job.kind), RunContext(job=job, heartbeat_fn=lambda: None)
    ids = sorted(Team.objects.filter(job=job).values_list("id", flat=True))
    # As after a chunk: the next one starts past the rows it deleted.
    ctx.state.update(undo_chunk=5, undo_after=ids[4])
    assert kind.undo_chunk(ctx) == 5
    assert sorted(Team.objects.values_list("id", flat=True)) == ids[:5] + ids[10:]
    # Rows below the mark (a row written late, a stale mark) are found by a last look
    # from the start: the undo ends only with none of the job's rows left.
    removed = []
    while n := kind.undo_chunk(ctx):
        removed.append(n)
    assert removed == [2, 5] and not Team.objects.filter(job=job).exists()
