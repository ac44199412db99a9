"""The awaited spelling of every blocking call (``atransition``, ``amodify``,
``astop``, ...): the same arguments, checks, answers and errors as the blocking
form; cancelled or timed out (``asyncio.timeout``) before the actor starts the
request, it is withdrawn and never runs.

Every test runs its coroutine with ``asyncio.run`` under ``asyncio.timeout``,
so none can hang. An actor is held busy, where a test needs one queued
request, by a request whose operation waits on a `threading.Event`.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest
from support import bump

from stateward.actors import (
    ActorStopped,
    ActorTimeout,
    ConfigManager,
    Reply,
    Runtime,
    SelfCallError,
    StateMachine,
    StateManager,
)
from stateward.core import (
    ArgumentTypeError,
    ArgumentValueError,
    ImmutableState,
    InvalidArgument,
    InvalidTransition,
    MachineBuilder,
    Reject,
    StatewardError,
    TransitionRejected,
    UnencodableValueError,
    UnknownVersionError,
)

#: A bound for every test's coroutine: a hang fails the test instead.
LIMIT_S = 10.0


def run(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run ``main()`` in a new event loop, bounded by `LIMIT_S`."""

    async def bounded() -> Any:
        async with asyncio.timeout(LIMIT_S):
            return await main()

    return asyncio.run(bounded())


