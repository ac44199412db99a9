"""A store opened with ``readonly=True`` cannot run actors, and says so up front.

It is for reading (``stateward inspect``). A runtime over one used to start,
and then every handle failed with a `StoreWriteError` claiming a commit had
failed and "the actor restarts from its last durable state", which was not
true: nothing was committed or restarted, the store just cannot record an
actor's owner. The runtime now refuses such a store when it is made, with an
error that says what to do.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stateward.actors import Runtime, SQLiteStore, StateManager


def test_a_runtime_refuses_a_read_only_store(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Runtime("writer", store=SQLiteStore(path)) as writer:
        StateManager({"n": 1}, name="m", runtime=writer)
    store = SQLiteStore(path, readonly=True)
    try:
        with pytest.raises(ValueError, match="readonly=True"):
            Runtime("reader", store=store)
    finally:
        store.close()
    with Runtime("again", store=SQLiteStore(path)) as again:
        assert StateManager({"n": 0}, name="m", runtime=again).get_state().n == 1
