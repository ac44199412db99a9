"""SQLiteStore's batched mode, committer by committer: the lead of the next
write is never lost, whether a committer is interrupted (KeyboardInterrupt)
while queued, as it is handed the lead, or while its entry is being written;
closing the store fails each waiting committer once; seeded committers each
return once and lose nothing.

Private, on purpose: these interleavings happen inside `_write_batched` (a
held `_write`, the `_pending` list, the committers' wake locks), which no
public call can hold still; the journal table is read to check the result.
Every wait is bounded, threads are joined and their errors re-raised
(`support.Workers`), seeds are fixed.
"""

from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from support import Workers

from stateward.actors import SQLiteStore, StoreWriteError
from stateward.actors.stores import _group_commit

WAIT = 20.0
SEED = 20261122


class Gate:
    """Wraps a store's `_write`: records each write's entries, and holds the
    writes numbered in ``hold`` (1 is the first) at their start until let go."""

    def __init__(self, store: SQLiteStore, hold: Sequence[int]) -> None:
        self.batches: list[list[str]] = []
        self.started = {n: threading.Event() for n in hold}
        self.go = {n: threading.Event() for n in hold}
        real = store._write
        lock = threading.Lock()

        def write(items: list[Any]) -> None:
            with lock:
                self.batches.append([i.name for i in items])
                number = len(self.batches)
            if number in self.started:
                self.started[number].set()
                assert self.go[number].wait(WAIT), f"write {number} was never let go"
            real(items)

        store._write = write  # type: ignore[method-assign]

    def wait_started(self, number: int) -> None:
        assert self.started[number].wait(WAIT), f"write {number} never started"


class Queued(list):  # type: ignore[type-arg]
    """Stands in for the store's pending list: tells when ``n`` entries are in."""

    def __init__(self) -> None:
        super().__init__()
        self.counts = [threading.Event() for _ in range(16)]

    def append(self, item: Any) -> None:
        super().append(item)
        self.counts[len(self)].set()

    def wait_for(self, n: int) -> None:
        assert self.counts[n].wait(WAIT), f"only {len(self)} entries queued, expected {n}"


def queue_behind(store: SQLiteStore) -> Queued:
    """Call once the leader has taken its batch: later entries queue here."""
    queued = Queued()
    with store._cond:
        assert store._pending == []
        store._pending = queued
    return queued


class InterruptedWake:
    """A committer's wake lock whose blocking wait ends in KeyboardInterrupt,
    as `Lock.acquire` does in the main thread on Ctrl-C (a caller's commit
    runs there when the actor is idle: inline calls).

    ``queued``: raises when the test sets ``interrupt``, never woken.
    ``woken``: raises just as it is woken, the wake-up still unconsumed (the
    interrupt came first).
    """

    def __init__(self, when: str) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self.when = when
        self.waiting = threading.Event()
        self.interrupt = threading.Event()

    def acquire(self, blocking: bool = True) -> bool:
        if not blocking:
            return self._lock.acquire(False)
        self.waiting.set()
        if self.when == "woken":
            assert self._lock.acquire(timeout=WAIT), "never woken"
            self._lock.release()
        else:
            assert self.interrupt.wait(WAIT), "the test never interrupted the wait"
        raise KeyboardInterrupt

    def release(self) -> None:
        self._lock.release()  # RuntimeError if released twice


def entry(name: str, wake: InterruptedWake | None = None) -> Any:
    item = _group_commit.Pending(name, 1, b"payload-" + name.encode(), None)
    if wake is not None:
        item.wake = wake
    return item


def interrupted(store: SQLiteStore, item: Any) -> None:
    with pytest.raises(KeyboardInterrupt):
        store._write_batched(item)


def journal(store: SQLiteStore) -> list[str]:
    db = sqlite3.connect(store.path)
    try:
        return sorted(row[0] for row in db.execute("SELECT name FROM journal"))
    finally:
        db.close()


@pytest.fixture
def batched(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "g.db", durability="batched", snapshot_every=10**6)
    yield store
    store.close()


def test_a_committer_interrupted_while_queued_withdraws_and_the_lead_is_not_lost(
    batched: SQLiteStore,
) -> None:
    store = batched
    gate = Gate(store, hold=[1])
    leader, others = Workers(), Workers()
    leader.start(store._write_batched, entry("L"), name="L")
    gate.wait_started(1)
    queued = queue_behind(store)
    wake = InterruptedWake("queued")
    others.start(interrupted, store, entry("B", wake), name="B")
    queued.wait_for(1)
    assert wake.waiting.wait(WAIT)
    wake.interrupt.set()
    others.join(WAIT)
    gate.go[1].set()
    leader.join(WAIT)
    # Without the withdrawal the lead went to B, who is gone: C would wait forever.
    others.start(store._write_batched, entry("C"), name="C")
    others.join(WAIT)
    assert gate.batches == [["L"], ["C"]]
    assert journal(store) == ["C", "L"]  # B's entry was taken back, never written
    assert list(store._pending) == [] and store._leading is False


