"""Upsert mode of the team import: match rows to teams by a key, update, create, undo exactly.

Modules, by concern: ``base`` (modes, keys, counts, SQL helpers), ``match``
(the checks before anything is written, the keyed lookup), ``write`` (one
batch; ``mysql`` its MariaDB/MySQL update), ``undo`` (putting updated teams
back) and ``results`` (the counts and the job's ``result``). The import kind
(``teams.importer``) uses only the names below.

How a batch is written (``write_batch``), inside the engine's transaction that
also commits the checkpoint:

1. Keyed lookup: ``SELECT … WHERE name IN (…)`` (PostgreSQL: ``= ANY(%s)``,
   one array parameter) for the batch's keys, locking the rows it finds
   (``FOR UPDATE`` on PostgreSQL and MariaDB; SQLite's write transaction
   already holds the whole database).
2. Compare: a row equal to the stored team is ``unchanged`` and not written.
3. Write: new keys are inserted (tagged with the job, like the create mode);
   changed teams are updated *by primary key* with each database's own bulk
   path: PostgreSQL one ``UPDATE … FROM unnest(%s::bigint[], …)`` (arrays),
   MariaDB/MySQL one ``UPDATE … JOIN`` a temporary table of the batch's new
   values (``teams.upsert.mysql``), SQLite an ``executemany`` of
   ``UPDATE … WHERE id``.
4. The previous and the written values of every updated team go to
   ``TeamChange`` in the same transaction (PostgreSQL by ``COPY``, SQLite by
   ``INSERT``; MariaDB/MySQL copy them on the server with ``INSERT … SELECT``
   from the locked teams and the temporary table, before the ``UPDATE``).

Why keyed lookups and not ``ON CONFLICT (name)``: ``Team.name`` is not unique
(create imports may hold the same name twice; making it unique would refuse
existing data), and the database's own upsert cannot tell us the previous
values nor skip unchanged rows. The primary key *is* unique, so the update
step uses the databases' upsert on it.

Crash resume is exact because of the engine's checkpoint: a batch whose
transaction did not commit left no team changed and no ``TeamChange`` row,
so its re-run reads the committed (pre-import) values as "previous" again.
"""

from teams.upsert.base import CARRIED, COUNTS, CREATE, KEYS, MODES, SHOWN_CHANGES, UPSERT
from teams.upsert.match import KeyCheck
from teams.upsert.results import count_creates, counts, result
from teams.upsert.undo import count_deleted, forget_changes, undo_chunk
from teams.upsert.write import write_batch

__all__ = [
    "CARRIED",
    "COUNTS",
    "CREATE",
    "KEYS",
    "MODES",
    "SHOWN_CHANGES",
    "UPSERT",
    "KeyCheck",
    "count_creates",
    "count_deleted",
    "counts",
    "forget_changes",
    "result",
    "undo_chunk",
    "write_batch",
]
