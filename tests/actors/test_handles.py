"""The three handles as actors: commit then publish, errors to their caller only."""

from __future__ import annotations

import asyncio
import threading

import pytest
from support import TOGGLE

from stateward.actors import ConfigManager, Runtime, StateMachine, StateManager
from stateward.core import (
    HookReturnError,
    ImmutableState,
    InvalidTransition,
    MachineBuilder,
    MachineDefinitionError,
    MachineSnapshot,
    Reject,
    TransitionRejected,
    UnencodableValueError,
    UnknownVersionError,
)
from stateward.core._messages import ConfigUpdate, Move, Update

DOC = {
    "draft": ["review", "archived"],
    "review": ["approved", "rejected", "draft"],
    "approved": ["published", "archived"],
    "rejected": ["draft", "archived"],
    "published": ["archived"],
    "archived": [],
}


def test_machine_transitions_and_reads(runtime: Runtime) -> None:
    machine = StateMachine("draft", DOC, name="doc", runtime=runtime)
    assert machine.current_state == "draft"
    assert machine.can_transition("review")
    assert not machine.can_transition("published")
    snapshot = machine.transition("review")
    assert isinstance(snapshot, MachineSnapshot)
    assert snapshot.state == machine.current_state == "review"
    assert machine.version == 1
    assert [(r.from_state, r.to_state, r.version) for r in machine.history] == [
        ("draft", "review", 1)
    ]
    assert machine.snapshot is snapshot


def test_invalid_transition_names_state_target_and_allowed(runtime: Runtime) -> None:
    machine = StateMachine("draft", DOC, name="doc", runtime=runtime)
    with pytest.raises(InvalidTransition) as caught:
        machine.transition("published")
    err = caught.value
    assert (err.state, err.target, err.allowed) == ("draft", "published", ("archived", "review"))
    assert "machine 'doc'" in str(err)
    assert "'draft'" in str(err) and "'published'" in str(err) and "'review'" in str(err)
    assert isinstance(err, ValueError)
    assert machine.current_state == "draft"
    assert machine.version == 0


def test_failed_handler_leaves_snapshot_untouched_and_only_its_caller_sees_it(
    runtime: Runtime,
) -> None:
    flow = MachineBuilder("a", TOGGLE)

    @flow.on_enter("b")
    def explode(ctx):
        if ctx.payload.get("explode"):
            raise RuntimeError("boom in enter")
        return {"entered": ctx.version}

    machine = StateMachine(flow, runtime=runtime)
    before = machine.snapshot
    failing = machine.request_transition("b", {"explode": True})
    fine = machine.request_transition("b")
    with pytest.raises(RuntimeError, match="boom in enter"):
        failing.result()
    assert fine.result().state == "b"
    assert before.state == "a" and before.version == 0  # the old value never changes
    assert machine.version == 1
    assert machine.data == {"entered": 1}
    stats = machine.stats()
    assert stats.messages == 2 and stats.failures == 1
    assert "boom in enter" in (stats.last_error or "")


def test_guard_veto_reaches_the_caller_with_its_reason(runtime: Runtime) -> None:
    flow = MachineBuilder("pending", events={"pay": "pending -> paid"})

    @flow.guard("paid")
    def amount_positive(ctx):
        if ctx.payload.get("amount", 0) <= 0:
            raise Reject("amount must be positive")

    machine = StateMachine(flow, runtime=runtime)
    with pytest.raises(TransitionRejected) as caught:
        machine.trigger("pay", {"amount": 0})
    assert (
        caught.value.guard == "test_guard_veto_reaches_the_caller_with_its_reason.<locals>."
        "amount_positive"
    )
    assert caught.value.reason == "amount must be positive"
    assert machine.trigger("pay", {"amount": 3}).state == "paid"


def test_machine_accepts_spec_builder_and_keywords(runtime: Runtime) -> None:
    flow = MachineBuilder("x", {"x": ["y"], "y": []})
    by_builder = StateMachine(flow, runtime=runtime)
    by_spec = StateMachine("x", flow.build(), runtime=runtime, history_limit=1)
    by_events = StateMachine("x", events={"go": "x -> y"}, runtime=runtime, data={"k": 1})
    assert by_builder.current_state == by_spec.current_state == by_events.current_state == "x"
    assert by_spec.spec.history_limit == 1
    assert by_events.trigger("go").state == "y"
    assert by_events.data == {"k": 1}
    with pytest.raises(ValueError, match="differs from the spec's initial state"):
        StateMachine("y", flow.build(), runtime=runtime)
    with pytest.raises(MachineDefinitionError, match="unknown target state 'nowhere'"):
        StateMachine("x", {"x": ["nowhere"]}, runtime=runtime)