class Held:
    """An actor kept busy by one request from a thread until `release`."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.gate = threading.Event()

    def hold_op(self, state: Any) -> Any:
        self.entered.set()
        assert self.gate.wait(LIMIT_S)
        return state

    def hook(self, ctx: Any) -> None:
        self.entered.set()
        assert self.gate.wait(LIMIT_S)

    def release(self) -> None:
        self.gate.set()


def held_machine(rt: Runtime, held: Held) -> StateMachine:
    """A machine whose move to ``held`` blocks until ``held`` is released;
    the event ``go`` moves from ``held`` to ``b``."""
    flow = MachineBuilder(
        "idle",
        {"idle": ["held", "b"], "held": ["b", "idle"], "b": ["idle"]},
        events={"go": "held -> b"},
    )
    flow.on_enter("held")(held.hook)
    return StateMachine(flow, runtime=rt)


def hold_machine(machine: StateMachine, held: Held) -> Reply[Any]:
    reply = machine.request_transition("held")
    assert held.entered.wait(LIMIT_S)
    return reply


def hold_manager(manager: StateManager, held: Held) -> Reply[Any]:
    reply = manager.request_modify(held.hold_op)
    assert held.entered.wait(LIMIT_S)
    return reply


def hold_config(config: ConfigManager, held: Held) -> Reply[Any]:
    """A config has no hook: it is kept busy by an observer of its first
    update, which runs before that update is answered."""

    def observer(old: Any, new: Any) -> None:
        if not held.entered.is_set():  # the first update only
            held.hook(None)

    config.add_observer(observer)
    reply = config.request_update({"held": True})
    assert held.entered.wait(LIMIT_S)
    return reply


# -- answers --------------------------------------------------------------------------


def test_each_awaited_call_returns_the_new_snapshot_state_or_change(runtime: Runtime) -> None:
    machine = StateMachine("a", {"a": ["b"], "b": ["a"]}, events={"go": "a -> b"}, runtime=runtime)
    manager = StateManager({"n": 0}, runtime=runtime)
    config = ConfigManager({"level": "INFO"}, runtime=runtime)

    async def main() -> None:
        moved = await machine.atransition("b", {"by": "test"})
        assert (moved.state, moved.version, moved.history[-1].payload_keys) == ("b", 1, ("by",))
        assert moved is machine.snapshot
        back = await machine.atransition_to("a")
        assert (back.state, back.version) == ("a", 2)
        fired = await machine.atrigger("go", {"n": 1})
        assert (fired.state, fired.version, fired.history[-1].event) == ("b", 3, "go")

        assert await manager.aupdate_state({"n": 5, "tag": "x"}) == {"n": 5, "tag": "x"}
        assert await manager.amodify(bump) == {"n": 6, "tag": "x"}

        change = await config.aupdate_config({"level": "DEBUG"}, {"by": "ops"})
        assert (change.version, dict(change.changes), change.metadata["by"]) == (
            1,
            {"level": "DEBUG"},
            "ops",
        )
        rolled = await config.arollback(0, {"why": "bad"})
        assert (rolled.version, rolled.config.level, rolled.rollback_of) == (2, "INFO", 0)

    run(main)
    assert (machine.current_state, machine.version) == ("b", 3)
    assert manager.get_state() == {"n": 6, "tag": "x"} and manager.version == 2
    assert config.get_version() == 2 and config.get_config().level == "INFO"


def test_amodify_runs_a_coroutine_function_in_the_actor(runtime: Runtime) -> None:
    manager = StateManager({"n": 0}, runtime=runtime)

    async def later_bump(state: ImmutableState) -> ImmutableState:
        await asyncio.sleep(0)
        return state.update(n=state.n + 1)

    async def main() -> list[int]:
        results = await asyncio.gather(*(manager.amodify(later_bump) for _ in range(20)))
        return sorted(r.n for r in results)

    assert run(main) == list(range(1, 21))
    assert manager.version == 20


def test_many_awaited_calls_at_once_apply_each_once(runtime: Runtime) -> None:
    managers = [StateManager({"n": 0}, runtime=runtime) for _ in range(10)]

    async def main() -> None:
        await asyncio.gather(*(m.amodify(bump) for m in managers for _ in range(50)))

    run(main)
    assert [m.get_state().n for m in managers] == [50] * 10
    assert [m.version for m in managers] == [50] * 10


# -- errors ---------------------------------------------------------------------------


def test_an_invalid_transition_and_a_guards_veto_come_out_of_the_await(
    runtime: Runtime,
) -> None:
    flow = MachineBuilder("a", {"a": ["b", "c"], "b": [], "c": []}, events={"go": "a -> c"})

    @flow.guard("c")
    def closed(ctx: Any) -> None:
        raise Reject("c is closed today")

    machine = StateMachine(flow, runtime=runtime)

    async def main() -> None:
        with pytest.raises(InvalidTransition) as invalid:
            await machine.atransition("nowhere")
        assert invalid.value.target == "nowhere" and invalid.value.allowed == ("b", "c")
        with pytest.raises(TransitionRejected, match="c is closed today") as vetoed:
            await machine.atransition("c")
        assert vetoed.value.guard.endswith("closed")
        with pytest.raises(TransitionRejected, match="c is closed today"):
            await machine.atrigger("go")
        with pytest.raises(InvalidTransition):
            await machine.atrigger("no-such-event")

    run(main)
    assert (machine.current_state, machine.version) == ("a", 0)
    # The blocking form raises the same.
    with pytest.raises(TransitionRejected, match="c is closed today"):
        machine.transition("c")


def test_an_error_of_the_operation_and_an_unknown_version_come_out_of_the_await(
    runtime: Runtime,
) -> None:
    manager = StateManager({"n": 0}, runtime=runtime)
    config = ConfigManager({"level": "INFO"}, runtime=runtime)

    def broken(state: ImmutableState) -> ImmutableState:
        raise ZeroDivisionError("no")

    async def main() -> None:
        with pytest.raises(ZeroDivisionError, match="no"):
            await manager.amodify(broken)
        with pytest.raises(UnknownVersionError):
            await config.arollback(7)

    run(main)
    assert manager.version == 0 and manager.alive
    assert config.get_version() == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda m, s, c: m.atransition("b"),
        lambda m, s, c: m.atransition_to("b"),
        lambda m, s, c: m.atrigger("go"),
        lambda m, s, c: s.aupdate_state({"n": 1}),
        lambda m, s, c: s.amodify(bump),
        lambda m, s, c: c.aupdate_config({"level": "DEBUG"}),
        lambda m, s, c: c.arollback(0),
    ],
    ids=[
        "atransition",
        "atransition_to",
        "atrigger",
        "aupdate_state",
        "amodify",
        "aupdate_config",
        "arollback",
    ],
)
def test_a_stopped_actor_raises_actor_stopped_from_the_await(
    runtime: Runtime, call: Callable[..., Awaitable[Any]]
) -> None:
    machine = StateMachine("a", {"a": ["b"], "b": []}, events={"go": "a -> b"}, runtime=runtime)
    manager = StateManager({"n": 0}, runtime=runtime)
    config = ConfigManager({"level": "INFO"}, runtime=runtime)
    for handle in (machine, manager, config):
        handle.stop()

    async def main() -> None:
        with pytest.raises(ActorStopped, match=r"has stopped \(stopped by stop\(\)\)"):
            await call(machine, manager, config)

    run(main)


#: (id, handle factory, the bad awaited call, the expected error type, the call it names)
BAD: list[tuple[str, str, Callable[[Any], Awaitable[Any]], type[Exception], str]] = [
    (
        "atransition-list",
        "machine",
        lambda m: m.atransition(["b"]),
        ArgumentTypeError,
        "atransition",
    ),
    (
        "atransition-int-data",
        "machine",
        lambda m: m.atransition("b", 5),
        ArgumentTypeError,
        "atransition",
    ),
    (
        "atransition-object",
        "machine",
        lambda m: m.atransition("b", {"x": object()}),
        UnencodableValueError,
        "",
    ),
    (
        "atransition-timeout-str",
        "machine",
        lambda m: m.atransition("b", timeout="5"),
        ArgumentTypeError,
        "atransition",
    ),
    (
        "atransition-timeout-nan",
        "machine",
        lambda m: m.atransition("b", timeout=math.nan),
        ArgumentValueError,
        "atransition",
    ),
    (
        "atransition_to-none",
        "machine",
        lambda m: m.atransition_to(None),
        ArgumentTypeError,
        "atransition",
    ),
    ("atrigger-list", "machine", lambda m: m.atrigger(["go"]), ArgumentTypeError, "atrigger"),
    ("atrigger-int-data", "machine", lambda m: m.atrigger("go", 5), ArgumentTypeError, "atrigger"),
    (
        "atrigger-timeout-neg",
        "machine",
        lambda m: m.atrigger("go", timeout=-1),
        ArgumentValueError,
        "atrigger",
    ),
    (
        "aupdate_state-int",
        "manager",
        lambda s: s.aupdate_state(5),
        ArgumentTypeError,
        "aupdate_state",
    ),
    (
        "aupdate_state-int-key",
        "manager",
        lambda s: s.aupdate_state({1: 2}),
        UnencodableValueError,
        "",
    ),
    (
        "aupdate_state-timeout",
        "manager",
        lambda s: s.aupdate_state({"n": 1}, timeout="x"),
        ArgumentTypeError,
        "aupdate_state",
    ),
    ("amodify-int", "manager", lambda s: s.amodify(5), ArgumentTypeError, "amodify"),
    (
        "amodify-timeout",
        "manager",
        lambda s: s.amodify(bump, timeout=math.inf),
        ArgumentValueError,
        "amodify",
    ),
    (
        "aupdate_config-int",
        "config",
        lambda c: c.aupdate_config(5),
        ArgumentTypeError,
        "aupdate_config",
    ),
    (
        "aupdate_config-metadata",
        "config",
        lambda c: c.aupdate_config({"a": 1}, 5),
        ArgumentTypeError,
        "aupdate_config",
    ),
    (
        "aupdate_config-timeout",
        "config",
        lambda c: c.aupdate_config({"a": 1}, timeout=[1]),
        ArgumentTypeError,
        "aupdate_config",
    ),
    ("arollback-str", "config", lambda c: c.arollback("0"), ArgumentTypeError, "arollback"),
    ("arollback-metadata", "config", lambda c: c.arollback(0, [1]), ArgumentTypeError, "arollback"),
    (
        "arollback-timeout",
        "config",
        lambda c: c.arollback(0, timeout=-3),
        ArgumentValueError,
        "arollback",
    ),
    ("astop-timeout-str", "manager", lambda s: s.astop(timeout="soon"), ArgumentTypeError, "astop"),
    ("astop-timeout-neg", "manager", lambda s: s.astop(timeout=-1), ArgumentValueError, "astop"),
]


def _made(kind: str, rt: Runtime) -> Any:
    if kind == "machine":
        return StateMachine("a", {"a": ["b"], "b": []}, events={"go": "a -> b"}, runtime=rt)
    if kind == "manager":
        return StateManager({"n": 0}, runtime=rt)
    config = ConfigManager({"level": "INFO"}, runtime=rt)
    config.update_config({"level": "DEBUG"})
    return config


def _state_of(handle: Any) -> Any:
    if isinstance(handle, ConfigManager):
        return handle.get_version(), handle.get_config()
    if isinstance(handle, StateMachine):
        return handle.version, handle.current_state
    return handle.version, handle.get_state()


@pytest.mark.parametrize(
    ("kind", "call", "error", "names"),
    [pytest.param(k, c, e, n, id=name) for name, k, c, e, n in BAD],
)
def test_a_bad_argument_is_refused_when_awaited_and_nothing_is_sent(
    runtime: Runtime,
    kind: str,
    call: Callable[[Any], Awaitable[Any]],
    error: type[Exception],
    names: str,
) -> None:
    handle = _made(kind, runtime)
    before = _state_of(handle)
    messages = handle.stats().messages

    async def main() -> BaseException:
        with pytest.raises(error) as caught:
            await call(handle)
        return caught.value

    refused = run(main)
    assert isinstance(refused, StatewardError) and isinstance(refused, (TypeError, ValueError))
    if names:
        assert isinstance(refused, InvalidArgument)
        assert refused.call == f"{type(handle).__name__}.{names}"
        assert "nothing was sent" in str(refused)
    assert handle.stats().messages == messages, "the bad call reached the actor"
    assert handle.alive and handle.restarts == 0
    assert _state_of(handle) == before


# -- timeouts and cancellation --------------------------------------------------------

#: Each awaited call, to send to a held actor (keywords such as ``timeout=`` passed on).
QUEUED: list[tuple[str, str, Callable[..., Awaitable[Any]]]] = [
    ("atransition", "machine", lambda m, **kw: m.atransition("b", **kw)),
    ("atransition_to", "machine", lambda m, **kw: m.atransition_to("b", **kw)),
    ("atrigger", "machine", lambda m, **kw: m.atrigger("go", **kw)),
    ("aupdate_state", "manager", lambda s, **kw: s.aupdate_state({"n": 100}, **kw)),
    ("amodify", "manager", lambda s, **kw: s.amodify(bump, **kw)),
    ("aupdate_config", "config", lambda c, **kw: c.aupdate_config({"level": "DEBUG"}, **kw)),
    ("arollback", "config", lambda c, **kw: c.arollback(0, **kw)),
]


def _held(kind: str, rt: Runtime, held: Held) -> tuple[Any, Reply[Any]]:
    if kind == "machine":
        machine = held_machine(rt, held)
        return machine, hold_machine(machine, held)
    if kind == "manager":
        manager = StateManager({"n": 0}, runtime=rt)
        return manager, hold_manager(manager, held)
    config = ConfigManager({"level": "INFO"}, runtime=rt)
    return config, hold_config(config, held)


@pytest.mark.parametrize(("kind", "call"), [pytest.param(k, c, id=n) for n, k, c in QUEUED])
def test_asyncio_timeout_withdraws_a_queued_awaited_call(
    runtime: Runtime, kind: str, call: Callable[..., Awaitable[Any]]
) -> None:
    held = Held()
    handle, holding = _held(kind, runtime, held)

    async def main() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await call(handle)

    try:
        run(main)
    finally:
        held.release()
    holding.result(timeout=LIMIT_S)
    handle.stop(timeout=LIMIT_S)  # handles what is queued: the withdrawn call is skipped
    assert _state_of(handle)[0] == 1, "the withdrawn call was applied"


@pytest.mark.parametrize(("kind", "call"), [pytest.param(k, c, id=n) for n, k, c in QUEUED])
def test_a_timeout_argument_withdraws_a_queued_awaited_call_with_actor_timeout(
    runtime: Runtime, kind: str, call: Callable[..., Awaitable[Any]]
) -> None:
    held = Held()
    handle, holding = _held(kind, runtime, held)

    async def main() -> ActorTimeout:
        with pytest.raises(ActorTimeout, match="will not run") as caught:
            await call(handle, timeout=0.05)
        return caught.value

    try:
        timed_out = run(main)
    finally:
        held.release()
    assert timed_out.started is False and timed_out.seconds == 0.05
    holding.result(timeout=LIMIT_S)
    handle.stop(timeout=LIMIT_S)
    assert _state_of(handle)[0] == 1, "the withdrawn call was applied"


def test_a_cancelled_queued_call_never_runs(runtime: Runtime) -> None:
    held = Held()
    manager = StateManager({"n": 0}, runtime=runtime)
    holding = hold_manager(manager, held)

    async def main() -> None:
        task = asyncio.create_task(manager.amodify(bump))
        await asyncio.sleep(0)  # the task sends its request, then awaits the answer
        assert manager.stats().queue_depth == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        run(main)
    finally:
        held.release()
    holding.result(timeout=LIMIT_S)
    assert manager.update_state({"after": True}) == {"n": 0, "after": True}
    assert manager.version == 2  # the holding request and the last one: no bump


def test_a_cancelled_call_the_actor_started_completes_and_commits(runtime: Runtime) -> None:
    """Cancelled while its operation runs, the request completes; the
    cancelled task just does not see the answer."""
    first, second = Held(), Held()
    manager = StateManager({"n": 0}, runtime=runtime)
    holding = hold_manager(manager, first)  # so that the awaited call is queued, then started

    def slow_bump(state: ImmutableState) -> ImmutableState:
        second.hold_op(state)
        return state.update(n=state.n + 1)

    async def main() -> None:
        task = asyncio.create_task(manager.amodify(slow_bump))
        await asyncio.sleep(0)
        first.release()
        assert second.entered.wait(LIMIT_S)  # it runs now, on the actor's worker
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        run(main)
    finally:
        first.release()
        second.release()
    holding.result(timeout=LIMIT_S)
    assert manager.update_state({"after": True}) == {"n": 1, "after": True}
    assert manager.version == 3


# -- astop ----------------------------------------------------------------------------


def test_astop_handles_what_is_queued_then_stops_without_blocking_the_loop(
    runtime: Runtime,
) -> None:
    """The held request is released by a coroutine on the awaiting loop: were
    the loop blocked by ``astop``, it could not run until the stop gave up."""
    held = Held()
    manager = StateManager({"n": 0}, runtime=runtime)
    holding = hold_manager(manager, held)
    queued = manager.request_modify(bump)

    async def release_soon() -> None:
        await asyncio.sleep(0)
        held.release()

    async def main() -> None:
        releaser = asyncio.create_task(release_soon())
        await manager.astop(timeout=LIMIT_S)
        await releaser

    try:
        run(main)
    finally:
        held.release()
    assert holding.result(timeout=0) == {"n": 0}
    assert queued.result(timeout=0) == {"n": 1}
    assert not manager.alive
    with pytest.raises(ActorStopped, match=r"stopped by astop\(\)"):
        manager.update_state({"n": 2})
    assert runtime.errors() == []


def test_astop_under_asyncio_timeout_gives_up_waiting_but_the_actor_stops(
    runtime: Runtime,
) -> None:
    held = Held()
    manager = StateManager({"n": 0}, runtime=runtime)
    holding = hold_manager(manager, held)

    async def main() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await manager.astop(timeout=LIMIT_S)
        assert manager.alive  # still handling the held request
        held.release()
        await manager.astop(timeout=LIMIT_S)

    try:
        run(main)
    finally:
        held.release()
    holding.result(timeout=LIMIT_S)
    assert not manager.alive


def test_astop_in_the_actors_own_async_hook_queues_the_stop(runtime: Runtime) -> None:
    flow = MachineBuilder("a", {"a": ["b"], "b": []})

    @flow.on_enter("b")
    async def last_step(ctx: Any) -> None:
        await machine.astop()  # cannot wait for itself: queued, as stop() is

    machine = StateMachine(flow, runtime=runtime, restart="temporary")
    assert machine.transition("b").state == "b"
    assert runtime.errors() == []
    with pytest.raises(ActorStopped):
        machine.transition("a")


def test_an_async_hook_awaits_another_actor_but_not_its_own(runtime: Runtime) -> None:
    other = StateManager({"n": 0}, runtime=runtime)
    flow = MachineBuilder("a", {"a": ["b"], "b": []})

    @flow.on_enter
    async def awaiting_inside(ctx: Any) -> dict[str, int]:
        new = await other.aupdate_state({"n": 2})
        return {"other_n": new.n}

    assert StateMachine(flow, runtime=runtime).transition("b").data == {"other_n": 2}

    own = MachineBuilder("a", {"a": ["b", "c"], "b": [], "c": []})

    @own.on_enter("b")
    async def to_itself(ctx: Any) -> None:
        await itself.atransition("c")

    itself = StateMachine(own, runtime=runtime)
    with pytest.raises(SelfCallError):
        itself.transition("b")
    assert itself.current_state == "a"

    blocking = MachineBuilder("a", {"a": ["b"], "b": []})

    @blocking.on_enter
    async def blocks_the_loop(ctx: Any) -> None:
        other.update_state({"n": 3})

    with pytest.raises(SelfCallError, match=r"Await the call's awaited form there \(atransition"):
        StateMachine(blocking, runtime=runtime).transition("b")
    assert other.get_state() == {"n": 2}
