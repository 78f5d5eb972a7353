"""Fewer indexes on teams: each one is written for every imported row.

- ``job``: no database foreign key (Django still sets job_id to NULL when a job
  is deleted) and no index of its own; ``team_job_id`` (job, id) serves every
  lookup by job. The per-row foreign key check made a PostgreSQL COPY of
  1,000,000 teams take 1.6x as long.
- ``name`` and ``manager``: one btree each, without the ``varchar_pattern_ops``
  twin that ``db_index=True`` adds on PostgreSQL and no query uses.

On a large table this migration rebuilds the two btree indexes once.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0004_job_checking'),
        ('teams', '0004_team_job_from_session'),
    ]

    operations = [
        migrations.AlterField(
            model_name='team',
            name='job',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='jobs.job'),
        ),
        migrations.AlterField(
            model_name='team',
            name='manager',
            field=models.CharField(blank=True, max_length=20),
        ),
        migrations.AlterField(
            model_name='team',
            name='name',
            field=models.CharField(max_length=600),
        ),
        migrations.AddIndex(
            model_name='team',
            index=models.Index(fields=['name'], name='team_name'),
        ),
        migrations.AddIndex(
            model_name='team',
            index=models.Index(fields=['manager'], name='team_manager'),
        ),
    ]
