"""The behaviour suite of the handles: the same assertions on every host.

Each test runs on a thread host (``Runtime(workers=0)``), a worker pool
(``Runtime()``) and Ray shards (`RayRuntime`, 2 shards on one local
cluster for the module, started only for the ``ray`` runs and skipped when
Ray is not installed). Actors are made from `behaviour_specs` (importable by
path on the shards); each test names its actors after itself and the host.
Where Ray answers later than a local host (observers, which run on the
client after the shard's commit), the assertions wait, bounded, for what a
local host does at once.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import behaviour_specs as specs
import pytest
from ray_cluster import local_cluster

from stateward.actors import (
    ActorCrashed,
    ActorStopped,
    ConfigManager,
    Runtime,
    StateMachine,
    StateManager,
)
from stateward.actors.stores import SQLiteStore
from stateward.core import ArgumentTypeError, InvalidTransition, TransitionRejected

HOSTS = ["thread", "pool", "ray"]
#: Bounded waits (the machine is loaded; Ray answers take a round trip).
WAIT = 20.0


@pytest.fixture(scope="module", params=HOSTS)
def host(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Any]]:
    """The host's name and, for ``ray``, the module's `RayRuntime`."""
    if request.param != "ray":
        yield request.param, None
        return
    pytest.importorskip("ray")
    from stateward.actors.ray import RayRuntime, propagate_context

    propagate_context(specs.TENANT)
    with local_cluster(tmp_path_factory.mktemp("ray")):
        store = SQLiteStore(tmp_path_factory.mktemp("store") / "suite.db")
        runtime = RayRuntime(store, shards=2)
        try:
            yield "ray", runtime
        finally:
            runtime.shutdown(stop_shards=True)


@pytest.fixture
def runtime(host: tuple[str, Any], tmp_path: Path) -> Iterator[Any]:
    kind, ray_runtime = host
    if ray_runtime is not None:
        yield ray_runtime
        return
    workers = 0 if kind == "thread" else None
    local = Runtime(f"suite-{kind}", store=SQLiteStore(tmp_path / "s.db"), workers=workers)
    yield local
    local.shutdown()


@pytest.fixture
def name(request: pytest.FixtureRequest, host: tuple[str, Any]) -> Callable[[str], str]:
    """``name("x")``: an actor name of this test and host alone."""
    prefix = f"{request.node.originalname}-{host[0]}"
    return lambda suffix: f"{prefix}-{suffix}"


def same_shard(runtime: Any, name: Callable[[str], str], count: int) -> list[str]:
    """``count`` names that live on one shard (any names on a local host)."""
    shards = getattr(runtime, "shards", None)
    if shards is None:
        return [name(str(i)) for i in range(count)]
    from stateward.actors.ray._paths import shard_of

    found = [name(str(i)) for i in range(200)]
    first = shard_of(found[0], shards)
    return [n for n in found if shard_of(n, shards) == first][:count]


def test_a_transition_answers_in_every_form(runtime: Any, name: Any) -> None:
    order = StateMachine(specs.ORDERS, name=name("o"), runtime=runtime)
    assert order.current_state == "pending" and order.can_transition("paid")
    snapshot = order.transition("paid", {"amount": 5})
    assert (snapshot.state, snapshot.version) == ("paid", 1)
    assert order.current_state == "paid"
    shipped = order.trigger("ship", {"carrier": "boat"})
    assert (shipped.state, shipped.data["carrier"]) == ("shipped", "boat")
    other = StateMachine(specs.ORDERS, name=name("p"), runtime=runtime)
    assert other.request_transition("cancelled").result(WAIT).state == "cancelled"

    async def awaited() -> tuple[str, str]:
        third = StateMachine(specs.ORDERS, name=name("q"), runtime=runtime)
        first = await third.atransition("paid", {"amount": 1})
        second = await third.request_transition("shipped")
        return first.state, second.state

    assert asyncio.run(awaited()) == ("paid", "shipped")


def test_a_guard_vetoes_and_an_invalid_transition_names_its_parts(runtime: Any, name: Any) -> None:
    order = StateMachine(specs.ORDERS, name=name("o"), runtime=runtime)
    with pytest.raises(TransitionRejected) as vetoed:
        order.transition("paid", {"amount": 0})
    assert "amount_positive" in vetoed.value.guard
    with pytest.raises(InvalidTransition) as invalid:
        order.transition("shipped")
    error = invalid.value
    assert (error.state, error.target, set(error.allowed)) == (
        "pending",
        "shipped",
        {"paid", "cancelled"},
    )
    assert isinstance(error, ValueError)
    assert (order.current_state, order.version) == ("pending", 0)


def test_history_and_version_follow_each_commit(runtime: Any, name: Any) -> None:
    order = StateMachine(specs.ORDERS, name=name("o"), runtime=runtime)
    order.transition("paid", {"amount": 2})
    order.trigger("ship")
    moves = [(r.from_state, r.to_state, r.event, r.version) for r in order.history]
    assert moves == [("pending", "paid", None, 1), ("paid", "shipped", "ship", 2)]
    assert order.version == 2 and order.snapshot.version == 2


def test_a_hook_that_raises_rolls_back(runtime: Any, name: Any) -> None:
    order = StateMachine(specs.ORDERS, name=name("o"), runtime=runtime)
    with pytest.raises(RuntimeError, match="the cancel exploded"):
        order.transition("cancelled", {"explode": True})
    assert (order.current_state, order.version, order.history) == ("pending", 0, [])
    assert order.transition("cancelled").version == 1  # it lives on


def test_a_state_manager_updates_and_modifies(runtime: Any, name: Any) -> None:
    manager = StateManager({"a": 1}, name=name("m"), runtime=runtime)
    assert manager.update_state({"b": 2})["b"] == 2
    assert manager.modify(functools.partial(specs.add, "a", 2))["a"] == 3
    with pytest.raises(ValueError, match="modify exploded"):
        manager.modify(specs.explode)
    assert manager.get_state().to_dict() == {"a": 3, "b": 2}
    assert manager.version == 2

    async def awaited() -> int:
        state = await manager.amodify(functools.partial(specs.add, "a", 10))
        return int(state["a"])

    assert asyncio.run(awaited()) == 13


def test_a_config_manager_keeps_versions_history_rollback_and_diff(runtime: Any, name: Any) -> None:
    config = ConfigManager({"limit": 1, "mode": "a"}, name=name("c"), runtime=runtime)
    change = config.update_config({"limit": 2}, metadata={"by": "suite"})
    assert (change.version, change.changes.to_dict()) == (1, {"limit": 2})
    assert config.get_config().to_dict() == {"limit": 2, "mode": "a"}
    assert config.get_version() == 1
    assert [c.version for c in config.get_history()] == [0, 1]
    assert config.get_history()[1].metadata["by"] == "suite"
    back = config.rollback(0)
    assert (back.version, back.rollback_of, back.config["limit"]) == (2, 0, 1)
    diff = config.diff(0, 1)
    assert (dict(diff.changed), dict(diff.added), dict(diff.removed)) == ({"limit": (1, 2)}, {}, {})

    async def awaited() -> int:
        updated = await config.aupdate_config({"mode": "b"})
        return int(updated.version)

    assert asyncio.run(awaited()) == 3
    assert config.get_config()["mode"] == "b"


def test_observers_see_each_commit_in_order(runtime: Any, name: Any) -> None:
    manager = StateManager({"n": 0}, name=name("m"), runtime=runtime)
    seen: list[tuple[int, int]] = []
    three = threading.Event()

    def observer(old: Any, new: Any) -> None:
        seen.append((old["n"], new["n"]))
        if len(seen) == 3:
            three.set()

    manager.add_observer(observer)
    for _ in range(3):
        manager.modify(functools.partial(specs.add, "n", 1))
    assert three.wait(WAIT), seen
    assert seen == [(0, 1), (1, 2), (2, 3)]
    manager.remove_observer(observer)
    manager.modify(functools.partial(specs.add, "n", 1))
    assert manager.wait_until(lambda state: state["n"] == 4, timeout=WAIT)["n"] == 4
    assert len(seen) == 3


def test_an_observer_that_raises_is_reported_and_the_commit_stands(runtime: Any, name: Any) -> None:
    manager = StateManager({"n": 0}, name=name("m"), runtime=runtime)
    later = threading.Event()

    def broken(old: Any, new: Any) -> None:
        raise RuntimeError("observer broke")

    manager.add_observer(broken)
    manager.add_observer(lambda old, new: later.set())
    assert manager.update_state({"n": 1})["n"] == 1  # the caller sees no error
    assert later.wait(WAIT)  # the next observer still ran
    reports = [r for r in runtime.errors() if r.actor == manager.name]
    assert [(r.source, str(r.error)) for r in reports] == [("observer", "observer broke")]
    assert manager.get_state()["n"] == 1


def test_wait_until_and_changes_see_the_commits(runtime: Any, name: Any) -> None:
    order = StateMachine(specs.ORDERS, name=name("o"), runtime=runtime)
    with order.changes(timeout=WAIT) as stream:
        order.request_transition("paid", {"amount": 3})
        assert order.wait_until("paid", timeout=WAIT).state == "paid"
        order.request_transition("shipped")

        async def awaited() -> str:
            snapshot = await order.await_until(lambda s: s.state == "shipped", timeout=WAIT)
            return str(snapshot.state)

        assert asyncio.run(awaited()) == "shipped"
        states = []
        for snapshot in stream:
            states.append(snapshot.state)
            if snapshot.state == "shipped":
                break
        assert states[-1] == "shipped" and len(states) + stream.missed_total == 2


def test_stop_ends_the_handle_and_its_waits(runtime: Any, name: Any) -> None:
    order = StateMachine(specs.ORDERS, name=name("o"), runtime=runtime)
    order.transition("paid", {"amount": 1})
    order.stop()
    assert not order.alive
    with pytest.raises(ActorStopped):
        order.transition("shipped")
    with pytest.raises(ActorStopped):
        order.wait_until("shipped", timeout=WAIT)


def test_bad_input_is_refused_and_the_actor_lives_on(runtime: Any, name: Any) -> None:
    order = StateMachine(specs.ORDERS, name=name("o"), runtime=runtime)
    with pytest.raises(ArgumentTypeError):
        order.transition(123)  # type: ignore[arg-type]
    with pytest.raises(InvalidTransition):
        order.transition("nowhere")
    manager = StateManager({}, name=name("m"), runtime=runtime)
    with pytest.raises(TypeError, match="object"):
        manager.update_state({"x": object()})
    assert manager.version == 0 and manager.update_state({"x": 1})["x"] == 1
    assert order.transition("paid", {"amount": 1}).state == "paid"


def test_restart_on_error_and_on_start_hold(runtime: Any, name: Any) -> None:
    """``on_error="restart"`` restarts the actor after a failed request, and
    ``on_start`` runs at each start (where the actor runs)."""
    key = name("m")
    manager = StateManager(
        {},
        name=key,
        runtime=runtime,
        on_error="restart",
        on_start=functools.partial(specs.count_start, key),
    )
    assert manager.modify(functools.partial(specs.starts_of, key))["starts"] == 1
    with pytest.raises(ActorCrashed, match="modify exploded"):
        manager.modify(specs.explode)
    assert manager.modify(functools.partial(specs.starts_of, key))["starts"] == 2


def test_a_deadline_fences_a_request_that_runs_past_it(runtime: Any, name: Any) -> None:
    order = StateMachine(specs.WAITER, name=name("w"), runtime=runtime, deadline=0.5)
    with pytest.raises(ActorCrashed, match=r"deadline of 0\.5 s") as crashed:
        order.transition("done", {"for": name("never")}, timeout=WAIT)
    assert "DeadlineExceeded" in str(crashed.value)
    assert order.current_state == "idle"


def test_a_registered_context_value_reaches_the_requests_code(runtime: Any, name: Any) -> None:
    manager = StateManager({}, name=name("m"), runtime=runtime)
    order = StateMachine(specs.ORDERS, name=name("o"), runtime=runtime)
    order.transition("paid", {"amount": 1})
    token = specs.TENANT.set("acme")
    try:
        assert manager.modify(specs.tenant_of)["tenant"] == "acme"
        assert order.trigger("ship").data["tenant"] == "acme"  # the event's effect saw it
    finally:
        specs.TENANT.reset(token)
    assert manager.modify(specs.tenant_of)["tenant"] == "unset"  # and it did not stay there


def test_an_async_hook_does_not_stall_the_other_actors_of_its_shard(
    runtime: Any, name: Any
) -> None:
    waiter_name, signal_name, other_name = same_shard(runtime, name, 3)
    waiter = StateMachine(specs.WAITER, name=waiter_name, runtime=runtime)
    signal = StateMachine(specs.SIGNAL, name=signal_name, runtime=runtime)
    other = StateManager({}, name=other_name, runtime=runtime)
    waiting = waiter.request_transition("done", {"for": waiter_name})
    # The guard waits; the other actors of its shard are answered meanwhile.
    assert other.update_state({"x": 1}, timeout=10)["x"] == 1
    assert not waiting.done()
    assert signal.transition("on", {"key": waiter_name}, timeout=10).state == "on"
    assert waiting.result(WAIT).state == "done"
