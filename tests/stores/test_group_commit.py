"""SQLiteStore's batched mode: one write for everyone who committed meanwhile.

The first write is held at its start (its committer leads it), so every other
committer queues behind it; the test then lets it go and checks that the queued
entries went out together, each committer woken once, with the right outcome.
"""

from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import Workers, bump

from stateward.actors import (
    ActorCrashed,
    Runtime,
    SQLiteStore,
    StateManager,
    StoreWriteError,
    Supervisor,
)
from stateward.core._persist import ManagerCodec

WAIT = 20.0
COMMITTERS = 12


class Queued(list):  # type: ignore[type-arg]
    """The store's pending list, telling when ``expected`` entries are in it."""

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.expected = expected
        self.full = threading.Event()

    def append(self, item: Any) -> None:
        super().append(item)
        if len(self) >= self.expected:
            self.full.set()


class HeldWrites:
    """Wraps the store's `_write`: counts each write's entries, and holds the
    first one at its start until `release` is set."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.sizes: list[int] = []
        self.started = threading.Event()
        self.release = threading.Event()
        real = store._write

        def write(items: list[Any]) -> None:
            self.sizes.append(len(items))
            if len(self.sizes) == 1:
                self.started.set()
                assert self.release.wait(WAIT), "the test never let the first write go"
            real(items)

        store._write = write  # type: ignore[method-assign]

    def queue_behind_the_first(self, expected: int) -> Queued:
        assert self.started.wait(WAIT), "the first write never started"
        queued = Queued(expected)
        with self.store._cond:  # the leader took its batch before writing it
            assert self.store._pending == []
            self.store._pending = queued
        return queued


@pytest.fixture
def batched(tmp_path: Path) -> Iterator[tuple[Runtime, SQLiteStore]]:
    store = SQLiteStore(tmp_path / "g.db", durability="batched", snapshot_every=1000)
    runtime = Runtime("group", store=store, default_timeout=WAIT)
    yield runtime, store
    runtime.shutdown()


def counters(runtime: Runtime, count: int) -> list[StateManager]:
    """``count`` counters under a supervisor that restarts each of them once."""
    sup = Supervisor("counters", runtime=runtime, max_restarts=2 * count)
    return [
        StateManager({"n": 0}, name=f"c{i}", runtime=runtime, supervisor=sup) for i in range(count)
    ]


def test_entries_queued_behind_a_write_go_out_in_the_next_one_together(
    batched: tuple[Runtime, SQLiteStore],
) -> None:
    runtime, store = batched
    managers = counters(runtime, COMMITTERS)
    held = HeldWrites(store)
    workers = Workers()
    workers.start(managers[0].modify, bump, name="leader")
    queued = held.queue_behind_the_first(COMMITTERS - 1)
    for manager in managers[1:]:
        workers.start(manager.modify, bump, name=manager.name)
    assert queued.full.wait(WAIT), f"only {len(queued)} entries queued"
    held.release.set()
    workers.join(WAIT)
    assert held.sizes == [1, COMMITTERS - 1]
    for manager in managers:
        assert manager.get_state().n == 1
        assert store.recover(manager.name, ManagerCodec()).state.n == 1


def test_every_committer_of_a_failed_write_gets_the_error_and_the_lead_moves_on(
    batched: tuple[Runtime, SQLiteStore],
) -> None:
    runtime, store = batched
    managers = counters(runtime, COMMITTERS)
    held = HeldWrites(store)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def commit(manager: StateManager) -> None:
        try:
            manager.modify(bump)
        except ActorCrashed as exc:
            with lock:
                errors.append(exc)

    workers = Workers()
    workers.start(commit, managers[0], name="leader")
    queued = held.queue_behind_the_first(COMMITTERS - 1)
    for manager in managers[1:]:
        workers.start(commit, manager, name=manager.name)
    assert queued.full.wait(WAIT)
    store._db.execute("PRAGMA query_only = ON")  # both writes will be refused
    held.release.set()
    workers.join(WAIT)
    store._db.execute("PRAGMA query_only = OFF")
    assert held.sizes == [1, COMMITTERS - 1]  # the second write was led, and failed whole
    assert len(errors) == COMMITTERS
    assert all(isinstance(e.__cause__, StoreWriteError) for e in errors)
    for manager in managers:  # nothing was published; each restarts from what is stored
        assert manager.modify(bump, timeout=WAIT).n == 1
    stored = sqlite3.connect(store.path).execute("SELECT count(*) FROM journal").fetchone()
    assert stored == (COMMITTERS,)


def refuse_snapshots_of(path: Path, name: str) -> None:
    """Make SQLite refuse every snapshot write of actor ``name`` (as a full disk
    would refuse the pages it needs), through a trigger in the store file."""
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TRIGGER refuse_snapshot BEFORE INSERT ON snapshots "
        f"WHEN NEW.name = '{name}' AND NEW.version > 0 "
        "BEGIN SELECT RAISE(ABORT, 'no room for this snapshot'); END"
    )
    db.commit()
    db.close()


def test_a_snapshot_that_cannot_be_written_fails_its_batch_and_recovery_agrees(
    tmp_path: Path,
) -> None:
    """The journal entries of a batch are written with the snapshots due with
    them, or not at all: every committer of the failed batch is told, and none
    of their entries is found afterwards."""
    store = SQLiteStore(tmp_path / "g.db", durability="batched", snapshot_every=2)
    runtime = Runtime("group", store=store, default_timeout=WAIT)
    try:
        managers = counters(runtime, COMMITTERS)
        managers[5].modify(bump)  # its next commit is version 2: a snapshot is due
        refuse_snapshots_of(store.path, "c5")
        held = HeldWrites(store)
        outcomes: dict[str, str] = {}
        lock = threading.Lock()

        def commit(manager: StateManager) -> None:
            try:
                manager.modify(bump)
                outcome = "ack"
            except ActorCrashed as exc:
                outcome = "failed" if isinstance(exc.cause, StoreWriteError) else repr(exc)
            with lock:
                outcomes[manager.name] = outcome

        workers = Workers()
        workers.start(commit, managers[0], name="leader")
        queued = held.queue_behind_the_first(COMMITTERS - 1)
        for manager in managers[1:]:
            workers.start(commit, manager, name=manager.name)
        assert queued.full.wait(WAIT)
        held.release.set()
        workers.join(WAIT)
        assert held.sizes == [1, COMMITTERS - 1]
        assert outcomes == {m.name: "ack" if m is managers[0] else "failed" for m in managers}
        expected = {m.name: 1 if m in (managers[0], managers[5]) else 0 for m in managers}
        assert {m.name: store.recover(m.name, ManagerCodec()).state.n for m in managers} == (
            expected
        )
        journal = sqlite3.connect(store.path).execute("SELECT name, version FROM journal")
        assert sorted(journal.fetchall()) == [("c0", 1), ("c5", 1)]
        assert {m.name: m.get_state().n for m in managers} == expected  # nothing published
    finally:
        runtime.shutdown()


def test_seeded_committers_lose_nothing(batched: tuple[Runtime, SQLiteStore]) -> None:
    runtime, store = batched
    managers = counters(runtime, 8)
    rng = random.Random(20261122)
    plan = [rng.randrange(20, 60) for _ in managers]
    workers = Workers()

    def run(manager: StateManager, times: int) -> None:
        for _ in range(times):
            manager.modify(bump)

    for manager, times in zip(managers, plan, strict=True):
        workers.start(run, manager, times, name=manager.name)
    workers.join(WAIT * 3)
    for manager, times in zip(managers, plan, strict=True):
        assert manager.get_state().n == times
        assert store.recover(manager.name, ManagerCodec()).state.n == times
    assert store._pending == [] and store._leading is False
