"""A child its supervisor does not restart has left the supervision tree by the
time anyone can see it stopped.

Whoever is answered `ActorStopped` (a request queued behind the stop, or one
sent after it) and then looks at the tree (`Supervisor.children`, the
runtime's actors, `Runtime.stats`) must not find the stopped child there. The
tests look at the tree from a done-callback of the refused request: it runs
on the thread that answers it, at the moment it is answered, so it sees the
tree exactly as the earliest caller could, with no timing involved.

Each runs on every host: a thread per actor and the pool (``each_host``), a
dedicated worker, and a stop asked for from an async hook (awaited on the
runtime's event loop).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
from support import Workers, bump

from stateward.actors import (
    ActorCrashed,
    ActorStopped,
    ManualClock,
    MemoryStore,
    Reply,
    Runtime,
    ShutdownReport,
    StateManager,
    Supervisor,
)
from stateward.actors._lifecycle import Lifecycle
from stateward.core import ImmutableState

pytestmark = pytest.mark.usefixtures("each_host")

WAIT = 10.0


@pytest.fixture
def rt() -> Iterator[Runtime]:
    runtime = Runtime("tree", default_timeout=WAIT, timer=ManualClock())
    yield runtime
    runtime.shutdown(timeout=WAIT)


class Seen(NamedTuple):
    """The tree as it was when a request was answered."""

    error: type[BaseException] | None
    children: list[str]
    in_runtime: bool
    in_stats: bool


def watch(reply: Reply[Any], sup: Supervisor, rt: Runtime, name: str) -> list[Seen]:
    """What the tree looked like at the moment ``reply`` was answered."""
    seen: list[Seen] = []

    def look(done: Reply[Any]) -> None:
        error = done.exception(0)
        seen.append(
            Seen(
                None if error is None else type(error), sup.children, name in rt, name in rt.stats()
            )
        )

    reply.add_done_callback(look)
    return seen


class Gate:
    """Holds an actor's turn (in a plain or an async operation) until the test
    opens it; `entered` once the operation has got there."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self._open = threading.Event()

    def wait(self) -> None:
        self.entered.set()
        assert self._open.wait(WAIT), "the test never opened the gate"

    async def await_(self) -> None:
        self.entered.set()
        assert await asyncio.to_thread(self._open.wait, WAIT), "the test never opened the gate"

    def open(self) -> None:
        assert self.entered.wait(WAIT), "the actor never got to the gate"
        self._open.set()


@pytest.mark.parametrize("restart", ["temporary", "transient"])
@pytest.mark.parametrize("how", ["thread-or-pool", "dedicated", "async-hook"])
def test_a_child_that_stops_on_its_own_has_left_the_tree_when_a_caller_sees_it_stopped(
    rt: Runtime, restart: str, how: str
) -> None:
    sup = Supervisor("s", runtime=rt)
    gate = Gate()

    def leave(state: ImmutableState) -> ImmutableState:
        child.stop()  # from its own turn: it stops on its own once this returns
        gate.wait()
        return state

    async def leave_async(state: ImmutableState) -> ImmutableState:
        await child.astop()
        await gate.await_()
        return state

    child = StateManager(
        {"n": 0},
        name="child",
        runtime=rt,
        supervisor=sup,
        restart=restart,
        dedicated=how == "dedicated",
    )
    leaving = child.request_modify(leave_async if how == "async-hook" else leave)
    assert gate.entered.wait(WAIT)
    behind = child.request_modify(bump)  # queued behind its own stop
    seen = watch(behind, sup, rt, "child")
    gate.open()
    assert leaving.result(WAIT).n == 0
    with pytest.raises(ActorStopped) as stopped:
        behind.result(WAIT)
    assert seen == [Seen(ActorStopped, [], False, False)]
    assert f"stopped on its own and is a {restart} child" in str(stopped.value)
    with pytest.raises(ActorStopped):
        child.modify(bump)
    assert sup.children == [] and "child" not in rt and not child.alive
    assert child.restarts == 0


@pytest.mark.parametrize("how", ["thread-or-pool", "dedicated"])
def test_a_temporary_child_that_crashes_has_left_the_tree_when_a_caller_sees_it_stopped(
    rt: Runtime, how: str
) -> None:
    sup = Supervisor("s", runtime=rt)
    gate = Gate()

    def crash(state: ImmutableState) -> ImmutableState:
        gate.wait()
        raise RuntimeError("boom")

    child = StateManager(
        {"n": 0},
        name="child",
        runtime=rt,
        supervisor=sup,
        restart="temporary",
        on_error="restart",
        dedicated=how == "dedicated",
    )
    crashing = child.request_modify(crash)
    assert gate.entered.wait(WAIT)
    behind = child.request_modify(bump)
    seen = watch(behind, sup, rt, "child")
    gate.open()
    with pytest.raises(ActorCrashed):
        crashing.result(WAIT)
    with pytest.raises(ActorStopped):
        behind.result(WAIT)
    assert seen == [Seen(ActorStopped, [], False, False)]
    assert sup.children == [] and "child" not in rt and not child.alive


