"""Matching an upsert's rows to teams: the checks before anything is written, the lookup.

``KeyCheck`` runs during the validation pass (keys twice in the file, keys
that several teams share); ``lookup`` finds the stored teams of one batch's
keys, and ``compare`` sorts the batch into new, changed and unchanged rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.db import connection

from jobs.kinds import JobFailed
from teams.csvformat import COLUMNS, Layout, Problem, letter
from teams.models import Team
from teams.upsert.base import KEYS
from teams.upsert.base import q as _q
from teams.upsert.base import short as _short

LOOKUP_CHUNK = 900  # keys per IN (…): well under every database's parameter limit
SHOWN_OTHER_ROWS = 3


class KeyCheck:
    """Finds keys that appear twice in the file, or that match several teams.

    Fed every good row during the validation pass (``add``); ``problems``
    then yields one row problem per offending row. Memory: one dict entry per
    row (the key and its row number). Raises ``JobFailed`` when the file has no
    column for the key (an optional column the header leaves out).
    """

    def __init__(self, key: str, layout: Layout) -> None:
        if key not in layout.present:
            other = " or ".join(k for k in KEYS if k in layout.present)
            raise JobFailed(
                f"The file has no {key} column, and this import finds each row's team by its "
                f"{key}. Add a {key} column to the header, or import with the key {other}."
            )
        self.key = key
        self.index = COLUMNS.index(key)
        self.layout = layout
        self.first: dict[str, int] = {}
        self.again: dict[str, list[int]] = {}
        self.empty: list[tuple[int, str]] = []

    def add(self, row: int, values: Sequence[str]) -> None:
        value = values[self.index]
        if not value:
            self.empty.append((row, value))
            return
        first = self.first.setdefault(value, row)
        if first != row:
            self.again.setdefault(value, []).append(row)

    def problems(self) -> Iterator[Problem]:
        """The problems, by row: empty keys, keys twice in the file, keys of several teams."""
        found: list[Problem] = []
        position = self.layout.positions[self.index]
        name = self.layout.names[position] if position < len(self.layout.names) else self.key
        col = letter(position)
        for row, _value in self.empty:
            message = (
                f"The {self.key} is empty; an update by {self.key} needs one in every row. "
                f"Fill it in, or import with another key."
            )
            found.append(Problem(row, name, "", message, col))
        for value, later in self.again.items():
            rows = [self.first[value], *later]
            for row in rows:
                others = [r for r in rows if r != row]
                shown = ", ".join(str(r) for r in others[:SHOWN_OTHER_ROWS])
                if len(others) > SHOWN_OTHER_ROWS:
                    shown += f" and {len(others) - SHOWN_OTHER_ROWS:,} more"
                plural = "s" if len(others) > 1 else ""
                message = (
                    f'The {self.key} "{_short(value)}" is also in row{plural} {shown}. Each '
                    f"{self.key} may appear only once when the import updates teams; keep one "
                    "of these rows."
                )
                found.append(Problem(row, name, _short(value), message, col))
        for value, count in _shared_keys(self.key):
            first = self.first.get(value)
            if first is None:
                continue
            message = (
                f'The {self.key} "{_short(value)}" matches {count:,} existing teams, so the import '
                "cannot tell which one to update. Rename or delete the extra teams, or import "
                "with another key."
            )
            found.append(Problem(first, name, _short(value), message, col))
            for again in self.again.get(value, []):
                found.append(Problem(again, name, _short(value), message, col))
        found.sort(key=lambda p: p.row)
        return iter(found)


def _shared_keys(key: str) -> Iterator[tuple[str, int]]:
    """Keys that several teams share now: one grouped scan of the key's index."""
    table, column = _q(Team._meta.db_table), _q(key)
    sql = f"SELECT {column}, COUNT(*) FROM {table} GROUP BY {column} HAVING COUNT(*) > 1"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql)
        for value, count in cursor.fetchall():
            yield value, int(count)


def lookup(key: str, keys: list[str], *, lock: bool) -> dict[str, tuple[Any, ...]]:
    """The stored teams of these keys: key → (id, name, description, manager, members, job_id).

    Raises ``JobFailed`` when a key matches several teams (one was added while
    the import ran; the validation pass found none).
    """
    table = _q(Team._meta.db_table)
    cols = ", ".join(_q(c) for c in ("id", *COLUMNS, "job_id"))
    column = _q(key)
    suffix = " FOR UPDATE" if lock and connection.vendor != "sqlite" else ""
    found: dict[str, tuple[Any, ...]] = {}
    index = 1 + COLUMNS.index(key)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            chunks: Iterable[list[str]] = [keys]
        else:
            chunks = (keys[i : i + LOOKUP_CHUNK] for i in range(0, len(keys), LOOKUP_CHUNK))
        for chunk in chunks:
            if connection.vendor == "postgresql":
                where = f"{column} = ANY(%s)"
                params: Sequence[Any] = [chunk]
            else:
                where = f"{column} IN ({', '.join(['%s'] * len(chunk))})"
                params = chunk
            cursor.execute(f"SELECT {cols} FROM {table} WHERE {where}{suffix}", params)  # noqa: S608
            for row in cursor.fetchall():
                value = row[index]
                if value in found:
                    raise JobFailed(
                        f'The {key} "{_short(value)}" now matches more than one team (one was '
                        "added while the import ran), so the import cannot tell which one to "
                        "update. Nothing was kept. Rename or delete the extra team and import "
                        "the file again."
                    )
                found[value] = tuple(row)
    return found
