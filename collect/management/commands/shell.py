"""``collect shell``: Django's, without its note on automatic imports when it runs code.

``collect shell -c CODE`` (or code on stdin) is used from scripts, which read
its output: Django 5.2 printed "N objects imported automatically" and an empty
line before it. The interactive shell keeps the note; ``-v 2`` shows it, with
the list of imports, in every case.
"""

from __future__ import annotations

import select
import sys
from typing import Any

from django.core.management.commands import shell


class Command(shell.Command):
    def handle(self, **options: Any) -> None:
        # The same test as Django's for "run the code on stdin and exit".
        stdin_code = not sys.stdin.isatty() and select.select([sys.stdin], [], [], 0)[0]
        if (options["command"] or stdin_code) and options["verbosity"] < 2:
            options = {**options, "verbosity": 0}
        super().handle(**options)
