"""Worker start-up: every worker sweeps for orphaned jobs, now and periodically.

And worker shutdown: a warm shutdown (SIGTERM) tells the running jobs to hand
themselves back at their next batch instead of running to the end.

A SIGTERM to the worker's whole process group (systemd's default
``KillMode=control-group``, ``docker stop`` of a shell-wrapped worker,
``kill -TERM -PGID``) also reaches the prefork pool's children, which Celery
leaves on the default action: they died at once, mid-batch, so their jobs
waited for their lease to run out and counted as lost workers, and the parent
(in billiard's ``Pool._help_stuff_finish``, at exit) could wait for ever
for a lock on the pool's shared inqueue that a dead child held (Celery uses
billiard's blocking ``Pool`` with the embedded broker). So pool children
ignore SIGTERM: the parent, which gets it too, sets the shared byte above, the
child hands its job back after its batch, and every child leaves when the
parent closes the pool, as after a SIGTERM to the parent alone. (Billiard
keeps an ignored SIGTERM ignored; a hard time limit still ends a child with
SIGKILL, and so does the parent's death.)

(Celery's Django fix-up already gives each forked pool process fresh
database connections.)
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import signal
import threading
from typing import Any

from celery.signals import worker_init, worker_process_init, worker_ready, worker_shutting_down
from django.conf import settings
from django.db import connections

log = logging.getLogger(__name__)
EX_SOFTWARE = 70  # sysexits.h: an internal error (the worker's pool cannot go on)
_stop = threading.Event()
# The retention sweep runs on every this many lease sweeps (every 100 s by default).
RETENTION_EVERY = 10

# Celery sends ``worker_shutting_down`` in the main process only, from its
# SIGTERM handler, and never tells the prefork pool's children (they get no
# signal; the parent just waits for their tasks to end, which for a job may
# be hours). This one byte of anonymous shared memory is made before the pool
# forks, so the children see the parent set it; the threads and solo pools
# share it anyway. Setting a byte is safe inside a signal handler.
_shutting_down = mmap.mmap(-1, 1)


def worker_is_shutting_down() -> bool:
    """True once this worker (or, in a pool child, its parent) began a warm shutdown."""
    return _shutting_down[0] == 1


def _sweep_forever() -> None:
    from collect.tokens import delete_expired_tokens
    from jobs.retention import retention_sweep
    from jobs.services import job_sweep

    rounds = 0
    while not _stop.is_set():
        # Files and tokens age in days: their sweeps need not run every time.
        sweeps = (
            (job_sweep, retention_sweep, delete_expired_tokens)
            if rounds % RETENTION_EVERY == 0
            else (job_sweep,)
        )
        rounds += 1
        for sweep in sweeps:
            try:
                sweep()
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


@worker_shutting_down.connect
def hand_back_running_jobs(**_: Any) -> None:
    _shutting_down[0] = 1


@worker_init.connect
def load_code_before_the_first_job(**_: Any) -> None:
    """Import the job kinds and the URL configuration once, before the pool forks.

    Otherwise each pool process paid for them in its first job: 0.7 s for the
    kinds (openpyxl) and 1.3 s for the URL configuration (DRF, drf-spectacular),
    which an export's e-mail needs for its links; a fifth of a 200,000-row export
    in a profile. The forked processes share the imported modules.
    """
    from importlib import import_module

    from jobs.kinds import kinds

    kinds()
    import_module(settings.ROOT_URLCONF)


@worker_ready.connect
def restart_after_an_idle_child_is_killed(sender: Any = None, **_: Any) -> None:
    """With billiard's blocking pool, end the worker when an idle pool child is killed.

    With the embedded broker (a transport without Celery's event loop) Celery uses
    billiard's blocking ``Pool``: all children read tasks from one shared pipe,
    and the idle child whose turn it is holds the pipe's lock (a semaphore, which
    has no owner) while it waits. Killed there (``kill -9``, the OOM killer), it
    never gives the lock back: every child, and each replacement, waits for it for
    ever, and the worker takes tasks it never starts (billiard issue 104, and
    CPython's multiprocessing docs, "Pipes and Queues": a process killed while it
    uses a queue can corrupt it). Nothing can tell whether the dead child held the
    lock, so when a child dies of a signal while it had no job, the worker stops
    at once (its pool processes killed, then ``os._exit``) with one line saying why, and
    whatever supervises it (``collect serve``, a container's restart policy)
    starts a fresh one. A job another child was running continues from its last
    checkpoint once its lease runs out, as after any crash. A child killed while
    running a job did not hold the lock: the pool replaces it as usual. Celery's
    own pool for event-loop transports (RabbitMQ) gives each child its own pipe
    and is left alone.
    """
    from billiard.pool import Pool as BlockingPool
    from celery.concurrency.asynpool import AsynPool

    found = getattr(getattr(sender, "pool", None), "_pool", None)
    if not isinstance(found, BlockingPool) or isinstance(found, AsynPool):
        return  # Celery's event-loop pool (a pipe per child), threads or solo
    pool: Any = found  # billiard's stubs leave out the attributes read below
    chained = pool.on_process_down

    def on_process_down(child: Any) -> None:
        if chained is not None:
            chained(child)
        code = child.exitcode
        if code is None or code >= 0 or getattr(child, "_controlled_termination", False):
            return  # it ended on its own (recycled) or the pool ended it
        if any(child.pid in job.worker_pids() for job in list(pool._cache.values())):
            return  # it had a job: it was not waiting on the shared pipe
        log.error(
            "pool process %s was killed (signal %d) while it waited for a task; it may have "
            "held the lock of the pool's task pipe, which would stop every task of this "
            "worker: stopping the worker so that a fresh one is started",
            child.pid, -code,
        )  # fmt: skip
        # Not Celery's shutdown: billiard's exit handler waits for that same lock
        # (Pool._help_stuff_finish). The other children end with the worker; their jobs'
        # batches roll back, and their leases run out.
        for other in list(pool._pool):
            with contextlib.suppress(OSError):
                os.kill(other.pid, signal.SIGKILL)
        logging.shutdown()
        os._exit(EX_SOFTWARE)

    pool.on_process_down = on_process_down


@worker_process_init.connect
def pool_children_leave_sigterm_to_the_parent(**_: Any) -> None:
    """In a prefork pool child: ignore SIGTERM; the parent's warm shutdown ends it cleanly."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
