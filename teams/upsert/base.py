"""What the parts of an upsert share: the modes, the keys, the counts, SQL helpers."""

from __future__ import annotations

from typing import Any

from django.db import connection

from teams.models import Team

CREATE, UPSERT = "create", "upsert"
MODES = (CREATE, UPSERT)
# The columns a team can be found by: short, indexed text. Descriptions and
# member lists are free text, not names.
KEYS = ("name", "manager")
COUNTS = ("created", "updated", "unchanged")
# What the checkpoint carries from batch to batch besides the reader's position.
CARRIED = (*COUNTS, "changes")
SHOWN_CHANGES = 100


def q(name: str) -> str:
    """A table or column name quoted for the current database."""
    return connection.ops.quote_name(name)


def short(value: str, limit: int = 80) -> str:
    """``value`` cut to ``limit`` characters (with an ellipsis), for messages."""
    return value if len(value) <= limit else value[:limit] + "…"


def db_job_id(job_id: Any) -> Any:
    """A job id as the database stores it in ``job_id`` columns (a UUID's text or hex)."""
    return Team._meta.get_field("job").get_db_prep_value(job_id, connection)