def test_a_committer_interrupted_as_it_is_handed_the_lead_passes_it_on(
    batched: SQLiteStore,
) -> None:
    store = batched
    gate = Gate(store, hold=[1])
    leader, others = Workers(), Workers()
    leader.start(store._write_batched, entry("L"), name="L")
    gate.wait_started(1)
    queued = queue_behind(store)
    wake = InterruptedWake("woken")
    others.start(interrupted, store, entry("B", wake), name="B")
    queued.wait_for(1)
    others.start(store._write_batched, entry("C"), name="C")
    queued.wait_for(2)
    gate.go[1].set()  # L hands the lead to B, the oldest queued; B passes it to C
    leader.join(WAIT)
    others.join(WAIT)
    assert gate.batches == [["L"], ["C"]]
    assert journal(store) == ["C", "L"]
    assert list(store._pending) == [] and store._leading is False


def test_a_committer_interrupted_while_its_entry_is_written_leaves_it_to_the_write(
    batched: SQLiteStore,
) -> None:
    store = batched
    gate = Gate(store, hold=[1, 2])
    leader, behind, others = Workers(), Workers(), Workers()
    leader.start(store._write_batched, entry("L"), name="L")
    gate.wait_started(1)
    queued = queue_behind(store)
    behind.start(store._write_batched, entry("C"), name="C")
    queued.wait_for(1)
    wake = InterruptedWake("queued")
    others.start(interrupted, store, entry("B", wake), name="B")
    queued.wait_for(2)
    gate.go[1].set()  # C leads the next write, which takes B's entry too
    leader.join(WAIT)
    gate.wait_started(2)
    assert wake.waiting.wait(WAIT)
    wake.interrupt.set()
    others.join(WAIT)
    gate.go[2].set()
    behind.join(WAIT)  # C wakes B's committer, gone: no double release, no error
    others.start(store._write_batched, entry("D"), name="D")
    others.join(WAIT)
    assert gate.batches == [["L"], ["C", "B"], ["D"]]
    assert journal(store) == ["B", "C", "D", "L"]
    assert list(store._pending) == [] and store._leading is False


def test_closing_the_store_while_committers_wait_fails_each_of_them_once(
    batched: SQLiteStore,
) -> None:
    store = batched
    gate = Gate(store, hold=[1])
    outcomes: dict[str, str] = {}
    lock = threading.Lock()

    def commit(name: str) -> None:
        try:
            store._write_batched(entry(name))
        except StoreWriteError as exc:
            with lock:
                outcomes[name] = "closed" if "is closed" in str(exc) else repr(exc)
        else:
            with lock:
                outcomes[name] = "written"

    workers = Workers()
    workers.start(commit, "L", name="L")
    gate.wait_started(1)
    queued = queue_behind(store)
    names = [f"C{i}" for i in range(6)]
    for i, name in enumerate(names):
        workers.start(commit, name, name=name)
        queued.wait_for(i + 1)
    store.close()
    gate.go[1].set()
    workers.join(WAIT)
    assert outcomes == dict.fromkeys(["L", *names], "closed")
    assert gate.batches == [["L"], names]
    assert list(store._pending) == [] and store._leading is False
    with pytest.raises(StoreWriteError, match="is closed"):
        store._write_batched(entry("late"))


def test_seeded_direct_committers_each_return_once_and_lose_nothing(
    batched: SQLiteStore, tiny_switch_interval: None
) -> None:
    store = batched
    rng = random.Random(SEED)
    plan = [rng.randrange(10, 30) for _ in range(12)]
    barrier = threading.Barrier(len(plan))
    returned: list[str] = []
    lock = threading.Lock()

    def run(n: int, times: int) -> None:
        barrier.wait(WAIT)
        for v in range(1, times + 1):
            store._write_batched(_group_commit.Pending(f"w{n}", v, b"p", None))
            with lock:
                returned.append(f"w{n}:{v}")

    workers = Workers()
    for n, times in enumerate(plan):
        workers.start(run, n, times, name=f"w{n}")
    workers.join(WAIT * 3)
    expected = sorted(f"w{n}:{v}" for n, times in enumerate(plan) for v in range(1, times + 1))
    assert sorted(returned) == expected
    db = sqlite3.connect(store.path)
    try:
        rows = sorted(f"{n}:{v}" for n, v in db.execute("SELECT name, version FROM journal"))
    finally:
        db.close()
    assert rows == expected
    assert list(store._pending) == [] and store._leading is False
