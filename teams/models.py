"""Teams, each tagged with the import job that wrote it."""

from __future__ import annotations

from django.db import models

from jobs.models import Job

NAME_MAX = 600
MANAGER_MAX = 20


class Team(models.Model):
    name = models.CharField(max_length=NAME_MAX)
    description = models.TextField(blank=True)
    manager = models.CharField(max_length=MANAGER_MAX, blank=True)
    # Names separated by commas, as in the CSV.
    members = models.TextField(blank=True)
    # The import that wrote the row: a stop deletes exactly these rows. Deleting
    # the job record later keeps the teams of a finished import.
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=True
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name
