"""Creating and releasing actors in a SQLite store: one transaction each, no fsync of their own.

A claim of a new name only reads; the create writes the owner, the actor and
its first snapshot in one transaction, without an fsync (``synchronous =
NORMAL``, set back to ``FULL`` right after, under the store's lock), so that
the commits of actors are still synced one by one. Ownership holds as before:
a name reserved or written by a live runtime is refused to another.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from stateward.actors import ActorOwned, Runtime, SQLiteStore, StateManager, StoreWriteError
from stateward.core import ImmutableState
from stateward.core._persist import ManagerCodec
from stateward.core._store import StoreSnapshot

MODES = ["strict", "batched"]


def synchronous(store: SQLiteStore) -> int:
    """The store connection's ``synchronous`` setting (2 is FULL)."""
    with store._lock:
        return int(store._db.execute("PRAGMA synchronous").fetchone()[0])


class Statements(list[str]):
    """The SQL statements a store's connection runs, as traced by SQLite."""

    def __init__(self, store: SQLiteStore) -> None:
        super().__init__()
        store._db.set_trace_callback(self.append)

    def transactions(self) -> list[list[str]]:
        """The statements between each BEGIN and its COMMIT."""
        found: list[list[str]] = []
        current: list[str] | None = None
        for statement in self:
            if statement.startswith("BEGIN"):
                current = []
            elif statement == "COMMIT" and current is not None:
                found.append(current)
                current = None
            elif current is not None:
                current.append(statement.split(" VALUES")[0])
        return found


@pytest.fixture(params=MODES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "new.db", durability=request.param)
    yield store
    store.close()


def initial() -> StoreSnapshot:
    return StoreSnapshot(ImmutableState(n=0), 0)


def test_a_new_actor_takes_one_unsynced_transaction_and_commits_stay_synced(
    store: SQLiteStore,
) -> None:
    statements = Statements(store)
    with Runtime("one", store=store) as runtime:
        counter = StateManager({"n": 0}, name="counter", runtime=runtime)
        created = statements.transactions()
        assert len(created) == 1, created
        assert [s.split(" (")[0].split(" SET")[0] for s in created[0]] == [
            "SELECT runtime_id, pid, started, since FROM owners WHERE name = 'counter'",
            # The runtime's first name in this store takes its lease, in the same transaction.
            "UPDATE leases",
            "INSERT INTO leases",
            "INSERT OR REPLACE INTO owners",
            "INSERT INTO actors",
            "INSERT INTO snapshots",
        ]
        before = statements.index(next(s for s in statements if s.startswith("BEGIN")))
        assert statements[before - 1] == "PRAGMA synchronous = NORMAL"
        assert "PRAGMA synchronous = FULL" in statements[before:]
        assert synchronous(store) == 2  # the commit below is fsynced, as every commit is
        del statements[:]
        counter.update_state({"n": 1})
        assert not any("synchronous" in s for s in statements)
        assert synchronous(store) == 2
    reopened = SQLiteStore(store.path, durability=store.durability)
    with Runtime("two", store=reopened) as runtime:
        again = StateManager({"n": 0}, name="counter", runtime=runtime)
        assert again.recovered and again.get_state().n == 1


def test_a_new_name_reserved_by_a_live_runtime_is_refused_to_another_until_released(
    store: SQLiteStore,
) -> None:
    with Runtime("first") as first, Runtime("second") as second:
        codec = ManagerCodec()
        assert store.claim("shared", codec, first.runtime_id) is None  # reserved, not written
        with pytest.raises(ActorOwned, match="'shared' is already open in this store"):
            store.claim("shared", codec, second.runtime_id)
        store.release("shared", first.runtime_id)  # claimed, never created
        assert store.claim("shared", codec, second.runtime_id) is None
        store.create("shared", codec, initial())
        with pytest.raises(ActorOwned):
            store.claim("shared", codec, first.runtime_id)


def test_a_name_another_store_writes_between_claim_and_create_is_refused(
    store: SQLiteStore,
) -> None:
    """Two store objects on one file: both find the name new, the first to
    create it owns it, and the other's create is refused, writing nothing."""
    other = SQLiteStore(store.path, durability=store.durability)
    try:
        with Runtime("first") as first, Runtime("second") as second:
            codec = ManagerCodec()
            assert store.claim("shared", codec, first.runtime_id) is None
            assert other.claim("shared", codec, second.runtime_id) is None
            other.create("shared", codec, StoreSnapshot(ImmutableState(n=7), 0))
            with pytest.raises(ActorOwned, match="'shared' is already open in this store"):
                store.create("shared", codec, initial())
            assert synchronous(store) == 2
            assert store.recover("shared", codec).state.n == 7
    finally:
        other.close()
    db = sqlite3.connect(store.path)
    try:
        assert db.execute("SELECT count(*) FROM actors").fetchone() == (1,)
    finally:
        db.close()


def test_a_refused_create_writes_nothing_and_leaves_commits_synced(store: SQLiteStore) -> None:
    with Runtime("refused") as runtime:
        codec = ManagerCodec()
        assert store.claim("c", codec, runtime.runtime_id) is None
        with store._lock:
            store._db.execute("PRAGMA query_only = ON")
        try:
            with pytest.raises(StoreWriteError, match="SQLite refused the new actor"):
                store.create("c", codec, initial())
        finally:
            with store._lock:
                store._db.execute("PRAGMA query_only = OFF")
        assert synchronous(store) == 2
        assert store.claim("c", codec, runtime.runtime_id) is None  # still new
        store.create("c", codec, initial())
        assert store.recover("c", codec).state.n == 0
