"""An async hook suspends its cell's turn without holding a worker.

While a machine's coroutine hook (or guard, or an async ``modify``) awaits,
its next messages wait, in order, but the pool's workers serve other cells:
with ``Runtime(workers=1)`` one machine awaiting an event does not stop any
other. Deadlines, shutdowns, crashes, queued stops and inline calls behave
as they do for a hook that runs to completion. The tests that do not need a
single shared worker run on each host (``each_host``): a thread per actor
(``workers=0``: its thread awaits the hook) and the pool.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from support import TOGGLE

from stateward.actors import (
    ActorCrashed,
    ActorStopped,
    DeadlineExceeded,
    Runtime,
    StateMachine,
    StateManager,
    Supervisor,
)
from stateward.actors._clock import ManualClock
from stateward.actors._lifecycle import stop_request
from stateward.core import ImmutableState, MachineBuilder

WAIT = 10.0


class Gate:
    """An `asyncio.Event` a hook awaits on the runtime's loop, which the test
    opens from its own thread; it records whether the wait was cancelled."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.cancelled = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    async def wait(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self.entered.set()
        try:
            await self._event.wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    def open(self) -> None:
        assert self.entered.wait(WAIT), "no hook is waiting at the gate"
        assert self._loop is not None and self._event is not None
        self._loop.call_soon_threadsafe(self._event.set)


class Log:
    """What the hooks did, in order, and on which thread (they run one at a time)."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str]] = []
        self.threads: list[threading.Thread] = []

    def add(self, what: str, target: str) -> None:
        self.entries.append((what, target))
        self.threads.append(threading.current_thread())


def gated(gate: Gate, log: Log, *, fail_after: bool = False) -> MachineBuilder:
    """A toggle whose async guard awaits ``gate`` on moves sent with ``wait``.

    The coroutine runs on the runtime's event loop; the sync hooks before and
    after it run on whichever thread runs the cell's turn.
    """
    flow = MachineBuilder("a", TOGGLE)

    @flow.pre_transition
    def before(ctx: Any) -> None:
        log.add("before", ctx.target)

    @flow.guard
    async def at_the_gate(ctx: Any) -> bool:
        log.add("guard", ctx.target)
        if "wait" in ctx.payload:
            await gate.wait()
            log.add("guard passed", ctx.target)
            if fail_after:
                raise RuntimeError("the gateway said no, after the await")
        return True

    @flow.on_enter
    def entered(ctx: Any) -> None:
        log.add("enter", ctx.target)

    return flow


# -- the worker is free while the hook awaits ------------------------------------------------


def test_a_hook_awaiting_an_event_leaves_the_only_worker_to_other_machines() -> None:
    gate, log = Gate(), Log()
    with Runtime("one-worker", workers=1, default_timeout=WAIT) as runtime:
        slow = StateMachine(gated(gate, log), name="slow", runtime=runtime)
        other = StateMachine("a", TOGGLE, name="other", runtime=runtime)
        waiting = slow.request_transition("b", {"wait": True})
        assert gate.entered.wait(WAIT)
        for target in ("b", "a", "b"):  # each needs the only worker
            assert other.request_transition(target).result(timeout=5.0).state == target
        assert not waiting.done()
        gate.open()
        assert waiting.result(timeout=WAIT).state == "b"
        assert slow.current_state == "b"
        # The rest of the turn ran on the pool's worker, as its start did.
        assert log.threads[-1].name == "stateward:one-worker:worker-0"


class Crowd:
    """One `asyncio.Event` that many hooks await at once; the test opens it
    once ``expected`` of them are waiting."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.waiting = 0
        self.all_in = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    async def wait(self) -> None:
        # Every hook runs on the runtime's one loop thread: no lock needed here.
        if self._event is None:
            self._loop, self._event = asyncio.get_running_loop(), asyncio.Event()
        self.waiting += 1
        if self.waiting == self.expected:
            self.all_in.set()
        await self._event.wait()

    def open(self) -> None:
        assert self.all_in.wait(WAIT), f"only {self.waiting} of {self.expected} hooks waiting"
        assert self._loop is not None and self._event is not None
        self._loop.call_soon_threadsafe(self._event.set)


