"""Indexes for ``/teams/``: one import's teams in id order; on PostgreSQL, name search.

The name search (``name__icontains``, which PostgreSQL runs as
``UPPER(name::text) LIKE UPPER(%s)``) gets a trigram GIN index from the
``pg_trgm`` extension (trusted since PostgreSQL 13: the database owner may
create it), so a word that matches few rows of millions is found through
the index instead of reading the table. SQLite and MariaDB have no such
index; there the search walks the table in id order and stops after a page
of matches (fast for common words, one read of the table for rare ones).
"""

from django.db import migrations, models

TRIGRAMS = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS team_name_trgm ON teams_team "
    "USING gin ((UPPER(name::text)) gin_trgm_ops)",
)


def add_trigrams(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        for sql in TRIGRAMS:
            schema_editor.execute(sql)


def drop_trigrams(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS team_name_trgm")


class Migration(migrations.Migration):
    dependencies = [
        ("teams", "0001_initial"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="team",
            index=models.Index(fields=["job", "id"], name="team_job_id"),
        ),
        migrations.RunPython(add_trigrams, drop_trigrams),
    ]
