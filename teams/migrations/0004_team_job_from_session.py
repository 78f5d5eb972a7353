"""PostgreSQL: a team's ``job_id`` defaults to the transaction's ``collect.import_job`` setting.

An import hands checked CSV bytes straight to ``COPY teams_team (name,
description, manager, members) FROM STDIN`` (``teams.loader``); the job id is
not in those bytes, so the batch's transaction sets it first with
``set_config('collect.import_job', id, true)`` and each copied row takes it
from this default. Unset, ``current_setting(…, true)`` is NULL, or '' after a
transaction that set it has ended (PostgreSQL docs, "Configuration Settings
Functions"): both give NULL, as before. Every other insert names ``job_id``.
"""

from django.db import migrations

SET = (
    "ALTER TABLE teams_team ALTER COLUMN job_id SET DEFAULT "
    "NULLIF(current_setting('collect.import_job', true), '')::uuid"
)


def set_default(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(SET)


def drop_default(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE teams_team ALTER COLUMN job_id DROP DEFAULT")


class Migration(migrations.Migration):
    dependencies = [
        ("teams", "0003_upsert_changes"),
    ]

    operations = [migrations.RunPython(set_default, drop_default)]