def test_two_workers_serve_200_machines_whose_hooks_all_await_at_once() -> None:
    count = 200
    crowd = Crowd(count)
    flow = MachineBuilder("a", TOGGLE)

    @flow.guard("b")
    async def ask_the_gateway(ctx: Any) -> bool:
        await crowd.wait()
        return True

    with Runtime("crowd", workers=2, default_timeout=WAIT) as runtime:
        machines = [StateMachine(flow, name=f"m{i}", runtime=runtime) for i in range(count)]
        first = [m.request_transition("b") for m in machines]
        second = [m.request_transition("a") for m in machines]  # each behind its own first
        crowd.open()  # fails unless all 200 await at once on 2 workers
        assert [r.result(timeout=WAIT).version for r in first] == [1] * count
        assert [r.result(timeout=WAIT).state for r in second] == ["a"] * count
        assert all([t.to_state for t in m.history] == ["b", "a"] for m in machines)


def test_an_async_modify_leaves_the_only_worker_to_other_managers() -> None:
    gate = Gate()

    async def fetch_and_add(state: ImmutableState) -> ImmutableState:
        await gate.wait()
        return state.update(n=state.n + 10)

    with Runtime("one-worker-modify", workers=1, default_timeout=WAIT) as runtime:
        slow = StateManager({"n": 0}, name="slow", runtime=runtime)
        other = StateManager({"n": 0}, name="other", runtime=runtime)
        waiting = slow.request_modify(fetch_and_add)
        behind = slow.request_update({"n": -1})  # waits for the modify, in order
        assert gate.entered.wait(WAIT)
        assert other.request_update({"n": 1}).result(timeout=5.0).n == 1
        assert not waiting.done() and not behind.done()
        gate.open()
        assert waiting.result(timeout=WAIT).n == 10
        assert behind.result(timeout=WAIT).n == -1
        assert slow.version == 2


def test_an_inline_call_whose_hook_awaits_is_answered_and_its_turn_goes_on_on_the_pool() -> None:
    gate, log = Gate(), Log()
    with Runtime("inline", workers=1, default_timeout=WAIT) as runtime:
        slow = StateMachine(gated(gate, log), name="slow", runtime=runtime)
        other = StateMachine("a", TOGGLE, name="other", runtime=runtime)
        # One worker runs turns in the order woken: once other's request is
        # answered, slow's start has run and slow is idle, so the blocking
        # call below runs inline, on this thread.
        assert other.request_transition("b").result(timeout=WAIT).state == "b"
        errors: list[BaseException] = []

        def meanwhile() -> None:
            try:
                assert gate.entered.wait(WAIT)
                # The caller's thread awaits its answer; the worker is free.
                assert other.request_transition("a").result(timeout=5.0).state == "a"
                gate.open()
            except BaseException as exc:  # re-raised in the test's thread
                errors.append(exc)

        opener = threading.Thread(target=meanwhile)
        opener.start()
        try:
            assert slow.transition("b", {"wait": True}).state == "b"
        finally:
            opener.join(WAIT)
        assert not opener.is_alive()
        if errors:
            raise errors[0]
        assert log.entries == [
            ("before", "b"),
            ("guard", "b"),
            ("guard passed", "b"),
            ("enter", "b"),
        ]
        assert log.threads[0] is threading.current_thread()  # it began inline
        assert log.threads[3].name == "stateward:inline:worker-0"  # the pool went on


# -- in order, on each host ------------------------------------------------------------------


