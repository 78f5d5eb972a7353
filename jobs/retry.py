"""Which database errors mean "this transaction lost a race; run it again".

A batch transaction that the database chose as a deadlock victim, or that
could not get a lock in time, or that failed serialization, was rolled back
whole: nothing of it was committed, so running it again at once is safe and
is what the databases' own manuals advise. Waiting for the job's lease to
run out (tens of seconds) would only make the user wait.

Sources:
- MariaDB: ER_LOCK_DEADLOCK 1213, ER_LOCK_WAIT_TIMEOUT 1205
  (https://mariadb.com/kb/en/mariadb-error-codes/).
- PostgreSQL: SQLSTATE 40001 serialization_failure, 40P01 deadlock_detected,
  55P03 lock_not_available ("Transaction Isolation", and Appendix A, "Error Codes").
- SQLite: SQLITE_BUSY / SQLITE_LOCKED, raised by Python's sqlite3 as
  ``OperationalError("database is locked")`` or ``("database table is locked")``.
"""

from __future__ import annotations

from django.db import DatabaseError, InterfaceError, OperationalError

MYSQL_CODES = frozenset({1213, 1205})
POSTGRES_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
SQLITE_MESSAGES = ("database is locked", "database table is locked")

# PostgreSQL errors after which the server has ended the session: class 08
# (connection exception), class 57P (operator intervention: admin_shutdown,
# crash_shutdown, cannot_connect_now, idle_session_timeout) and 25P03
# idle_in_transaction_session_timeout, which psycopg raises as InternalError.
POSTGRES_SESSION_ENDED = ("08", "57P", "25P03")

# How many times a batch is run again after losing such a race, and the first
# pause between two runs in seconds (doubled each time: 0.05, 0.1, 0.2, …).
ATTEMPTS = 5
FIRST_PAUSE_SECONDS = 0.05


def lost_a_race(exc: BaseException) -> bool:
    """True if ``exc`` is a deadlock, lock timeout or serialization failure.

    ``exc`` is the error Django raised (its ``OperationalError`` wraps the
    driver's error as ``__cause__``). A lost connection is *not* a race: it is
    left to the lease and the sweep, since this worker's connection is gone.
    """
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__ or exc
    if exc.args[:1] and exc.args[0] in MYSQL_CODES:
        return True
    if getattr(cause, "sqlstate", None) in POSTGRES_SQLSTATES:  # psycopg 3
        return True
    text = str(exc)
    return any(text.startswith(message) for message in SQLITE_MESSAGES)


def connection_lost(exc: BaseException) -> bool:
    """True if ``exc`` is the database failing the worker rather than the batch being wrong.

    Django's ``OperationalError`` and ``InterfaceError`` count (a server gone away,
    a session killed on MariaDB: errors 2006, 2013, 4031; a race still lost after
    ``ATTEMPTS`` runs), and so does any PostgreSQL error whose SQLSTATE says the
    server ended the session (``POSTGRES_SESSION_ENDED``, Appendix A of the
    PostgreSQL manual). Nothing of the transaction was committed; the job's lease
    and the sweep hand it on, instead of failing it.
    """
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if not isinstance(exc, DatabaseError):
        return False
    sqlstate = getattr(exc.__cause__ or exc, "sqlstate", None) or ""
    return sqlstate.startswith(POSTGRES_SESSION_ENDED)
