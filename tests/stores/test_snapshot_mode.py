"""Snapshot mode (`SQLiteStore(durability="snapshot")`): the store writes each
actor's newest snapshot in the background, and a restart inside the process
still finds every acknowledged commit, whatever the background writer is doing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import bump

from stateward.actors import ActorCrashed, Runtime, SQLiteStore, StateManager, Supervisor
from stateward.core import ImmutableState

WAIT = 5.0


def boom(state: ImmutableState) -> ImmutableState:
    raise RuntimeError("boom")


def hold_the_background_writer(store: SQLiteStore) -> tuple[threading.Event, threading.Event]:
    """Make the store's background writer stop just before it writes what it took.

    Returns (taken, go): ``taken`` is set once the writer holds snapshots it has
    not written; it writes them once ``go`` is set. Writes from other threads
    (a recovery flushing what is unsaved) pass straight through.
    """
    taken, go = threading.Event(), threading.Event()
    write: Callable[[Any], None] = store._write_snapshots

    def held(dirty: Any) -> None:
        if threading.current_thread().name.startswith("stateward:store:"):
            taken.set()
            assert go.wait(WAIT), "the test never let the writer go on"
        write(dirty)

    store._write_snapshots = held  # type: ignore[method-assign]
    return taken, go


def test_a_restart_while_the_writer_holds_unwritten_snapshots_loses_nothing(
    tmp_path: Path,
) -> None:
    # The writer has taken the newest snapshot (n=3) off the unsaved list but
    # not written it when the actor crashes. Its restart recovers from the
    # store, and must find n=3: those commits were acknowledged.
    store = SQLiteStore(tmp_path / "s.db", durability="snapshot", snapshot_every=3)
    taken, go = hold_the_background_writer(store)
    try:
        with Runtime("snap", store=store) as runtime:
            sup = Supervisor("s", runtime=runtime, max_restarts=5)
            counter = StateManager(
                {"n": 0}, name="c", runtime=runtime, supervisor=sup, on_error="restart"
            )
            for _ in range(3):
                counter.modify(bump)
            assert taken.wait(WAIT), "the background writer never took the snapshot"

            with pytest.raises(ActorCrashed):
                counter.modify(boom)
            assert counter.modify(bump) == {"n": 4}
            assert counter.restarts == 1 and counter.version == 4
            go.set()
    finally:
        go.set()
    with Runtime("check", store=SQLiteStore(tmp_path / "s.db")) as runtime:
        assert StateManager({"n": 0}, name="c", runtime=runtime).get_state() == {"n": 4}


def test_a_background_write_that_fails_keeps_the_snapshot_unsaved(tmp_path: Path) -> None:
    # A failed background write is logged, and the snapshot stays on the
    # unsaved list: the next write (here, the one a restart makes before it
    # recovers) writes it, instead of it being dropped.
    store = SQLiteStore(tmp_path / "s.db", durability="snapshot", snapshot_every=2)
    write = store._write_snapshots
    failed = threading.Event()

    def fail_once(dirty: Any) -> None:
        if threading.current_thread().name.startswith("stateward:store:") and not failed.is_set():
            failed.set()
            raise store_write_error(dirty)
        write(dirty)

    def store_write_error(dirty: Any) -> Exception:
        from stateward.actors import StoreWriteError

        return StoreWriteError(", ".join(dirty), "the disk is full (made up by the test)")

    store._write_snapshots = fail_once  # type: ignore[method-assign]
    with Runtime("snap", store=store) as runtime:
        sup = Supervisor("s", runtime=runtime, max_restarts=5)
        counter = StateManager(
            {"n": 0}, name="c", runtime=runtime, supervisor=sup, on_error="restart"
        )
        counter.modify(bump)
        counter.modify(bump)
        assert failed.wait(WAIT), "the background writer never tried to write"
        with pytest.raises(ActorCrashed):
            counter.modify(boom)
        assert counter.modify(bump) == {"n": 3}
