"""A handle's ``snapshot``: a plain attribute the actor replaces at each commit."""

from __future__ import annotations

from pathlib import Path

import pytest

from stateward.actors import (
    ActorCrashed,
    ConfigManager,
    Runtime,
    SQLiteStore,
    StateMachine,
    StateManager,
    Supervisor,
)
from stateward.core import ImmutableState, UnencodableValueError

TOGGLE = {"a": ["b"], "b": ["a"]}


def test_the_snapshot_is_read_only(runtime: Runtime) -> None:
    machine = StateMachine("a", TOGGLE, runtime=runtime)
    manager = StateManager({"n": 0}, runtime=runtime)
    for handle in (machine, manager):
        before = handle.snapshot
        with pytest.raises(AttributeError, match="snapshot is read-only"):
            handle.snapshot = before  # type: ignore[misc]
        with pytest.raises(AttributeError, match="cannot be deleted"):
            del handle.snapshot
        assert handle.snapshot is before


def test_every_commit_is_seen_through_the_handle_and_the_actor_alike(runtime: Runtime) -> None:
    machine = StateMachine("a", TOGGLE, runtime=runtime)
    replies = [machine.request_transition("b" if i % 2 == 0 else "a") for i in range(200)]
    last = None
    for reply in replies:
        last = reply.result(timeout=10)
    assert machine.snapshot is last is machine._cell.snapshot
    assert machine.current_state == "a" and machine.version == 200
    manager = StateManager({"n": 0}, runtime=runtime)
    answer = manager.modify(lambda s: s.update(n=s.n + 1))
    assert manager.get_state() is answer is manager.snapshot.state
    assert manager.version == 1


def test_a_failed_request_leaves_the_published_snapshot_alone(runtime: Runtime) -> None:
    manager = StateManager({"n": 0}, runtime=runtime)
    before = manager.snapshot

    def broken(state: ImmutableState) -> ImmutableState:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        manager.modify(broken)
    assert manager.snapshot is before


def test_recovered_and_restarted_actors_publish_what_the_store_holds(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Runtime("first", store=SQLiteStore(path)) as runtime:
        machine = StateMachine("a", TOGGLE, name="m", runtime=runtime)
        machine.transition("b")
    with Runtime("second", store=SQLiteStore(path)) as runtime:
        sup = Supervisor("s", runtime=runtime, max_restarts=3)
        machine = StateMachine("a", TOGGLE, name="m", runtime=runtime, supervisor=sup)
        assert machine.recovered
        assert machine.snapshot.state == "b" and machine.version == 1  # recovered at creation
        machine.transition("a")
        counter = StateManager(
            {"n": 0}, name="c", runtime=runtime, supervisor=sup, on_error="restart"
        )
        counter.modify(lambda s: s.update(n=1))
        published = counter.snapshot
        with pytest.raises(ActorCrashed):
            counter.modify(lambda s: 1 / 0)
        # A refused request (no commit) is handled by the restarted incarnation,
        # which read its snapshot back from the store and published that. (Its
        # function's result is refused in the actor: a bad argument would be
        # refused in this thread, before reaching it.)
        with pytest.raises(UnencodableValueError):
            counter.modify(lambda s: {"x": object()})
        assert counter.restarts == 1
        assert counter.snapshot is counter._cell.snapshot
        assert counter.snapshot is not published and counter.snapshot == published
        assert counter.version == 1
        assert machine.snapshot.state == "a" and machine.version == 2


def test_a_config_manager_has_no_snapshot_attribute(runtime: Runtime) -> None:
    config = ConfigManager({"debug": False}, runtime=runtime)
    assert not hasattr(config, "snapshot")
