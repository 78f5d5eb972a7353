"""Writing one upsert batch: new teams inserted, changed teams updated, previous values kept.

All in the engine's transaction that also commits the checkpoint, with each
database's own bulk path (see the package's docstring for which and why).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection

from jobs.models import Job
from teams.csvformat import COLUMNS
from teams.loader import insert_rows
from teams.models import Team, TeamChange
from teams.upsert import mysql
from teams.upsert.base import SHOWN_CHANGES, db_job_id
from teams.upsert.base import q as _q
from teams.upsert.match import lookup


def write_batch(
    *,
    job: Job,
    key: str,
    rows: list[int],
    teams: list[tuple[str, ...]],
    base: dict[str, Any],
    dry_run: bool,
    columns: Sequence[str] = COLUMNS,
) -> dict[str, Any]:
    """Write one batch of an upsert (or only compare, for a dry run); return the new counts.

    ``rows`` are the file's row numbers of ``teams`` (values in COLUMNS order);
    ``base`` the counts (and, for a dry run, the first changes) committed
    before this batch. The returned dict replaces them in the checkpoint: a
    batch run again after a lost race counts from the same base.

    ``columns`` are the columns the file has (``key`` among them). A column it
    leaves out is empty in a created team and keeps its stored value in an
    updated one: it is neither compared nor changed, and the dry run lists
    only changes of ``columns``.
    """
    index = COLUMNS.index(key)
    # The positions of the columns the file leaves out: their stored values are kept.
    kept = [i for i, c in enumerate(COLUMNS) if c not in columns]
    stored = lookup(key, [t[index] for t in teams], lock=not dry_run)
    creates: list[tuple[str, ...]] = []
    updates: list[tuple[Any, ...]] = []  # (id, *new values, job_id)
    previous: list[tuple[Any, ...]] = []  # the stored values of the same teams
    changes: list[tuple[Any, ...]] = []  # (job, team, *old, *new); not on MariaDB/MySQL
    server_copies = connection.vendor == "mysql"  # the previous values, see teams.upsert.mysql
    unchanged = 0
    shown: list[dict[str, Any]] = list(base.get("changes") or [])
    for row, values in zip(rows, teams, strict=True):
        old = stored.get(values[index])
        if old is not None and kept:
            merged = list(values)
            for i in kept:
                merged[i] = old[1 + i]
            values = tuple(merged)
        if old is None:
            creates.append(values)
            if dry_run and len(shown) < SHOWN_CHANGES:
                shown.append({"row": row, "key": values[index], "action": "create"})
        elif old[1:5] == values:
            unchanged += 1
        else:
            updates.append((old[0], *values, old[5]))
            previous.append(old[1:5])
            if not server_copies:
                changes.append((job.id, old[0], *old[1:5], *values))
            if dry_run:
                for column, before, after in zip(COLUMNS, old[1:5], values, strict=True):
                    if before != after and len(shown) < SHOWN_CHANGES:
                        shown.append(
                            {
                                "row": row,
                                "key": values[index],
                                "action": "update",
                                "column": column,
                                "old": before,
                                "new": after,
                            }
                        )
    if not dry_run:
        insert_teams(job, creates)
        if server_copies:
            mysql.update_teams(updates, job_id=job.id)
        else:
            update_teams(updates, previous)
            insert_changes(changes)
    counts: dict[str, Any] = {
        "created": int(base.get("created", 0)) + len(creates),
        "updated": int(base.get("updated", 0)) + len(updates),
        "unchanged": int(base.get("unchanged", 0)) + unchanged,
    }
    if dry_run:
        counts["changes"] = shown
    return counts


def insert_teams(job: Job, teams: list[tuple[str, ...]]) -> None:
    """Create ``teams`` (tuples of COLUMNS values) tagged with ``job``."""
    if teams:
        job_id = db_job_id(job.id)
        rows = ((*values, job_id) for values in teams)
        insert_rows(Team._meta.db_table, (*COLUMNS, "job_id"), rows)


def update_teams(updates: list[tuple[Any, ...]], before: list[tuple[Any, ...]]) -> None:
    """Set the four columns of teams by id; rows of (id, *COLUMNS values, job_id).

    ``job_id`` is the team's own (unchanged, not written). The rows must be
    locked by the caller.
    ``before`` holds each team's stored values (COLUMNS order), for SQLite.
    """
    if not updates:
        return
    table = _q(Team._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement over arrays, joined through the primary key: left to
            # itself the planner hashes the whole table for every batch (measured:
            # twice as slow at 300k teams, and it grows with the table). SET LOCAL
            # ends with the batch's transaction.
            sets = ", ".join(f"{_q(c)} = u.{c}" for c in COLUMNS)
            columns = list(zip(*(u[:5] for u in updates), strict=True))
            cursor.execute("SET LOCAL enable_hashjoin = off")
            cursor.execute("SET LOCAL enable_mergejoin = off")
            cursor.execute(
                f"UPDATE {table} AS t SET {sets} FROM unnest(%s::bigint[], %s::text[], "  # noqa: S608
                "%s::text[], %s::text[], %s::text[]) AS u(id, name, description, manager, "
                "members) WHERE t.id = u.id",
                [list(c) for c in columns],
            )
            cursor.execute("SET LOCAL enable_hashjoin TO DEFAULT")
            cursor.execute("SET LOCAL enable_mergejoin TO DEFAULT")
        elif connection.vendor == "mysql":
            mysql.update_teams(updates)
        else:
            # SQLite rewrites the entry of every index whose column is in SET, even
            # to an equal value (measured: 3.7x slower for 200k rows when name and
            # manager are set to what they are), so only the changed columns are set:
            # one executemany per set of changed columns.
            groups: dict[tuple[int, ...], list[tuple[Any, ...]]] = {}
            for update, old in zip(updates, before, strict=True):
                changed = tuple(i for i in range(len(COLUMNS)) if old[i] != update[1 + i])
                params = (*(update[1 + i] for i in changed), update[0])
                if changed:
                    groups.setdefault(changed, []).append(params)
            for changed, rows in groups.items():
                sets = ", ".join(f"{_q(COLUMNS[i])} = %s" for i in changed)
                cursor.executemany(f"UPDATE {table} SET {sets} WHERE id = %s", rows)  # noqa: S608


def insert_changes(changes: list[tuple[Any, ...]]) -> None:
    """Keep the previous and new values of updated teams; rows of (job id, team id, old…, new…)."""
    if not changes:
        return
    names = ["job_id", "team_id", *(f"old_{c}" for c in COLUMNS), *(f"new_{c}" for c in COLUMNS)]
    job_id = TeamChange._meta.get_field("job").get_db_prep_value(changes[0][0], connection)
    insert_rows(TeamChange._meta.db_table, names, ((job_id, *c[1:]) for c in changes))
