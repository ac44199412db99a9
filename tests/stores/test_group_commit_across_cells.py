"""A pooled worker writes the commits of the turns it runs in a row together.

On a pool, a SQLite store stages the commits of a worker's turns (in
``"strict"`` and ``"batched"`` mode alike) and the worker writes them in one
transaction once its run queue is empty, then publishes and answers them. The
tests hold a write at its start (so that requests queue up behind it), then
check what the next write held, what was answered and published meanwhile,
and what recovery finds.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import bump

from stateward.actors import (
    ActorCrashed,
    Runtime,
    SQLiteStore,
    StateMachine,
    StateManager,
    StoreWriteError,
    Supervisor,
)
from stateward.actors._runtime import stop_request
from stateward.core import ImmutableState, InvalidTransition
from stateward.core._persist import ManagerCodec

WAIT = 20.0
ACTORS = 8


class Writes:
    """Wraps the store's `_write`: records each write's ``(name, version)``
    entries, and holds the writes numbered in ``hold`` (from 1) at their
    start until the test lets them go."""

    def __init__(self, store: SQLiteStore, hold: tuple[int, ...]) -> None:
        self.entries: list[list[tuple[str, int]]] = []
        self.started = {n: threading.Event() for n in hold}
        self.go = {n: threading.Event() for n in hold}
        real = store._write

        def write(items: list[Any]) -> None:
            self.entries.append([(item.name, item.version) for item in items])
            number = len(self.entries)
            if number in self.started:
                self.started[number].set()
                assert self.go[number].wait(WAIT), f"the test never let write {number} go"
            real(items)

        store._write = write  # type: ignore[method-assign]

    def wait_started(self, number: int) -> None:
        assert self.started[number].wait(WAIT), f"write {number} never started"


@pytest.fixture(params=["strict", "batched"])
def pooled(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Runtime, SQLiteStore]]:
    """One pooled worker, so that the turns it runs in a row are known."""
    store = SQLiteStore(tmp_path / "cells.db", durability=request.param, snapshot_every=1000)
    runtime = Runtime("cells", store=store, workers=1, default_timeout=WAIT)
    yield runtime, store
    runtime.shutdown()


def counters(runtime: Runtime) -> list[StateManager]:
    sup = Supervisor("counters", runtime=runtime, max_restarts=4 * ACTORS)
    return [
        StateManager({"n": 0}, name=f"c{i}", runtime=runtime, supervisor=sup) for i in range(ACTORS)
    ]


def stored(store: SQLiteStore, managers: list[StateManager]) -> dict[str, int]:
    return {m.name: store.recover(m.name, ManagerCodec()).state.n for m in managers}


def queue_behind_a_held_write(
    runtime: Runtime, store: SQLiteStore
) -> tuple[list[StateManager], Writes, Any, list[Any], Any]:
    """c0's commit is written alone and held there; meanwhile one request to
    each other counter, and a second to c1 (built on c1's first, not yet
    written), queue up behind it."""
    managers = counters(runtime)
    writes = Writes(store, hold=(1, 2))
    first = managers[0].request_modify(bump)
    writes.wait_started(1)
    assert not first.done() and managers[0].get_state().n == 0  # not durable: not answered
    queued = [m.request_modify(bump) for m in managers[1:]]
    again = managers[1].request_modify(bump)
    return managers, writes, first, queued, again


def test_turns_run_in_a_row_go_out_in_one_write_and_are_answered_after_it(
    pooled: tuple[Runtime, SQLiteStore],
) -> None:
    runtime, store = pooled
    managers, writes, first, queued, again = queue_behind_a_held_write(runtime, store)
    writes.go[1].set()
    assert first.result(WAIT).n == 1
    writes.wait_started(2)
    # Every queued turn ran, and its commit waits in the one write: nothing of
    # it is published or answered before that write is durable.
    assert writes.entries[1] == [("c1", 1), ("c1", 2)] + [(f"c{i}", 1) for i in range(2, ACTORS)]
    assert not any(reply.done() for reply in [*queued, again])
    assert [m.get_state().n for m in managers[1:]] == [0] * (ACTORS - 1)
    writes.go[2].set()
    assert [reply.result(WAIT).n for reply in queued] == [1] * (ACTORS - 1)
    assert again.result(WAIT).n == 2
    assert len(writes.entries) == 2
    expected = {m.name: 2 if m is managers[1] else 1 for m in managers}
    assert {m.name: m.get_state().n for m in managers} == expected
    assert stored(store, managers) == expected


def test_a_failed_write_fails_every_request_in_it_and_recovery_agrees(
    pooled: tuple[Runtime, SQLiteStore],
) -> None:
    runtime, store = pooled
    managers, writes, first, queued, again = queue_behind_a_held_write(runtime, store)
    writes.go[1].set()
    assert first.result(WAIT).n == 1
    writes.wait_started(2)
    store._db.execute("PRAGMA query_only = ON")  # the held write will be refused
    writes.go[2].set()
    # Every request of the failed write fails, the one built on a staged
    # snapshot (c1's second) too; none is published.
    for reply in [*queued, again]:
        error = reply.exception(WAIT)
        assert isinstance(error, ActorCrashed), repr(error)
        assert isinstance(error.__cause__, StoreWriteError), repr(error.__cause__)
    store._db.execute("PRAGMA query_only = OFF")
    expected = {m.name: 1 if m is managers[0] else 0 for m in managers}
    assert stored(store, managers) == expected
    assert {m.name: m.get_state().n for m in managers} == expected
    # Each failed actor restarted from the store, and goes on from there.
    for manager in managers[1:]:
        assert manager.modify(bump, timeout=WAIT).n == 1
        assert manager.restarts == 1
    assert managers[0].restarts == 0
    journal = sqlite3.connect(store.path).execute("SELECT name, version FROM journal")
    assert sorted(journal.fetchall()) == [("c0", 1)] + [(f"c{i}", 1) for i in range(1, ACTORS)]


def test_a_worker_answers_what_it_staged_before_it_waits_for_a_reply(tmp_path: Path) -> None:
    """A worker that blocks (here: an operation waiting for another actor's
    reply) first writes and answers the commits it staged, and gives back the
    turns it holds: else that other actor, held by the blocked worker, could
    never run, and the wait would never end."""
    store = SQLiteStore(tmp_path / "wait.db", durability="batched")
    with Runtime("waiting", store=store, workers=2, default_timeout=WAIT) as runtime:
        y = StateManager({"n": 0}, name="y", runtime=runtime)
        x = StateManager({"n": 0}, name="x", runtime=runtime)
        z = StateManager({"n": 0}, name="z", runtime=runtime)
        z_runs, x_sent, y_first_done = threading.Event(), threading.Event(), threading.Event()

        def occupy(state: ImmutableState) -> ImmutableState:
            # Holds the second worker until y's first request is answered.
            z_runs.set()
            assert y_first_done.wait(WAIT), "y's first request was never answered"
            return bump(state)

        def wait_for_x_to_queue(state: ImmutableState) -> ImmutableState:
            assert x_sent.wait(WAIT)  # so the same worker runs x's turn right after
            return bump(state)

        def ask_y(state: ImmutableState) -> ImmutableState:
            return state.update(n=y.modify(bump, timeout=WAIT).n)

        held = z.request_modify(occupy)
        assert z_runs.wait(WAIT)
        y_first = y.request_modify(wait_for_x_to_queue)
        y_first.add_done_callback(lambda _reply: y_first_done.set())
        asked = x.request_modify(ask_y)
        x_sent.set()
        assert y_first.result(WAIT).n == 1
        assert asked.result(WAIT).n == 2
        assert held.result(WAIT).n == 1
        assert y.get_state().n == 2 and x.get_state().n == 2


def test_a_request_running_on_a_lost_commit_when_the_write_fails_commits_nothing(
    tmp_path: Path,
) -> None:
    """``a``'s second request builds on its first, still staged; it blocks
    (waiting for ``b``), so the worker writes first, and that write fails. The
    second request, still running, must not commit on top of the lost one."""
    store = SQLiteStore(tmp_path / "lost.db", durability="batched")
    with Runtime("lost", store=store, workers=2, default_timeout=WAIT) as runtime:
        sup = Supervisor("sup", runtime=runtime, max_restarts=10)
        a = StateManager({"n": 0}, name="a", runtime=runtime, supervisor=sup)
        b = StateManager({"n": 0}, name="b", runtime=runtime, supervisor=sup)
        b_held, release_b, second_sent = threading.Event(), threading.Event(), threading.Event()

        def hold_b(state: ImmutableState) -> ImmutableState:
            b_held.set()
            assert release_b.wait(WAIT), "the test never let b go"
            return state

        def after_the_second_is_sent(state: ImmutableState) -> ImmutableState:
            assert second_sent.wait(WAIT)  # so that both run in one turn
            return bump(state)

        def ask_b(state: ImmutableState) -> ImmutableState:
            b.modify(bump, timeout=WAIT)  # b is busy: this worker waits, so it writes first
            return bump(state)

        holder = threading.Thread(target=b.modify, args=(hold_b,), kwargs={"timeout": WAIT})
        holder.start()  # b runs inline on that thread, and holds its turn
        try:
            assert b_held.wait(WAIT)
            first = a.request_modify(after_the_second_is_sent)
            second = a.request_modify(ask_b)
            with store._lock:
                store._db.execute("PRAGMA query_only = ON")  # the write of a's first fails
            second_sent.set()
            error = first.exception(WAIT)
            assert isinstance(error, ActorCrashed) and isinstance(error.cause, StoreWriteError)
            with store._lock:
                store._db.execute("PRAGMA query_only = OFF")
        finally:
            release_b.set()
            holder.join(WAIT)
        assert not holder.is_alive()
        error = second.exception(WAIT)
        assert isinstance(error, ActorCrashed), repr(error)
        assert store.recover("a", ManagerCodec()).state.n == 0
        assert a.modify(bump, timeout=WAIT).n == 1  # restarted from the store
        assert b.get_state().n == 1


def test_a_refusal_after_a_staged_commit_is_answered_after_it_and_sees_it_published(
    pooled: tuple[Runtime, SQLiteStore],
) -> None:
    """Replies go out in the order the requests ran: a request refused on top
    of a staged commit waits for that commit's write and reply."""
    runtime, store = pooled
    door = StateMachine("a", {"a": ["b"], "b": ["a"]}, name="door", runtime=runtime)
    other = StateManager({"n": 0}, name="other", runtime=runtime)
    writes = Writes(store, hold=(1,))
    first = other.request_modify(bump)
    writes.wait_started(1)  # the worker is busy writing: what follows queues up
    moved = door.request_transition("b")
    refused = door.request_transition("b")  # b -> b: refused, on top of the staged move
    seen: list[tuple[bool, str]] = []
    called = threading.Event()

    def look(_reply: Any) -> None:
        seen.append((moved.done(), door.current_state))
        called.set()

    refused.add_done_callback(look)
    writes.go[1].set()
    assert first.result(WAIT).n == 1
    assert isinstance(refused.exception(WAIT), InvalidTransition)
    assert moved.result(WAIT).state == "b"
    assert called.wait(WAIT)
    assert seen == [(True, "b")]
    assert writes.entries[1] == [("door", 1)]


