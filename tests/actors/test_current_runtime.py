"""Inside ``with Runtime(...) as rt:``, handles created without ``runtime=`` belong
to ``rt``: in that thread, in asyncio tasks created there, and until the block
ends (a nested block's runtime wins while it lasts). A new thread starts with a
fresh context, so there the default runtime serves unless it is given one."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from pathlib import Path

from support import Workers

from stateward.actors import (
    ConfigManager,
    Runtime,
    SQLiteStore,
    StateMachine,
    StateManager,
    Supervisor,
    default_runtime,
)

FLOW = {"a": ["b"], "b": []}


def test_a_machine_created_in_the_block_is_stored_in_the_blocks_store(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Runtime("stored", store=SQLiteStore(path)) as rt:
        machine = StateMachine("a", FLOW, name="x")
        assert machine.runtime is rt
        machine.transition("b")
    with Runtime("again", store=SQLiteStore(path)) as rt:
        again = StateMachine("a", FLOW, name="x")
        assert again.runtime is rt
        assert again.recovered
        assert (again.current_state, again.version) == ("b", 1)


def test_every_kind_of_handle_and_supervisor_uses_the_current_runtime() -> None:
    with Runtime("current") as rt:
        assert StateManager({"n": 0}).runtime is rt
        assert ConfigManager({"level": "INFO"}).runtime is rt
        supervisor = Supervisor("team")
        assert supervisor.runtime is rt
        assert StateManager({"n": 0}, supervisor=supervisor).runtime is rt
    assert all(not handle.alive for handle in rt)


def test_nested_blocks_restore_the_outer_runtime() -> None:
    with Runtime("outer") as outer:
        with Runtime("inner") as inner:
            assert StateManager({}).runtime is inner
        assert inner.closed
        assert StateManager({}).runtime is outer
    handle = StateManager({})
    try:
        assert handle.runtime is default_runtime()
    finally:
        handle.stop()


def test_an_explicit_runtime_wins_over_the_current_one() -> None:
    with Runtime("explicit") as explicit, Runtime("current") as current:
        assert StateManager({}, runtime=explicit).runtime is explicit
        assert StateManager({}).runtime is current


def test_a_new_thread_gets_the_default_runtime_unless_given_the_context(
    workers: Workers,
) -> None:
    """Threads start with a fresh context: the block's runtime is not theirs,
    unless the thread runs in a copy of the context."""
    made: dict[str, StateManager] = {}
    with Runtime("threads") as rt:
        workers.start(lambda: made.__setitem__("plain", StateManager({})))
        context = contextvars.copy_context()
        workers.start(lambda: context.run(lambda: made.__setitem__("copied", StateManager({}))))
        workers.join()
        assert made["copied"].runtime is rt
    plain = made["plain"]
    try:
        assert plain.runtime is default_runtime()
    finally:
        plain.stop()


def test_asyncio_tasks_created_in_the_block_use_its_runtime() -> None:
    async def make() -> StateManager:
        return StateManager({})

    async def main() -> tuple[Runtime, Runtime, StateManager]:
        with Runtime("in-a-task") as rt:
            handle = await asyncio.create_task(make())
        return rt, handle.runtime, handle

    with Runtime("around") as around:
        inner, owner, _ = asyncio.run(main())
        assert owner is inner
        # asyncio.run's task copied the context, in which "around" was current;
        # the block inside it did not change that context.
        assert StateManager({}).runtime is around


def test_a_handle_created_after_the_block_ended_in_another_thread_is_not_affected() -> None:
    seen: list[Runtime] = []
    entered, done = threading.Event(), threading.Event()

    def other() -> None:
        assert entered.wait(5)
        handle = StateManager({})
        seen.append(handle.runtime)
        handle.stop()
        done.set()

    workers = Workers()
    workers.start(other, name="other")
    with Runtime("mine") as rt:
        entered.set()
        assert done.wait(5)
    workers.join(5)  # and re-raises what the thread raised
    assert seen and seen[0] is not rt