def test_manager_update_modify_and_bad_input(runtime: Runtime) -> None:
    manager = StateManager({"connection_count": 0, "status": "idle"}, runtime=runtime)
    new = manager.update_state({"connection_count": 1, "status": "active"})
    assert new == {"connection_count": 1, "status": "active"}
    assert manager.get_state()["connection_count"] == 1
    assert manager.modify(lambda s: s.update(connection_count=s.connection_count + 1)) == {
        "connection_count": 2,
        "status": "active",
    }
    assert manager.version == 2
    with pytest.raises(UnencodableValueError, match=r"bad\.inner: object"):
        manager.update_state({"bad": {"inner": object()}})
    with pytest.raises(HookReturnError, match="return the new state"):
        manager.modify(lambda s: None)
    with pytest.raises(ZeroDivisionError):
        manager.modify(lambda s: 1 / 0)
    with pytest.raises(TypeError, match="must be a mapping"):
        manager.update_state(["not", "a", "mapping"])  # type: ignore[arg-type]
    assert manager.version == 2
    assert manager.get_state() == {"connection_count": 2, "status": "active"}
    with pytest.raises(TypeError, match="initial_state must be a mapping"):
        StateManager([1, 2], runtime=runtime)  # type: ignore[arg-type]


def test_config_manager_versions_rollback_and_diff(runtime: Runtime) -> None:
    config = ConfigManager({"log_level": "INFO", "timeout": 30}, runtime=runtime)
    assert config.get_version() == 0
    config.update_config({"log_level": "DEBUG", "timeout": 60}, {"author": "ops"})
    config.update_config({"cache": True})
    change = config.rollback(1, {"reason": "cache broke"})
    assert change.version == 3 and change.rollback_of == 1
    assert config.get_config() == {"log_level": "DEBUG", "timeout": 60}
    history = config.get_history()
    assert [c.version for c in history] == [0, 1, 2, 3]
    assert history[-1].version == config.get_version()
    assert history[1].metadata == {"author": "ops"}
    assert history[3].removed == ("cache",)
    assert dict(config.diff(0, 2).added) == {"cache": True}
    assert config.get_versioned(1).config == history[1].config
    with pytest.raises(UnknownVersionError, match="versions 0 to 3 are kept"):
        config.rollback(9)
    assert config.get_version() == 3


def test_stats_report_queue_depth_while_busy(runtime: Runtime) -> None:
    release = threading.Event()
    entered = threading.Event()
    manager = StateManager({"n": 0}, runtime=runtime, name="busy")

    def hold(state: ImmutableState) -> ImmutableState:
        entered.set()
        assert release.wait(10)
        return state.update(n=state.n + 1)

    first = manager.request_modify(hold)
    assert entered.wait(10)
    queued = [manager.request_update({"n": i}) for i in range(3)]
    assert runtime.stats()["busy"].queue_depth == 3
    # Readers never wait: the actor is busy, yet the published state is there.
    assert manager.get_state() == {"n": 0}
    release.set()
    first.result()
    for reply in queued:
        reply.result()
    stats = runtime.stats()["busy"]
    assert (stats.messages, stats.queue_depth, stats.version) == (4, 0, 4)


def test_each_write_sends_one_frozen_message_that_later_changes_by_the_caller_cannot_reach(
    runtime: Runtime,
) -> None:
    release = threading.Event()
    entered = threading.Event()
    manager = StateManager({"n": 0}, runtime=runtime)
    machine = StateMachine(MachineBuilder("draft", DOC), runtime=runtime)
    config = ConfigManager({"level": "INFO"}, runtime=runtime)

    def hold(state: ImmutableState) -> ImmutableState:
        entered.set()
        assert release.wait(10)
        return state

    held = manager.request_modify(hold)
    assert entered.wait(10)
    changes = {"n": 1, "tags": ["a"]}
    payload = {"by": ["ed"]}
    metadata = {"author": "ops"}
    update = manager.request_update(changes)
    move = machine.request_transition("review", payload)
    new_version = config.request_update({"level": "DEBUG"}, metadata)
    # The caller changes its own values after sending: the messages are frozen copies.
    changes["n"] = 99
    changes["tags"].append("b")  # type: ignore[attr-defined]
    payload["by"].append("al")
    metadata["author"] = "someone else"

    assert update.request == Update((ImmutableState(n=1, tags=["a"]),))
    assert move.request == Move(("review", None, ImmutableState(by=["ed"])))
    assert new_version.request == ConfigUpdate(
        (ImmutableState(level="DEBUG"), ImmutableState(author="ops"))
    )
    release.set()
    assert held.result(10) == {"n": 0}
    assert update.result(10) == {"n": 1, "tags": ["a"]}
    assert move.result(10).history[-1].payload_keys == ("by",)
    assert new_version.result(10).metadata == {"author": "ops"}
    assert config.rollback(0).rollback_of == 0


def test_an_async_after_commit_hook_runs_after_the_commit_and_before_the_reply(
    runtime: Runtime,
) -> None:
    flow = MachineBuilder("draft", DOC)
    seen: list[tuple[str, str]] = []
    machine: StateMachine

    @flow.after_commit("review")
    async def notify(ctx):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0)
        seen.append((ctx.target, machine.current_state))  # the commit is published

    @flow.after_commit("review")
    async def broken(ctx):  # type: ignore[no-untyped-def]
        raise RuntimeError("notifier down")

    machine = StateMachine(flow, runtime=runtime, name="doc")
    assert machine.transition("review").state == "review"
    assert seen == [("review", "review")]  # done before transition() returned
    report = runtime.errors()[-1]
    assert (report.actor, report.source) == ("doc", "after_commit")
    assert str(report.error) == "notifier down"
    assert machine.current_state == "review" and machine.version == 1