def test_a_temporary_sibling_dropped_by_one_for_all_has_left_the_tree_when_a_caller_sees_it_stopped(
    rt: Runtime,
) -> None:
    sup = Supervisor("s", strategy="one_for_all", runtime=rt)
    crasher = StateManager({"n": 0}, name="crasher", runtime=rt, supervisor=sup, on_error="restart")
    sibling = StateManager(
        {"n": 0}, name="sibling", runtime=rt, supervisor=sup, restart="temporary"
    )
    gate = Gate()

    def hold(state: ImmutableState) -> ImmutableState:
        gate.wait()
        return state

    held = sibling.request_modify(hold)
    assert gate.entered.wait(WAIT)
    behind = sibling.request_modify(bump)
    seen = watch(behind, sup, rt, "sibling")

    def boom(state: ImmutableState) -> ImmutableState:
        raise RuntimeError("boom")

    with pytest.raises(ActorCrashed):
        crasher.modify(boom)
    gate.open()
    with pytest.raises(ActorStopped):
        behind.result(WAIT)
    assert held.result(WAIT).n == 0  # the one it was running finishes
    assert seen == [Seen(ActorStopped, ["crasher"], False, False)]
    assert sup.children == ["crasher"] and "sibling" not in rt
    assert crasher.modify(bump).n == 1 and crasher.restarts == 1


class StopAsked:
    """Tells when a stop from outside has been asked of an actor (its stop
    request queued behind what it is running), by wrapping
    `Lifecycle.request_stop`, which both `Supervisor.stop` and
    `ActorHandle.stop` go through."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.asked = threading.Event()
        original = Lifecycle.request_stop

        def request_stop(lifecycle: Lifecycle, *args: Any, **kwargs: Any) -> None:
            original(lifecycle, *args, **kwargs)
            self.asked.set()

        monkeypatch.setattr(Lifecycle, "request_stop", request_stop)

    def wait(self) -> None:
        assert self.asked.wait(WAIT), "no stop was asked"


@pytest.mark.parametrize("stopped_by", ["supervisor", "handle"])
@pytest.mark.parametrize("restart", ["permanent", "transient", "temporary"])
@pytest.mark.parametrize("dedicated", [False, True])
def test_a_child_that_stops_on_its_own_while_stopped_from_outside_stops_for_good(
    monkeypatch: pytest.MonkeyPatch, stopped_by: str, restart: str, dedicated: bool
) -> None:
    """Its supervisor does not restart it (it is stopping, or the child was
    taken from it by ``handle.stop()``): the stop from outside completes at
    once (a permanent child's waited its whole timeout), and the actor's name
    is given back to the store (it was kept)."""
    store = MemoryStore()
    stop_asked = StopAsked(monkeypatch)
    workers = Workers()
    with Runtime("permanent", store=store, default_timeout=WAIT, timer=ManualClock()) as rt:
        sup = Supervisor("s", runtime=rt)
        gate = Gate()

        def leave(state: ImmutableState) -> ImmutableState:
            child.stop()  # from its own turn: it stops on its own once this returns
            gate.wait()
            return state.update(n=1)

        child = StateManager(
            {"n": 0},
            name="child",
            runtime=rt,
            supervisor=sup,
            restart=restart,
            dedicated=dedicated,
        )
        leaving = child.request_modify(leave)
        assert gate.entered.wait(WAIT)
        reports: list[ShutdownReport] = []
        if stopped_by == "supervisor":
            workers.start(lambda: reports.append(sup.stop(timeout=2.0)))
        else:
            workers.start(lambda: child.stop(timeout=2.0))
        stop_asked.wait()  # its stop request is queued behind its own
        gate.open()
        assert leaving.result(WAIT).n == 1
        workers.join(WAIT)
        if stopped_by == "supervisor":
            assert reports[0].clean, reports[0].describe()
        assert not child.alive and child.restarts == 0
        with pytest.raises(ActorStopped):
            child.modify(bump)
        assert sup.children == [] and "child" not in rt
        # The name is free again: another runtime on the same store takes it.
        with Runtime("next", store=store, default_timeout=WAIT) as other:
            assert StateManager({"n": 0}, name="child", runtime=other).get_state().n == 1
