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
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018 (reads collect/settings.py and its checks)
    except ImproperlyConfigured as bad:
        # A setting from the environment that cannot work (DATABASE_URL, COLLECT_CACHE_URL,
        # SECRET_KEY …): its message says what to set; a traceback would only bury it.
        sys.stderr.write(f"Collect cannot start: {bad}\n")
        raise SystemExit(2) from None
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