@pytest.mark.usefixtures("each_host")
def test_messages_behind_an_awaiting_hook_wait_and_run_in_order() -> None:
    gate, log = Gate(), Log()
    with Runtime("in-order", default_timeout=WAIT) as runtime:
        slow = StateMachine(gated(gate, log), name="slow", runtime=runtime)
        other = StateMachine("a", TOGGLE, name="other", runtime=runtime)
        first = slow.request_transition("b", {"wait": True})
        behind = [slow.request_transition(t) for t in ("a", "b", "a")]
        assert gate.entered.wait(WAIT)
        assert other.request_transition("b").result(timeout=WAIT).state == "b"
        assert not any(reply.done() for reply in [first, *behind])
        gate.open()
        versions = [reply.result(timeout=WAIT).version for reply in [first, *behind]]
        assert versions == [1, 2, 3, 4]
        assert [r.to_state for r in slow.history] == ["b", "a", "b", "a"]
        assert log.entries == [
            ("before", "b"),
            ("guard", "b"),
            ("guard passed", "b"),
            ("enter", "b"),
            *[(what, t) for t in ("a", "b", "a") for what in ("before", "guard", "enter")],
        ]


@pytest.mark.usefixtures("each_host")
def test_a_stop_queued_behind_an_awaiting_hook_waits_for_its_commit() -> None:
    gate, log = Gate(), Log()
    with Runtime("stop-behind", default_timeout=WAIT) as runtime:
        slow = StateMachine(gated(gate, log), name="slow", runtime=runtime)
        waiting = slow.request_transition("b", {"wait": True})
        assert gate.entered.wait(WAIT)
        stop = stop_request(slow._cell, "stopped by the test")
        late = slow.request_transition("a")  # behind the stop
        assert not stop.done() and slow.stats().alive
        gate.open()
        assert waiting.result(timeout=WAIT).state == "b"  # committed, not refused
        assert stop.result(timeout=WAIT) is None
        error = late.exception(timeout=WAIT)
        assert isinstance(error, ActorStopped) and error.reason == "stopped by the test"
        assert slow.current_state == "b"


# -- deadlines, shutdowns and crashes --------------------------------------------------------


@pytest.mark.usefixtures("each_host")
def test_a_deadline_answers_the_caller_and_the_late_hook_commits_nothing() -> None:
    clock = ManualClock()
    entered, late = threading.Event(), threading.Event()
    flow = MachineBuilder("a", TOGGLE)

    @flow.on_enter("b")
    async def stubborn(ctx: Any) -> dict[str, Any] | None:
        if entered.is_set():
            return None  # only the first move is stubborn
        entered.set()
        try:
            await asyncio.Event().wait()  # nobody sets it: only the deadline ends it
        except asyncio.CancelledError:
            pass  # swallowed: the hook goes on and asks for a change anyway
        late.set()
        return {"late": True}

    runtime = Runtime("deadline", default_timeout=WAIT, timer=clock)
    try:
        machine = StateMachine(flow, name="slow", runtime=runtime, deadline=2.0)
        hung = machine.request_transition("b")
        assert entered.wait(WAIT)
        behind = machine.request_transition("b")
        clock.advance(2.5)  # past the deadline: the watchdog fires here
        error = hung.exception(timeout=WAIT)
        assert isinstance(error, ActorCrashed) and isinstance(error.cause, DeadlineExceeded)
        assert late.wait(WAIT), "the awaited hook was never cancelled"
        assert machine.restarts == 1
        assert behind.result(timeout=WAIT).state == "b"  # the next incarnation took over
    finally:
        report = runtime.shutdown(timeout=WAIT)  # joins the workers: the late hook is done
    assert report.clean, report.describe()
    assert "late" not in machine.snapshot.data
    assert machine.version == 1 and machine.current_state == "b"


@pytest.mark.usefixtures("each_host")
def test_a_shutdown_that_gives_up_cancels_the_awaited_hook_and_answers_actor_stopped() -> None:
    gate, log = Gate(), Log()
    runtime = Runtime("abandon", default_timeout=WAIT)
    slow = StateMachine(gated(gate, log), name="slow", runtime=runtime)
    waiting = slow.request_transition("b", {"wait": True})
    behind = slow.request_transition("a")
    assert gate.entered.wait(WAIT)
    report = runtime.shutdown(timeout=0.3)
    assert report.abandoned == ("slow",)
    assert gate.cancelled.wait(WAIT)
    assert isinstance(waiting.exception(timeout=WAIT), ActorStopped)
    assert isinstance(behind.exception(timeout=WAIT), ActorStopped)
    assert slow.current_state == "a" and slow.version == 0
    assert ("enter", "b") not in log.entries


