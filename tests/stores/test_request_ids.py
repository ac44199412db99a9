"""Request ids in every store: the id of the request that made a commit is
written with it, in the same transaction, and found again by a new store
object (`stores._requests`): what lets a Ray shard that replaces a dead one
apply a retried request at most once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stateward.actors import (
    ActorCrashed,
    MemoryStore,
    PostgresStore,
    Runtime,
    SQLiteStore,
    StateMachine,
    Store,
    _context,
)
from stateward.actors.stores import _memory, _requests
from stateward.core import MachineSpec

StoreFactory = Callable[[], Store]

LOOP = MachineSpec("a", {"a": ["b"], "b": ["a"]})


@pytest.fixture(
    params=["memory", "sqlite-strict", "sqlite-batched", "postgres-strict", "postgres-batched"]
)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Stores that all see the same stored data (one memory, file or schema)."""
    if request.param == "memory":
        shared = MemoryStore()
        yield lambda: shared
        return
    mode = request.param.split("-")[1]
    if request.param.startswith("postgres"):
        url, schema = request.getfixturevalue("pg_schema")
        yield lambda: PostgresStore(url, durability=mode, schema=schema, snapshot_every=3)
        return
    path = tmp_path / "state.db"
    yield lambda: SQLiteStore(path, durability=mode, snapshot_every=3)


def _send(machine: StateMachine, target: str, rid: str | None) -> object:
    """``request_transition`` as a Ray shard sends it: with ``rid`` in the
    sender's context, which the request's reply copies."""
    token = _context.request_id.set(rid)
    try:
        reply = machine.request_transition(target)
    finally:
        _context.request_id.reset(token)
    return reply.result(10)


@pytest.mark.parametrize("workers", [0, 2], ids=["thread-host", "pool"])
def test_the_id_of_the_request_that_made_a_commit_is_stored_with_it(
    make_store: StoreFactory, workers: int
) -> None:
    with Runtime("ids", store=make_store(), workers=workers) as runtime:
        machine = StateMachine(LOOP, name="m", runtime=runtime)
        _send(machine, "b", "client:1")
        _send(machine, "a", None)
        _send(machine, "b", "client:3")
    store = make_store()
    try:
        assert store.applied("m", ["client:1", "client:2", "client:3"]) == {  # type: ignore[attr-defined]
            "client:1": 1,
            "client:3": 3,
        }
        assert store.applied("other", ["client:1"]) == {}  # type: ignore[attr-defined]
    finally:
        store.close()


def test_a_second_commit_with_the_same_request_id_is_refused_with_nothing_written(
    make_store: StoreFactory,
) -> None:
    with Runtime("twice", store=make_store(), workers=2) as runtime:
        machine = StateMachine(LOOP, name="m", runtime=runtime)
        _send(machine, "b", "client:1")
        with pytest.raises(ActorCrashed):
            _send(machine, "a", "client:1")
    with Runtime("after", store=make_store(), workers=2) as runtime:
        machine = StateMachine(LOOP, name="m", runtime=runtime)
        assert (machine.current_state, machine.version) == ("b", 1)
        assert runtime.store.applied("m", ["client:1"]) == {"client:1": 1}  # type: ignore[attr-defined]


def test_request_ids_are_kept_for_a_bounded_number_of_versions(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_requests, "REQUEST_IDS_KEPT", 5)
    monkeypatch.setattr(_memory, "REQUEST_IDS_KEPT", 5)
    ids = [f"client:{n}" for n in range(1, 31)]
    with Runtime("bounded", store=make_store(), workers=2) as runtime:
        machine = StateMachine(LOOP, name="m", runtime=runtime)
        for n, rid in enumerate(ids):
            _send(machine, "b" if n % 2 == 0 else "a", rid)
        found = runtime.store.applied("m", ids)  # type: ignore[attr-defined]
    # The newest five are always there; nothing older than the pruning
    # window (5 versions, pruned at each snapshot, every 3) is.
    assert set(ids[-5:]) <= set(found), found
    assert len(found) <= 5 + 3, found
    assert all(found[rid] == n + 1 for n, rid in enumerate(ids) if rid in found)
