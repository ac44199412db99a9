"""Applied request ids: which request made each commit, so that a retried
request is applied at most once.

A `RayRuntime` client gives each request an id and, when a shard dies before
answering, sends the request again, with the same id, to the shard that
replaces it. The id of a request that committed is written with its journal
entry, in the same transaction (`record`), so the store holds it exactly when
it holds the commit; the new shard asks which of the retried ids are there
(`applied`) and answers those instead of applying them again. A store keeps
an actor's ids for its last `REQUEST_IDS_KEPT` versions (`prune`, run when a
snapshot of the actor is written), so the table does not grow forever.

The key is ``(name, request_id)``: a second write of one id for one actor is
refused by the database, and the transaction with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ._group_commit import Pending

#: How many versions back an actor's applied request ids are kept: a retry of
#: a request older than that (a client retries within seconds) is not
#: recognised.
REQUEST_IDS_KEPT = 10_000

SQLITE_TABLE = (
    "CREATE TABLE IF NOT EXISTS requests (name TEXT NOT NULL, request_id TEXT NOT NULL, "
    "version INTEGER NOT NULL, PRIMARY KEY (name, request_id)) WITHOUT ROWID"
)


def postgres_table(schema: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {schema}.requests (name TEXT NOT NULL, "
        "request_id TEXT NOT NULL, version BIGINT NOT NULL, PRIMARY KEY (name, request_id))"
    )


def requested(items: Iterable[Pending]) -> list[tuple[str, str, int]]:
    """The ``(name, request_id, version)`` rows of the entries that carry an id."""
    return [(i.name, i.request_id, i.version) for i in items if i.request_id is not None]


def record(
    executemany: Callable[[str, Any], Any], rows: Sequence[Any], table: str, mark: str
) -> None:
    """Write ``rows`` (from `requested`) in the caller's transaction."""
    if rows:
        executemany(f"INSERT INTO {table} VALUES ({mark}, {mark}, {mark})", rows)


def prune(
    execute: Callable[[str, Any], Any], name: str, version: int, table: str, mark: str
) -> None:
    """Forget ``name``'s ids older than `REQUEST_IDS_KEPT` versions before ``version``."""
    execute(
        f"DELETE FROM {table} WHERE name = {mark} AND version <= {mark}",
        (name, version - REQUEST_IDS_KEPT),
    )


def applied(
    execute: Callable[[str, Any], Any], name: str, ids: Sequence[str], table: str, mark: str
) -> dict[str, int]:
    """Which of ``ids`` made a commit of ``name`` here: ``{id: version}``."""
    if not ids:
        return {}
    marks = ", ".join([mark] * len(ids))
    rows = execute(
        f"SELECT request_id, version FROM {table} WHERE name = {mark} AND request_id IN ({marks})",
        (name, *ids),
    ).fetchall()
    return {row[0]: int(row[1]) for row in rows}
