"""stateward.actors.stores: where actors' committed snapshots live.

Every store implements one small protocol (`Store`), checked by one
conformance test suite: `claim` an actor's name for one runtime and get back
what is stored under it, `commit` each transaction before the actor publishes
it and replies, `recover` the last durable snapshot when a supervisor restarts
the actor, and `release` the name when the actor stops for good.

- `MemoryStore` (the default) keeps the immutable snapshots themselves:
  restarts within one process.
- `SQLiteStore` keeps a journal of deltas and periodic snapshots in one
  SQLite file, safe across ``kill -9``; its durability mode says when a
  commit counts as durable.
- `PostgresStore` keeps the same journal and snapshots in a schema of a
  PostgreSQL database (psycopg 3: the ``postgresql`` extra).

The same names are exported by `stateward.actors`.
"""

from ._memory import MemoryStore
from ._postgres import PostgresStore
from ._protocol import RecoveryReport, Store, StoredActor
from ._sqlite import SQLiteStore

__all__ = [
    "MemoryStore",
    "PostgresStore",
    "RecoveryReport",
    "SQLiteStore",
    "Store",
    "StoredActor",
]
