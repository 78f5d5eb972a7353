"""Teams, each tagged with the import job that wrote it."""

from __future__ import annotations

from django.db import models

from jobs.models import Job

NAME_MAX = 600
MANAGER_MAX = 20


class Team(models.Model):
    # Indexed (Meta.indexes): an upsert finds the teams of each batch by name (or manager).
    name = models.CharField(max_length=NAME_MAX)
    description = models.TextField(blank=True)
    manager = models.CharField(max_length=MANAGER_MAX, blank=True)
    # Names separated by commas, as in the CSV.
    members = models.TextField(blank=True)
    # The import that wrote the row: a stop deletes exactly these rows. Deleting
    # the job record later keeps the teams of a finished import (Django sets
    # job_id to NULL: on_delete runs in the ORM, not in the database).
    # No database constraint and no index of its own: the "team_job_id" index
    # below (job, id) serves every lookup by job, and a foreign key check on each
    # inserted row (a trigger per row on PostgreSQL) made a bulk load ~1.6x slower.
    job = models.ForeignKey(
        Job,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )

    class Meta:
        ordering = ["id"]
        # ``/teams/?job=``: one import's teams in id order, a range scan whatever
        # the import's size (PostgreSQL would otherwise sort a big import's rows).
        indexes = [
            models.Index(fields=["job", "id"], name="team_job_id"),
            # Declared here rather than with db_index=True, which on PostgreSQL also
            # builds a second "varchar_pattern_ops" index for LIKE 'prefix%' that no
            # query uses (the name search has its trigram index, migration 0002):
            # every index is written on each inserted row.
            models.Index(fields=["name"], name="team_name"),
            models.Index(fields=["manager"], name="team_manager"),
        ]

    def __str__(self) -> str:
        return self.name


class TeamChange(models.Model):
    """A team an upsert job updated: its values before and the values the job wrote.

    Written in the same transaction as the batch (and its checkpoint), so a
    stop or a failure puts every updated team back exactly (``teams.upsert``);
    a team whose values are no longer the ones the job wrote was changed by
    someone else since, and the undo leaves it as it is. ``team_id`` is no
    foreign key: a team deleted meanwhile must not take its record with it.
    Deleted with the job; a finished job's records are deleted when it ends.
    """

    # Indexed with the id below: the undo takes a job's newest records chunk by chunk.
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="+", db_index=False)
    team_id = models.BigIntegerField()
    old_name = models.CharField(max_length=NAME_MAX)
    old_description = models.TextField(blank=True)
    old_manager = models.CharField(max_length=MANAGER_MAX, blank=True)
    old_members = models.TextField(blank=True)
    new_name = models.CharField(max_length=NAME_MAX)
    new_description = models.TextField(blank=True)
    new_manager = models.CharField(max_length=MANAGER_MAX, blank=True)
    new_members = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["job", "id"], name="teams_change_job_id")]

    def __str__(self) -> str:
        return f"team {self.team_id} in job {self.job_id}"
