"""The ``collect`` command: Django's ``manage.py`` under a name people remember."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def apps_first() -> None:
    """Put the folder holding Collect's apps first on the import path, here and in children.

    The apps have plain names (``jobs``, ``teams``, ``responses``), and an
    installed distribution may use one of them too: PyPI's ``responses`` (a
    dependency of moto, which the tests install) would otherwise shadow ours
    whenever ``.venv/bin/collect`` runs, since a console script's folder, not
    the project's, heads ``sys.path``. ``PYTHONPATH`` carries the same order to
    the processes a command starts (``serve`` → web and worker, ``worker`` →
    Celery). In an installed copy the folder is site-packages: no change.
    """
    root = str(Path(__file__).resolve().parent.parent)
    if sys.path[:1] != [root]:
        sys.path.insert(0, root)
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if paths[:1] != [root]:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *filter(None, paths)])


# Commands that run servers: they log at LOG_LEVEL (INFO by default).
LONG_RUNNING = frozenset({"serve", "web", "worker"})


def main() -> None:
    apps_first()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collect.settings")
    # A one-shot command (import-teams, jobs, stop …) prints what a person reads;
    # the servers' INFO log lines ("job … created") are noise there. LOG_LEVEL wins.
    if len(sys.argv) > 1 and sys.argv[1] not in LONG_RUNNING:
        os.environ.setdefault("LOG_LEVEL", "WARNING")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
