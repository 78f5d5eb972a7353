"""MariaDB/MySQL: updating a batch's teams from a temporary table, previous values copied there.

Python sends each new value once: the batch's ``(id, *COLUMNS)`` go into a
temporary table (one multi-row ``INSERT``); the previous values are then
copied to ``TeamChange`` by the server (``INSERT … SELECT`` joining the
table's rows by id, before they change) and the teams are set by one
``UPDATE … JOIN``. Before, every updated row sent 16 values (the upsert's 6
and ``TeamChange``'s 10), and mysqlclient's escaping of them in Python was
the biggest part of the time (docs/performance.md, "Upsert").

A temporary table belongs to the connection and is never seen by another;
``CREATE``/``DROP TEMPORARY TABLE`` do not commit the transaction (MariaDB
docs, "Implicit commits"), and its InnoDB rows go with a rollback.
"""

from __future__ import annotations

from typing import Any

from django.db import connection

from teams.csvformat import COLUMNS
from teams.models import Team, TeamChange
from teams.upsert.base import q as _q

BATCH_TABLE = "teams_upsert_batch"
STATEMENT_BYTES = 1 << 20  # well under MariaDB's max_allowed_packet (16 MiB by default)


def update_teams(updates: list[tuple[Any, ...]], *, job_id: Any = None) -> None:
    """Set the four columns of teams by id; rows of (id, *COLUMNS values, …).

    With ``job_id`` (the upsert, not its undo), each team's stored values and
    the new ones are first kept in ``TeamChange`` for that job. The rows must
    be locked by the caller (the upsert's lookup, the undo's read), so the
    values copied are the ones the caller compared.
    """
    if not updates:
        return
    team, tmp = _q(Team._meta.db_table), _q(BATCH_TABLE)
    cols = ", ".join(_q(c) for c in ("id", *COLUMNS))
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TEMPORARY TABLE IF EXISTS {tmp}")
        # Same column types as the teams table (CREATE … SELECT copies them, not
        # AUTO_INCREMENT); InnoDB, so a rolled back batch leaves it empty.
        cursor.execute(
            f"CREATE TEMPORARY TABLE {tmp} (PRIMARY KEY (id)) ENGINE=InnoDB "  # noqa: S608
            f"SELECT {cols} FROM {team} WHERE 1 = 0"
        )
        _load(cursor, f"INSERT INTO {tmp} ({cols}) VALUES ".encode(), updates)  # noqa: S608
        if job_id is not None:
            change = _q(TeamChange._meta.db_table)
            names = [
                "job_id",
                "team_id",
                *(f"old_{c}" for c in COLUMNS),
                *(f"new_{c}" for c in COLUMNS),
            ]
            olds = ", ".join(f"t.{_q(c)}" for c in COLUMNS)
            news = ", ".join(f"u.{_q(c)}" for c in COLUMNS)
            cursor.execute(
                f"INSERT INTO {change} ({', '.join(_q(n) for n in names)}) "  # noqa: S608
                f"SELECT %s, t.id, {olds}, {news} FROM {tmp} u JOIN {team} t ON t.id = u.id "
                "ORDER BY u.id",
                [TeamChange._meta.get_field("job").get_db_prep_value(job_id, connection)],
            )
        sets = ", ".join(f"t.{_q(c)} = u.{_q(c)}" for c in COLUMNS)
        cursor.execute(f"UPDATE {team} t JOIN {tmp} u ON t.id = u.id SET {sets}")  # noqa: S608
        cursor.execute(f"DROP TEMPORARY TABLE {tmp}")


def _load(cursor: Any, head: bytes, updates: list[tuple[Any, ...]]) -> None:
    """Multi-row ``INSERT``s of (id, *COLUMNS) with the values escaped by mysqlclient's C code.

    ``connection.string_literal`` is mysqlclient's ``mysql_real_escape_string``
    (the connection's character set and ``sql_mode``, as its ``executemany``
    uses); called directly it skips the per-value type dispatch of
    ``executemany``, which was most of this step's time (3.3x slower for a
    batch of 5,000 teams, measured). Statements of about ``STATEMENT_BYTES``.
    """
    literal = cursor.connection.string_literal
    parts: list[bytes] = []
    size = 0
    for update in updates:
        name, description, manager, members = update[1 : 1 + len(COLUMNS)]
        part = b"(%d,%s,%s,%s,%s)" % (
            int(update[0]),
            literal(name.encode()),
            literal(description.encode()),
            literal(manager.encode()),
            literal(members.encode()),
        )
        parts.append(part)
        size += len(part) + 1
        if size >= STATEMENT_BYTES:
            cursor.execute(head + b",".join(parts))
            parts, size = [], 0
    if parts:
        cursor.execute(head + b",".join(parts))
