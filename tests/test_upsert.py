"""Upsert imports with a real worker: counts, dry run, exact undo, crash resume, key problems."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from jobs import services
from jobs.models import Job, State
from teams.models import Team, TeamChange
from teams.services import teams_import_apply
from tests.test_import_helpers import expected_rows, fake_csv, start
from tests.workers import wait_for, wait_processed, wait_state

ALL = ("id", "name", "description", "manager", "members", "job_id")


def table() -> list[tuple[Any, ...]]:
    return list(Team.objects.order_by("id").values_list(*ALL))


def checksum() -> str:
    """Over every column of every team: equal only for byte-identical tables."""
    digest = hashlib.sha256()
    for row in table():
        digest.update(repr(row).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def write_rows(
    path: Path,
    rows: list[tuple[str, ...]],
    header: tuple[str, ...] = ("name", "description", "manager", "members"),
    *,
    newline: str = "\r\n",
) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator=newline)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def by_name() -> dict[str, tuple[str, ...]]:
    return {r[0]: r for r in Team.objects.values_list("name", "description", "manager", "members")}


def modified(rows: list[tuple[str, ...]], new: int) -> tuple[list[tuple[str, ...]], int]:
    """Every third row gets another description, every seventh another manager; ``new`` added."""
    out, changed = [], 0
    for i, (name, description, manager, members) in enumerate(rows):
        if i % 3 == 0:
            description = f"edited {i}"
        if i % 7 == 0:
            manager = f"m{i}"
        changed += i % 3 == 0 or i % 7 == 0
        out.append((name, description, manager, members))
    out += [(f"New team {i}", "new", "", "Ada") for i in range(new)]
    return out, changed


def every_row_changed(rows: list[tuple[str, ...]], new: int) -> list[tuple[str, ...]]:
    changed = [(n, f"{d} (v2)".strip(), m, mem) for n, d, m, mem in rows]
    return changed + [(f"New team {i}", "new", "", "") for i in range(new)]


def counts(job: Job) -> tuple[int, int, int, int]:
    r = job.result
    return r["created"], r["updated"], r["unchanged"], r["skipped"]


@pytest.mark.servers
def test_it_reimports_the_same_file_as_all_unchanged(worker, user, tmp_path):  # type: ignore[no-untyped-def]
    path = fake_csv(tmp_path, 3_000, seed=31)
    first = wait_state(start(user, path), State.SUCCEEDED)
    assert counts(first) == (3_000, 0, 0, 0)
    before = checksum()
    again = wait_state(start(user, path, mode="upsert", batch_size=700), State.SUCCEEDED)
    assert again.result == {
        "imported": 0, "created": 0, "updated": 0, "unchanged": 3_000, "skipped": 0,
    }  # fmt: skip
    assert checksum() == before


@pytest.mark.servers
def test_a_modified_file_updates_and_creates_exactly(worker, user, tmp_path):  # type: ignore[no-untyped-def]
    path = fake_csv(tmp_path, 2_100, seed=32)
    first = wait_state(start(user, path), State.SUCCEEDED)
    ids = dict(Team.objects.values_list("name", "id"))
    rows, changed = modified(expected_rows(path), new=400)
    job = start(user, write_rows(tmp_path / "v2.csv", rows), mode="upsert", batch_size=500)
    job = wait_state(job, State.SUCCEEDED)
    assert counts(job) == (400, changed, 2_100 - changed, 0)
    assert job.result["imported"] == 400 + changed
    assert by_name() == {r[0]: r for r in rows}
    # Updated teams keep their id and the job that created them; new ones are the upsert's.
    assert Team.objects.filter(job=first).count() == 2_100
    assert dict(Team.objects.filter(job=first).values_list("name", "id")) == ids
    assert Team.objects.filter(job=job).count() == 400
    assert not TeamChange.objects.exists()  # a finished upsert keeps no previous values


@pytest.mark.servers
def test_quotes_backslashes_and_non_ascii_are_written_as_they_are(worker, user, tmp_path):  # type: ignore[no-untyped-def]
    # MariaDB's path escapes the values itself (teams.upsert.mysql).
    path = fake_csv(tmp_path, 300, seed=36)
    wait_state(start(user, path), State.SUCCEEDED)
    odd = ('O\'Neil \\ "q" 100% _', "back\\slash\\", "Zoë Ångström 😀", "a\\0,b'c")
    rows = [(n, odd[i % 4], odd[(i + 1) % 4], odd[(i + 2) % 4]) for i, (n, *_) in
            enumerate(expected_rows(path))]  # fmt: skip
    job = start(user, write_rows(tmp_path / "v2.csv", rows), mode="upsert", batch_size=70)
    job = wait_state(job, State.SUCCEEDED)
    assert counts(job) == (0, 300, 0, 0)
    assert by_name() == {r[0]: r for r in rows}


@pytest.mark.servers
def test_a_dry_run_writes_nothing_and_applies_on_the_same_file(worker, user, tmp_path):  # type: ignore[no-untyped-def]
    path = fake_csv(tmp_path, 600, seed=33)
    wait_state(start(user, path), State.SUCCEEDED)
    before = checksum()
    rows, changed = modified(expected_rows(path), new=5)
    v2 = write_rows(tmp_path / "v2.csv", rows)
    dry = wait_state(start(user, v2, mode="upsert", dry_run=True, batch_size=100), State.SUCCEEDED)
    assert counts(dry) == (5, changed, 600 - changed, 0)
    assert dry.result["dry_run"] is True and dry.result["imported"] == 0
    assert checksum() == before
    first = dry.result["changes"][0]
    assert first == {
        "row": 2, "key": rows[0][0], "action": "update", "column": "description",
        "old": expected_rows(path)[0][1], "new": "edited 0",
    }  # fmt: skip
    assert len(dry.result["changes"]) == 100  # the first 100 column changes

    real = wait_state(teams_import_apply(job=dry, by=user), State.SUCCEEDED)
    assert counts(real) == counts(dry)
    assert real.param("file") != dry.param("file")  # its own copy of the upload
    assert by_name() == {r[0]: r for r in rows}


@pytest.mark.servers
def test_a_stopped_upsert_leaves_the_table_byte_identical(worker, user, tmp_path):  # type: ignore[no-untyped-def]
    path = fake_csv(tmp_path, 20_000, seed=34)
    wait_state(start(user, path, batch_size=5_000), State.SUCCEEDED, timeout=120)
    before = checksum()
    rows = every_row_changed(expected_rows(path), new=3_000)
    job = start(user, write_rows(tmp_path / "v2.csv", rows), mode="upsert", batch_size=100)
    wait_processed(job, 2_000)
    assert TeamChange.objects.filter(job=job).exists()
    services.job_stop(job=job, by=user)
    job = wait_state(job, State.STOPPED, timeout=60)
    assert checksum() == before
    assert not TeamChange.objects.exists()
    undo = job.result["undo"]
    assert undo["restored"] >= 2_000 and undo["left"] == 0 and undo["deleted"] == 0


@pytest.mark.servers
def test_a_killed_worker_mid_upsert_is_taken_over_exactly(make_worker, user, tmp_path):  # type: ignore[no-untyped-def]
    path = fake_csv(tmp_path, 10_000, seed=35)
    first = make_worker()
    wait_state(start(user, path, batch_size=5_000), State.SUCCEEDED, timeout=120)
    rows = every_row_changed(expected_rows(path), new=2_000)
    job = start(user, write_rows(tmp_path / "v2.csv", rows), mode="upsert", batch_size=100)
    wait_processed(job, 1_500)
    first.kill()
    job.refresh_from_db()
    # What is committed is exactly what the checkpoint says: one record per updated team.
    assert TeamChange.objects.filter(job=job).count() == job.checkpoint["updated"]
    assert job.checkpoint["updated"] == job.processed
    make_worker()
    job = wait_state(job, State.SUCCEEDED, timeout=180)
    assert job.attempts >= 2
    assert counts(job) == (2_000, 10_000, 0, 0)
    assert by_name() == {r[0]: r for r in rows}


@pytest.mark.servers
def test_a_stop_keeps_and_reports_a_change_made_meanwhile(worker, user, other_user, tmp_path):  # type: ignore[no-untyped-def]
    path = fake_csv(tmp_path, 20_000, seed=36)
    wait_state(start(user, path, batch_size=5_000), State.SUCCEEDED, timeout=120)
    before = table()
    rows = every_row_changed(expected_rows(path), new=0)
    job = start(user, write_rows(tmp_path / "v2.csv", rows), mode="upsert", batch_size=100)
    wait_processed(job, 1_000)
    edited = TeamChange.objects.filter(job=job).order_by("id").first()
    assert edited is not None
    Team.objects.filter(id=edited.team_id).update(description="Bob's fix")
    services.job_stop(job=job, by=user)
    job = wait_state(job, State.STOPPED, timeout=60)
    after = table()
    kept = Team.objects.get(id=edited.team_id)
    assert kept.description == "Bob's fix"
    assert [r for r in after if r[0] != kept.id] == [r for r in before if r[0] != kept.id]
    undo = job.result["undo"]
    assert undo["left"] == 1
    assert undo["left_rows"] == [{"team": kept.id, "name": kept.name, "now": "changed"}]


def test_keys_twice_in_the_file_or_shared_by_teams_are_row_problems(worker, user, tmp_path):  # type: ignore[no-untyped-def]
    wait_state(start(user, write_rows(tmp_path / "a.csv", [("A", "", "", ""), ("B", "", "", "")])),
               State.SUCCEEDED)  # fmt: skip
    wait_state(start(user, write_rows(tmp_path / "b.csv", [("A", "", "", "")])), State.SUCCEEDED)
    before = checksum()
    rows = [("A", "x", "", ""), ("C", "1", "", ""), ("C", "2", "", ""), ("D", "", "", "")]
    path = write_rows(tmp_path / "up.csv", rows)
    job = wait_state(start(user, path, mode="upsert"), State.FAILED)
    assert job.error.startswith("Nothing was imported: 3 of 4 rows are bad. First problem: Row 2")
    assert [(p["row"], p["message"]) for p in job.problems] == [
        (2, 'The name "A" matches 2 existing teams, so the import cannot tell which one to '
            "update. Rename or delete the extra teams, or import with another key."),
        (3, 'The name "C" is also in row 4. Each name may appear only once when the import '
            "updates teams; keep one of these rows."),
        (4, 'The name "C" is also in row 3. Each name may appear only once when the import '
            "updates teams; keep one of these rows."),
    ]  # fmt: skip
    assert checksum() == before
    skipped = wait_state(start(user, path, mode="upsert", on_error="skip"), State.SUCCEEDED)
    assert counts(skipped) == (1, 0, 0, 3)
    assert list(Team.objects.filter(job=skipped).values_list("name", flat=True)) == ["D"]


def test_the_api_refuses_an_unknown_mode_key_or_flag(api, tmp_path):  # type: ignore[no-untyped-def]
    path = write_rows(tmp_path / "t.csv", [("A", "", "", "")])
    cases = [
        ({"mode": "merge"}, '"merge" is not an import mode. Send mode "create"'),
        ({"mode": "upsert", "key": "members"}, '"members" cannot be the key: teams are matched '
                                               "on name or manager"),
        ({"dry_run": "maybe"}, 'dry_run must be "true" or "false", not "maybe".'),
    ]  # fmt: skip
    for fields, words in cases:
        with path.open("rb") as fh:
            answer = api.post("/api/imports/teams/", {"file": fh, **fields}, format="multipart")
        assert answer.status_code == 400, answer.content
        assert answer.json()["detail"].startswith(words)
    assert not Job.objects.exists()
    with path.open("rb") as fh:
        answer = api.post(
            "/api/imports/teams/",
            {"file": fh, "mode": "upsert", "dry_run": "true"},
            format="multipart",
        )
    assert answer.status_code == 202
    job = Job.objects.get(id=answer.json()["task_id"])
    assert (job.param("mode"), job.param("key"), job.param("dry_run")) == ("upsert", "name", True)


def test_the_page_shows_a_dry_run_and_imports_it(worker, user, client, tmp_path):  # type: ignore[no-untyped-def]
    wait_state(start(user, write_rows(tmp_path / "a.csv", [("A", "old", "", "")])), State.SUCCEEDED)
    client.force_login(user)
    path = write_rows(tmp_path / "b.csv", [("A", "new", "", ""), ("B", "", "", "")])
    with path.open("rb") as fh:
        answer = client.post(
            "/import_teams/", {"file": fh, "mode": "upsert", "key": "name", "dry_run": "true"}
        )
    dry = Job.objects.get(params__dry_run=True)
    assert answer.status_code == 302
    wait_state(dry, State.SUCCEEDED)
    page = client.get(dry.get_absolute_url()).content.decode()
    assert "dry run: nothing was written" in page and "Import these changes" in page
    assert "<td>description</td><td><code>old</code></td><td><code>new</code></td>" in page
    answer = client.post(f"/import_teams/{dry.id}/apply")
    real = Job.objects.exclude(id=dry.id).get(params__mode="upsert")
    assert answer.status_code == 302 and answer["Location"] == real.get_absolute_url()
    real = wait_state(real, State.SUCCEEDED)
    assert counts(real) == (1, 1, 0, 0)
    assert by_name()["A"] == ("A", "new", "", "")
    assert client.post(f"/import_teams/{real.id}/apply").status_code == 302  # refused: told why
    assert Job.objects.count() == 3


def test_the_command_prints_the_counts_and_changes(worker, user, tmp_path, capsys):  # type: ignore[no-untyped-def]
    wait_state(start(user, write_rows(tmp_path / "a.csv", [("A", "old", "", "")])), State.SUCCEEDED)
    path = write_rows(tmp_path / "b.csv", [("A", "new", "", "")])
    call_command(
        "import-teams", str(path), "--mode", "upsert", "--dry-run", "--wait", "--user", "alice"
    )
    out = capsys.readouterr().out
    assert "Would be: 0 created, 1 updated, 0 unchanged, 0 skipped" in out
    assert "  row 2 ('A'): description 'old' -> 'new'" in out
    assert wait_for(lambda: by_name()["A"][1] == "old")


# --- files that leave optional columns out: the stored values of those stay ---------


def without_members(rows: list[tuple[str, ...]], new: int) -> tuple[list[tuple[str, ...]], int]:
    """(name, description, manager) rows: every fifth manager changed, ``new`` teams added."""
    out, changed = [], 0
    for i, (name, description, manager, _members) in enumerate(rows):
        if i % 5 == 0:
            manager, changed = f"m{i}", changed + (manager != f"m{i}")
        out.append((name, description, manager))
    return out + [(f"New team {i}", "new", "boss") for i in range(new)], changed


NO_MEMBERS = ("name", "description", "manager")


@pytest.mark.servers
@pytest.mark.parametrize("newline", ["\r\n", "\n"])  # LF: the create path's bulk loader too
def test_a_file_without_members_updates_the_manager_and_keeps_the_members(  # type: ignore[no-untyped-def]
    worker, user, tmp_path, newline
):
    path = fake_csv(tmp_path, 900, seed=37)
    first = wait_state(start(user, path), State.SUCCEEDED)
    stored = by_name()
    rows, changed = without_members(expected_rows(path), new=30)
    v2 = write_rows(tmp_path / "v2.csv", rows, NO_MEMBERS, newline=newline)
    dry = wait_state(start(user, v2, mode="upsert", dry_run=True, batch_size=200), State.SUCCEEDED)
    assert counts(dry) == (30, changed, 900 - changed, 0)
    # Only the file's columns are compared and listed: members never.
    updates = [c for c in dry.result["changes"] if c["action"] == "update"]
    assert updates and {c["column"] for c in updates} == {"manager"}

    job = wait_state(teams_import_apply(job=dry, by=user), State.SUCCEEDED)
    assert counts(job) == (30, changed, 900 - changed, 0)
    after = by_name()
    for name, description, manager in rows[:900]:
        assert after[name] == (name, description, manager, stored[name][3])  # members kept
    assert [after[r[0]] for r in rows[900:]] == [(*r, "") for r in rows[900:]]  # empty members
    assert Team.objects.filter(job=first).count() == 900

    # A create import of the same file: the left-out column is empty.
    created = wait_state(start(user, v2), State.SUCCEEDED)
    want = [(*r, "") for r in rows]
    assert (
        list(
            Team.objects.filter(job=created)
            .order_by("id")
            .values_list("name", "description", "manager", "members")
        )
        == want
    )


@pytest.mark.servers
def test_a_stopped_upsert_without_members_leaves_the_table_byte_identical(worker, user, tmp_path):  # type: ignore[no-untyped-def]
    path = fake_csv(tmp_path, 20_000, seed=38)
    wait_state(start(user, path, batch_size=5_000), State.SUCCEEDED, timeout=120)
    before = checksum()
    rows = [(n, d, f"x{i % 1000}") for i, (n, d, _m, _mem) in enumerate(expected_rows(path))]
    rows += [(f"New team {i}", "new", "") for i in range(3_000)]
    job = start(user, write_rows(tmp_path / "v2.csv", rows, NO_MEMBERS), mode="upsert",
                batch_size=100)  # fmt: skip
    wait_processed(job, 2_000)
    changes = TeamChange.objects.filter(job=job)
    assert changes.exists()
    # The previous values are kept whole: members, not in the file, written back as they were.
    assert all(c.old_members == c.new_members for c in changes[:500])
    services.job_stop(job=job, by=user)
    job = wait_state(job, State.STOPPED, timeout=60)
    assert checksum() == before
    assert not TeamChange.objects.exists()
    undo = job.result["undo"]
    assert undo["restored"] >= 2_000 and undo["left"] == 0


def test_an_upsert_by_a_column_the_file_leaves_out_is_refused(worker, user, tmp_path):  # type: ignore[no-untyped-def]
    wait_state(start(user, write_rows(tmp_path / "a.csv", [("A", "", "m", "")])), State.SUCCEEDED)
    before = checksum()
    path = write_rows(tmp_path / "b.csv", [("A", "new")], ("name", "description"))
    job = wait_state(start(user, path, mode="upsert", key="manager"), State.FAILED)
    assert job.error == (
        "The file has no manager column, and this import finds each row's team by its manager. "
        "Add a manager column to the header, or import with the key name."
    )
    assert checksum() == before
    ok = wait_state(start(user, path, mode="upsert", key="name"), State.SUCCEEDED)
    assert counts(ok) == (0, 1, 0, 0)
    assert by_name()["A"] == ("A", "new", "m", "")
