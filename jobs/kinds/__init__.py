"""Job kinds and their registry.

A kind says how to prepare a job, how to do one batch from a checkpoint, how
to undo what it wrote and how to finish. The engine (``jobs.engine``) owns
everything else: claiming, leases, checkpoints, pause, stop and progress.
Kinds are listed in the ``COLLECT_JOB_KINDS`` setting.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from jobs.kinds.base import Batch, Interrupted, JobFailed, JobKind, RunContext

__all__ = ["Batch", "Interrupted", "JobFailed", "JobKind", "RunContext", "get_kind", "kinds"]


@cache
def kinds() -> dict[str, type[JobKind]]:
    found: dict[str, type[JobKind]] = {}
    for path in settings.COLLECT_JOB_KINDS:
        cls = import_string(path)
        found[cls.name] = cls
    return found


def get_kind(name: str) -> JobKind:
    try:
        return kinds()[name]()
    except KeyError:
        raise LookupError(
            f"Unknown job kind {name!r}; known kinds: {', '.join(sorted(kinds()))}"
        ) from None