@pytest.mark.usefixtures("each_host")
def test_a_hook_that_raises_after_its_await_crashes_the_actor_as_before() -> None:
    gate, log = Gate(), Log()
    with Runtime("crash-after", default_timeout=WAIT) as runtime:
        slow = StateMachine(
            gated(gate, log, fail_after=True), name="slow", runtime=runtime, on_error="restart"
        )
        waiting = slow.request_transition("b", {"wait": True})
        behind = slow.request_transition("b")  # kept for the next incarnation
        assert gate.entered.wait(WAIT)
        gate.open()
        error = waiting.exception(timeout=WAIT)
        assert isinstance(error, ActorCrashed) and isinstance(error.cause, RuntimeError)
        assert "after the await" in str(error.cause)
        assert slow.restarts == 1
        assert behind.result(timeout=WAIT).state == "b"
        assert slow.version == 1


@pytest.mark.usefixtures("each_host")
def test_a_hook_that_raises_after_its_await_fails_only_its_request_by_default() -> None:
    gate, log = Gate(), Log()
    with Runtime("fail-after", default_timeout=WAIT) as runtime:
        slow = StateMachine(gated(gate, log, fail_after=True), name="slow", runtime=runtime)
        waiting = slow.request_transition("b", {"wait": True})
        behind = slow.request_transition("b")
        assert gate.entered.wait(WAIT)
        gate.open()
        with pytest.raises(RuntimeError, match="after the await"):
            waiting.result(timeout=WAIT)
        assert behind.result(timeout=WAIT).version == 1
        assert slow.restarts == 0


@pytest.mark.usefixtures("each_host")
def test_a_sibling_restart_while_a_hook_awaits_lets_its_request_commit_first() -> None:
    gate, log = Gate(), Log()

    def crash(state: ImmutableState) -> ImmutableState:
        raise RuntimeError("the sibling crashes")

    with Runtime("siblings", default_timeout=WAIT) as runtime:
        sup = Supervisor("all", strategy="one_for_all", runtime=runtime, max_restarts=10)
        slow = StateMachine(gated(gate, log), name="slow", runtime=runtime, supervisor=sup)
        sibling = StateManager(
            {"n": 0}, name="sibling", runtime=runtime, supervisor=sup, on_error="restart"
        )
        waiting = slow.request_transition("b", {"wait": True})
        behind = slow.request_transition("a")  # for the next incarnation
        assert gate.entered.wait(WAIT)
        crashed = sibling.request_modify(crash)
        assert isinstance(crashed.exception(timeout=WAIT), ActorCrashed)
        assert not waiting.done()  # its incarnation is retired, its request still awaits
        gate.open()
        assert waiting.result(timeout=WAIT).version == 1  # committed, as a blocked hook would
        assert behind.result(timeout=WAIT).version == 2
        assert slow.restarts == 1 and [r.to_state for r in slow.history] == ["b", "a"]


def test_a_dedicated_machine_on_a_pool_awaits_its_hook_on_its_own_thread() -> None:
    gate, log = Gate(), Log()
    with Runtime("dedicated", workers=1, default_timeout=WAIT) as runtime:
        slow = StateMachine(gated(gate, log), name="slow", runtime=runtime, dedicated=True)
        other = StateMachine("a", TOGGLE, name="other", runtime=runtime)
        waiting = slow.request_transition("b", {"wait": True})
        assert gate.entered.wait(WAIT)
        assert other.request_transition("b").result(timeout=5.0).state == "b"
        gate.open()
        assert waiting.result(timeout=WAIT).state == "b"
        # Its own thread ran the hooks before and after the await.
        assert log.entries[0] == ("before", "b") and log.entries[-1] == ("enter", "b")
        assert log.threads[0] is log.threads[-1]
        assert log.threads[0].name == "stateward:dedicated:slow"
