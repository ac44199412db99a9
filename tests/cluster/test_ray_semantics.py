"""What holds on a `RayRuntime` only, or differently: options that cannot
travel, commits made through another client reaching this client's
observers and waits, and context values travelling to the shards.

One local Ray cluster and one client with 2 shards for the module (see
``ray_cluster``); a test that needs a second client makes one on the same
store (it finds the same shards) and shuts it down.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import behaviour_specs as specs
import pytest

from stateward.actors import Runtime, StateMachine, StateManager, Supervisor
from stateward.actors.stores import SQLiteStore
from stateward.core import DefinitionMismatch

ray = pytest.importorskip("ray")

from stateward.actors.ray import (  # noqa: E402
    NotOnRay,
    NotPicklable,
    NotPropagable,
    RayRuntime,
    ShardUnavailable,
    _follow,
    propagate_context,
)
from stateward.actors.ray._paths import shard_of  # noqa: E402

WAIT = 20.0


@pytest.fixture(scope="module")
def runtime(ray_client: RayRuntime) -> RayRuntime:
    """The module's client (conftest's ``ray_client``)."""
    return ray_client


@pytest.fixture
def second(runtime: RayRuntime, store_path: Path) -> Iterator[RayRuntime]:
    """Another client of the same shards."""
    other = RayRuntime(SQLiteStore(store_path), shards=2)
    yield other
    other.shutdown()


def test_a_supervisor_cannot_travel_and_nothing_is_created(runtime: RayRuntime) -> None:
    with Runtime("local") as local:
        supervisor = Supervisor("local-tree", runtime=local)
        with pytest.raises(NotOnRay, match="restart= and on_error=") as refused:
            StateManager({}, name="supervised", runtime=runtime, supervisor=supervisor)
    assert isinstance(refused.value, ValueError)
    assert StateManager({"n": 1}, name="supervised", runtime=runtime).version == 0


def test_an_on_start_that_cannot_pickle_is_refused_before_sending(runtime: RayRuntime) -> None:
    lock = threading.Lock()
    with pytest.raises(NotPicklable, match="on_start"):
        StateManager({}, name="unstartable", runtime=runtime, on_start=lambda view: lock)
    assert StateManager({}, name="unstartable", runtime=runtime).version == 0


def test_another_client_with_other_options_gets_a_definition_mismatch(
    runtime: RayRuntime, second: RayRuntime
) -> None:
    StateMachine(specs.WAITER, name="timed", runtime=runtime, deadline=5)
    with pytest.raises(DefinitionMismatch, match="deadline"):
        StateMachine(specs.WAITER, name="timed", runtime=second, deadline=9)


def test_commits_through_another_client_reach_observers_in_commit_order(
    runtime: RayRuntime, second: RayRuntime
) -> None:
    here = StateManager({"n": 0}, name="shared-counter", runtime=runtime)
    seen: list[tuple[int, int]] = []
    ten = threading.Event()

    def observer(old: Any, new: Any) -> None:
        seen.append((old["n"], new["n"]))
        if len(seen) == 10:
            ten.set()

    here.add_observer(observer)
    there = StateManager({"n": 0}, name="shared-counter", runtime=second)
    replies = [there.request_modify(functools.partial(specs.add, "n", 1)) for _ in range(10)]
    for reply in replies:
        reply.result(WAIT)
    assert ten.wait(WAIT), seen
    assert seen == [(i, i + 1) for i in range(10)]  # each commit once, in order
    assert here.get_state()["n"] == 10  # published here too, with no request from here


def test_an_async_observer_runs_on_the_clients_event_loop(
    runtime: RayRuntime, second: RayRuntime
) -> None:
    manager = StateManager({"n": 0}, name="async-observed", runtime=second)
    seen: list[int] = []
    done = threading.Event()

    async def observer(old: Any, new: Any) -> None:
        await asyncio.sleep(0)  # a coroutine: awaited to its end on the client
        seen.append(new["n"])
        done.set()

    manager.add_observer(observer)
    StateManager({"n": 0}, name="async-observed", runtime=runtime).update_state({"n": 7})
    assert done.wait(WAIT)
    assert seen == [7]


def test_an_observer_may_wait_for_an_answer_its_shard_defers(runtime: RayRuntime) -> None:
    """The observer's call runs past a batch's patience (its guard waits for
    another actor), so its answer comes through a later poll: the observer
    runs on a thread of its own, not on the one that polls."""
    names = [f"deferred-{i}" for i in range(40)]
    on_one_shard = [n for n in names if shard_of(n, 2) == shard_of(names[0], 2)]
    waiter_name, signal_name, probe_name = on_one_shard[:3]
    waiter = StateMachine(specs.WAITER, name=waiter_name, runtime=runtime)
    signal = StateMachine(specs.SIGNAL, name=signal_name, runtime=runtime)
    probe = StateManager({}, name=probe_name, runtime=runtime)
    trigger = StateManager({"go": False}, name="deferred-trigger", runtime=runtime)
    outcome: list[Any] = []
    finished = threading.Event()

    def observer(old: Any, new: Any) -> None:
        try:
            outcome.append(waiter.transition("done", {"for": waiter_name}, timeout=WAIT).state)
        except BaseException as exc:
            outcome.append(exc)
        finished.set()

    trigger.add_observer(observer)
    trigger.update_state({"go": True})
    for _ in range(400):  # bounded: until the guard waits on the shard (a round trip each)
        if probe.modify(functools.partial(specs.is_waiting, waiter_name))["waiting"]:
            break
    else:
        pytest.fail("the observer's request never reached its guard")
    signal.transition("on", {"key": waiter_name}, timeout=WAIT)
    assert finished.wait(WAIT)
    assert outcome == ["done"]


def test_a_deferred_request_past_the_limit_is_answered_shard_unavailable(
    runtime: RayRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_follow, "DEFERRED_LIMIT", 1.0)
    names = [f"expired-{i}" for i in range(40)]
    waiter_name, signal_name = [n for n in names if shard_of(n, 2) == shard_of(names[0], 2)][:2]
    waiter = StateMachine(specs.WAITER, name=waiter_name, runtime=runtime)
    with pytest.raises(ShardUnavailable, match=r"within 1 s of its call"):
        waiter.transition("done", {"for": waiter_name}, timeout=WAIT)
    # Its guard still waits on the shard: let it pass; the move commits there.
    StateMachine(specs.SIGNAL, name=signal_name, runtime=runtime).transition(
        "on", {"key": waiter_name}
    )
    assert waiter.wait_until("done", timeout=WAIT).version == 1


def test_wait_until_and_changes_see_another_clients_commits(
    runtime: RayRuntime, second: RayRuntime
) -> None:
    here = StateMachine(specs.ORDERS, name="watched-order", runtime=runtime)
    there = StateMachine(specs.ORDERS, name="watched-order", runtime=second)
    with here.changes(timeout=WAIT) as stream:
        there.request_transition("paid", {"amount": 1})
        assert here.wait_until("paid", timeout=WAIT).version == 1
        assert next(stream).state == "paid"
        there.request_transition("shipped")

        async def awaited() -> int:
            found = await here.await_until("shipped", timeout=WAIT)
            return int(found.version)

        assert asyncio.run(awaited()) == 2
        assert next(stream).state == "shipped"
    assert here.current_state == "shipped"


def test_stop_ends_this_clients_waits_and_not_the_actor(
    runtime: RayRuntime, second: RayRuntime
) -> None:
    here = StateMachine(specs.ORDERS, name="stopped-here", runtime=runtime)
    stream = here.changes(timeout=WAIT)
    here.stop()
    assert list(stream) == []  # the stream ends
    there = StateMachine(specs.ORDERS, name="stopped-here", runtime=second)
    assert there.transition("paid", {"amount": 1}).version == 1  # the actor runs on


def test_only_registered_context_values_travel(runtime: RayRuntime) -> None:
    propagate_context(specs.TENANT)
    assert propagate_context(specs.TENANT) is specs.TENANT  # once is enough
    manager = StateManager({}, name="context-probe", runtime=runtime)
    token = specs.TENANT.set("acme")
    local = specs.LOCAL_ONLY.set("here")
    try:
        seen = manager.modify(specs.tenant_of)
        assert (seen["tenant"], seen["local"]) == ("acme", "absent")  # LOCAL_ONLY stayed here
    finally:
        specs.LOCAL_ONLY.reset(local)
        specs.TENANT.reset(token)


def test_a_context_variable_without_an_import_path_or_value_that_cannot_pickle_is_refused(
    runtime: RayRuntime,
) -> None:
    with pytest.raises(NotPropagable, match="module level"):
        propagate_context(contextvars.ContextVar("made_in_a_function"))
    with pytest.raises(NotPropagable, match=r"takes a contextvars\.ContextVar"):
        propagate_context("tenant")  # type: ignore[arg-type]
    propagate_context(specs.TENANT)
    manager = StateManager({}, name="unpicklable-context", runtime=runtime)
    token = specs.TENANT.set(threading.Lock())  # type: ignore[arg-type]
    try:
        with pytest.raises(NotPicklable, match=r"behaviour_specs\.TENANT, registered"):
            manager.update_state({"x": 1})
    finally:
        specs.TENANT.reset(token)
    assert manager.version == 0 and manager.update_state({"x": 1})["x"] == 1


def test_the_trace_context_travels_when_opentelemetry_is_installed(
    runtime: RayRuntime,
) -> None:
    trace = pytest.importorskip("opentelemetry.trace")
    manager = StateManager({}, name="traced", runtime=runtime)
    span = trace.SpanContext(
        0x1234, 0x99, is_remote=False, trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED)
    )
    with trace.use_span(trace.NonRecordingSpan(span)):
        seen = manager.modify(
            lambda state: {**state, "trace": trace.get_current_span().get_span_context().trace_id}
        )
    assert seen["trace"] == 0x1234
