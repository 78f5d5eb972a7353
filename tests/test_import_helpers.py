"""Shared by the import tests: fake CSV files, the rows they must give, the rows a job wrote."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from django.core.files import File

from jobs.models import Job
from teams.fake import write_fake_teams
from teams.models import Team
from teams.services import teams_import_start


def fake_csv(tmp_path: Path, n: int, *, seed: int = 0, newline: str = "\r\n") -> Path:
    path = tmp_path / f"teams-{n}-{seed}.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        write_fake_teams(fh, n, seed=seed, newline=newline)
    return path


def expected_rows(path: Path) -> list[tuple[str, ...]]:
    """The rows of the file, read here independently of the importer (values trimmed)."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return [tuple(v.strip() for v in r) for r in list(csv.reader(fh))[1:]]


def start(user: Any, path: Path, **options: Any) -> Job:
    with path.open("rb") as fh:
        return teams_import_start(file=File(fh, name=path.name), by=user, **options)


def rows_of(job: Job) -> list[tuple[str, ...]]:
    """The teams the job wrote, in the order it wrote them."""
    fields = ("name", "description", "manager", "members")
    return list(Team.objects.filter(job=job).order_by("id").values_list(*fields))
