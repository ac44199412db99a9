"""A handle's ``snapshot``: a plain attribute the actor replaces at each commit."""

from __future__ import annotations

import copy
import threading
from pathlib import Path

import pytest
from support import TOGGLE

from stateward.actors import (
    ActorCrashed,
    ConfigManager,
    DeadlineExceeded,
    ManualClock,
    Runtime,
    SQLiteStore,
    StateMachine,
    StateManager,
    Supervisor,
)
from stateward.core import ImmutableState, UnencodableValueError


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


# -- copies and subclasses of handles, and a fenced incarnation ----------------------------
#
# `handle._cell` (private, on purpose): the cell is where the actor publishes
# its snapshot, and only it shows that the handle's attribute is that very
# object; `_cell.thread` is the fenced incarnation's thread, which the test
# joins to see that its late return changes nothing.

WAIT = 20.0


def test_a_copied_handle_reads_what_the_actor_commits() -> None:
    with Runtime("copies", default_timeout=WAIT) as runtime:
        machine = StateMachine("a", TOGGLE, runtime=runtime)
        manager = StateManager({"n": 0}, runtime=runtime)
        config = ConfigManager({"x": 0}, runtime=runtime)
        machine_copy, manager_copy, config_copy = map(copy.copy, (machine, manager, config))
        machine.transition("b")
        manager.update_state({"n": 1})
        config.update_config({"x": 1})
        assert machine_copy.current_state == "b" and machine_copy.version == 1
        assert machine_copy.snapshot is machine.snapshot is machine._cell.snapshot
        assert manager_copy.get_state().n == 1 and manager_copy.version == 1
        assert config_copy.get_version() == 1 and not hasattr(config_copy, "snapshot")
        machine_copy.transition("a")
        assert machine.current_state == "a" and machine.snapshot is machine_copy.snapshot


class Counter(StateManager):
    """A user's subclass: attributes set before and after the base's __init__."""

    def __init__(self, runtime: Runtime) -> None:
        self.step = 2
        super().__init__({"n": 0}, runtime=runtime)
        self.label = "counter"

    def bump(self) -> int:
        result: int = self.modify(lambda s: s.update(n=s.n + self.step)).n
        return result


def test_a_subclassed_handle_is_mirrored_and_read_only_too() -> None:
    with Runtime("sub", default_timeout=WAIT) as runtime:
        counter = Counter(runtime)
        assert counter.bump() == 2 and counter.snapshot.state.n == 2
        assert counter.snapshot is counter._cell.snapshot
        with pytest.raises(AttributeError, match="read-only"):
            counter.snapshot = counter.snapshot  # type: ignore[misc]
        with pytest.raises(AttributeError, match="cannot be deleted"):
            del counter.snapshot
        counter.label = "renamed"  # other attributes are the subclass's own
        assert counter.label == "renamed" and counter.bump() == 4


def test_a_fenced_handler_is_never_seen_through_the_handle(tmp_path: Path) -> None:
    clock = ManualClock()
    store = SQLiteStore(tmp_path / "f.db")
    # workers=0: a thread per incarnation, so the test can wait for the fenced
    # one's thread to end (a pooled worker goes on serving other cells).
    with Runtime("fenced", store=store, timer=clock, default_timeout=WAIT, workers=0) as runtime:
        sup = Supervisor("s", runtime=runtime, max_restarts=5)
        manager = StateManager({"n": 0}, name="n", runtime=runtime, supervisor=sup, deadline=2.0)
        manager.update_state({"n": 1})
        entered, release = threading.Event(), threading.Event()

        def hang(state: ImmutableState) -> ImmutableState:
            entered.set()
            assert release.wait(WAIT)
            return state.update(n=999)

        hung = manager.request_modify(hang)
        assert entered.wait(WAIT)
        hung_thread = manager._cell.thread
        clock.advance(2.5)  # the watchdog fences the hung incarnation
        with pytest.raises(ActorCrashed) as caught:
            hung.result(timeout=WAIT)
        assert isinstance(caught.value.cause, DeadlineExceeded)
        assert manager.update_state({"n": 2}, timeout=WAIT).n == 2  # the next incarnation
        release.set()
        assert hung_thread is not None
        hung_thread.join(WAIT)
        assert not hung_thread.is_alive()
        assert manager.snapshot is manager._cell.snapshot
        assert manager.get_state().n == 2 and manager.version == 2
        assert manager.modify(lambda s: s.update(n=s.n + 1), timeout=WAIT).n == 3
        assert manager.snapshot is manager._cell.snapshot
