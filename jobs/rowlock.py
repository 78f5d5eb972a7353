"""A conditional UPDATE of one job row that cannot deadlock with a running batch.

Every state change (pause, resume, stop, claim, the sweep) is a compare-and-set:
change the row only if it is still in the state the caller saw. Written as one
``UPDATE jobs_job … WHERE id = %s AND state IN (…)``, MariaDB's optimizer may
read it through the ``(state, lease_expires_at)`` index rather than the primary
key (it does on a small table: ``EXPLAIN`` shows ``key: jobs_job_state_…_idx``).
InnoDB then locks the index record first and the row second, while a worker's
batch transaction holds the row (``SELECT … FOR UPDATE`` by primary key) and
then updates the same index record: the two wait on each other and InnoDB
kills one of them with error 1213 (seen in CI: a user's pause refused with a
500). InnoDB sets locks on the index records a statement *scans*, not only on
the rows it changes (MariaDB, "InnoDB Lock Modes"; MySQL, "Locks Set by
Different SQL Statements in InnoDB").

So every such change here takes the row lock the same way the batch does,
by primary key first, then checks the condition on the locked row and updates
it by primary key alone: one lock order for every writer of a job row. On
PostgreSQL (row locks, no index-record locks) and SQLite (one writer, the
transaction begins IMMEDIATE) this costs one more round trip and changes
nothing else.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import OperationalError, transaction
from django.db.models import Q

from jobs import retry
from jobs.models import Job


def update_job(job_id: Any, condition: Q | None = None, **changes: Any) -> bool:
    """Apply ``changes`` to job ``job_id`` if it matches ``condition``; True if it did.

    ``changes`` are ``QuerySet.update()`` keyword arguments (values or
    expressions such as ``F("attempts") + 1``, evaluated on the locked row).
    A transaction the database chose as a deadlock or lock-timeout victim is run
    again (``jobs.retry``, up to ``retry.ATTEMPTS`` times) when this call owns its
    transaction; inside a caller's ``atomic`` block the error is raised, since
    only the caller can run its whole transaction again.

    Raises ``django.db.OperationalError`` for any other database error.
    """
    pause = retry.FIRST_PAUSE_SECONDS
    for attempt in range(1, retry.ATTEMPTS + 1):
        try:
            with transaction.atomic():
                locked = Job.objects.select_for_update().filter(id=job_id)
                if not locked.values_list("id", flat=True):
                    return False
                if condition is not None and not Job.objects.filter(condition, id=job_id).exists():
                    return False
                return Job.objects.filter(id=job_id).update(**changes) == 1
        except OperationalError as exc:
            in_outer_transaction = transaction.get_connection().in_atomic_block
            if in_outer_transaction or attempt == retry.ATTEMPTS or not retry.lost_a_race(exc):
                raise
            time.sleep(pause)
            pause *= 2
    raise AssertionError("unreachable")
