"""A machine's history through its handle: trimmed to the limit, and always
matching the snapshot it belongs to, for readers on other threads too.

Every wait is bounded, threads are joined and their errors re-raised
(`support.Workers`).
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

from support import TOGGLE, Ticks, Workers

from stateward.actors import Runtime, SQLiteStore, StateMachine
from stateward.core import History

# Private, on purpose: CHUNK is where History's storage changes shape; a limit
# just past it makes readers cross that boundary.
from stateward.core._history import CHUNK

WAIT = 20.0
T0 = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


def test_a_stored_history_longer_than_the_new_limit_is_trimmed_by_the_next_transition(
    tmp_path: Path,
) -> None:
    path = tmp_path / "h.db"
    with Runtime("long", store=SQLiteStore(path, snapshot_every=7), clock=Ticks(T0)) as runtime:
        machine = StateMachine("a", TOGGLE, name="m", runtime=runtime, history_limit=40)
        for i in range(50):
            machine.transition("b" if i % 2 == 0 else "a")
        assert [r.version for r in machine.history] == list(range(11, 51))
    with Runtime("short", store=SQLiteStore(path, snapshot_every=7), clock=Ticks(T0)) as runtime:
        machine = StateMachine("a", TOGGLE, name="m", runtime=runtime, history_limit=3)
        assert machine.recovered and machine.version == 50
        kept = [r.version for r in machine.history]
        assert kept == list(range(51 - len(kept), 51))  # the newest ones, in order
        machine.transition("b")
        assert [r.version for r in machine.history] == [49, 50, 51]
        assert type(machine.snapshot.history) is History


def test_readers_never_see_a_history_that_does_not_match_its_snapshot() -> None:
    limit = CHUNK + 3
    writes = 300
    with Runtime("readers", default_timeout=WAIT) as runtime:
        machine = StateMachine("a", TOGGLE, runtime=runtime, history_limit=limit)
        done = threading.Event()
        reads = [0] * 4

        def read(slot: int) -> None:
            last = 0
            for _ in range(1_000_000):  # bounded: the writer ends long before
                if done.is_set():
                    break
                snap = machine.snapshot
                v = snap.version
                assert v >= last, f"the version went back from {last} to {v}"
                last = v
                assert snap.state == ("b" if v % 2 else "a")
                versions = [r.version for r in snap.history]
                assert versions == list(range(max(1, v - limit + 1), v + 1))
                reads[slot] += 1
            assert done.is_set(), "the writer never finished"

        def write() -> None:
            try:
                for i in range(writes):
                    made = machine.transition("b" if i % 2 == 0 else "a", {"i": i})
                    assert machine.snapshot.version >= made.version  # read your writes
            finally:
                done.set()

        workers = Workers()
        for slot in range(len(reads)):
            workers.start(read, slot, name=f"reader-{slot}")
        workers.start(write, name="writer")
        workers.join(WAIT * 3)
        assert machine.version == writes and all(reads)