def test_a_stop_behind_staged_commits_is_answered_after_them(
    pooled: tuple[Runtime, SQLiteStore],
) -> None:
    """An actor that stops first writes and answers what it staged: its stop
    never overtakes a commit, and the commit is in the store by then."""
    runtime, store = pooled
    counter = StateManager({"n": 0}, name="counter", runtime=runtime)
    other = StateManager({"n": 0}, name="other", runtime=runtime)
    writes = Writes(store, hold=(1,))
    first = other.request_modify(bump)
    writes.wait_started(1)  # the worker is busy writing: what follows queues up
    bumped = counter.request_modify(bump)
    stop = stop_request(counter._cell, "stopped by the test")
    seen: list[tuple[bool, int]] = []
    called = threading.Event()

    def look(_reply: Any) -> None:
        seen.append((bumped.done(), store.recover("counter", ManagerCodec()).state.n))
        called.set()

    stop.add_done_callback(look)
    writes.go[1].set()
    assert first.result(WAIT).n == 1
    assert stop.result(WAIT) is None
    assert bumped.result(WAIT).n == 1
    assert called.wait(WAIT)
    assert seen == [(True, 1)]


class Delegating:
    """A user's store that wraps another and follows the store protocol to the
    letter: ``commit`` returns nothing once the commit is durable. It offers
    no ``stage_entry``, so its commits are never staged in a worker's batch."""

    def __init__(self, inner: SQLiteStore) -> None:
        self.inner = inner
        self.durability = inner.durability
        self.commits = 0

    def claim(self, name: str, codec: Any, runtime_id: str) -> Any:
        return self.inner.claim(name, codec, runtime_id)

    def create(self, name: str, codec: Any, snapshot: Any) -> None:
        self.inner.create(name, codec, snapshot)

    def commit(self, name: str, codec: Any, old: Any, new: Any) -> None:
        self.inner.commit(name, codec, old, new)
        self.commits += 1

    def recover(self, name: str, codec: Any) -> Any:
        return self.inner.recover(name, codec)

    def release(self, name: str, runtime_id: str) -> None:
        self.inner.release(name, runtime_id)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("mode", ["strict", "batched"])
def test_a_store_wrapped_by_the_user_loses_no_pipelined_commit_on_a_pool(
    tmp_path: Path, mode: str
) -> None:
    """Pipelined requests on a pool, through a wrapper that calls the real
    store's ``commit``: every acknowledged commit is in the store and the
    wrapper saw each one (staging a commit inside the real store's
    ``commit``, as a return value the wrapper drops, lost them)."""
    path = tmp_path / "wrapped.db"
    wrapper = Delegating(SQLiteStore(path, durability=mode, snapshot_every=1000))
    with Runtime("wrapped", store=wrapper, workers=2, default_timeout=WAIT) as runtime:
        managers = counters(runtime)
        replies = [m.request_modify(bump) for _ in range(25) for m in managers]
        for reply in replies:
            reply.result(WAIT)
        assert [m.get_state().n for m in managers] == [25] * ACTORS
    assert wrapper.commits == 25 * ACTORS
    with Runtime("reopened", store=SQLiteStore(path, durability=mode)) as runtime:
        assert [m.get_state().n for m in counters(runtime)] == [25] * ACTORS
