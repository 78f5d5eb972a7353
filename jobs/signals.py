"""Worker start-up: every worker sweeps for orphaned jobs, now and periodically.

(Celery's Django fix-up already gives each forked pool process fresh
database connections.)
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery.signals import worker_ready, worker_shutting_down
from django.conf import settings
from django.db import connections

log = logging.getLogger(__name__)
_stop = threading.Event()


def _sweep_forever() -> None:
    from jobs.services import job_sweep

    while not _stop.is_set():
        try:
            job_sweep()
        except Exception:
            log.exception("sweep failed; trying again in %ss", settings.COLLECT_SWEEP_SECONDS)
        finally:
            connections.close_all()
        _stop.wait(settings.COLLECT_SWEEP_SECONDS)


@worker_ready.connect
def start_sweeper(**_: Any) -> None:
    _stop.clear()
    threading.Thread(target=_sweep_forever, name="collect-sweeper", daemon=True).start()


@worker_shutting_down.connect
def stop_sweeper(**_: Any) -> None:
    _stop.set()
