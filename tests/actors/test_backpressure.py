"""Backpressure: ``mailbox_limit`` bounds the requests waiting in a mailbox.

At the limit a ``request_*`` call raises `MailboxFull` at once, a blocking call
waits for room within its timeout (and sends nothing if none comes), an
awaited call suspends without blocking the event loop, and stopping the actor
wakes every waiter with the stopped error. Nothing accepted is dropped.

Actors are held busy deterministically: the first request's function waits on
a `threading.Event` that the test sets. The awaited form is reached through
``ActorHandle._acall``, the one coroutine every ``a*`` call goes through.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from support import TOGGLE, Workers

from stateward.actors import (
    ActorStopped,
    ActorTimeout,
    ConfigManager,
    MailboxFull,
    Runtime,
    StateMachine,
    StateManager,
)
from stateward.actors._backpressure import waiting
from stateward.actors._loop_turn import ROUND
from stateward.core import ArgumentTypeError, ArgumentValueError, ImmutableState
from stateward.core._messages import Modify

pytestmark = pytest.mark.usefixtures("each_host")


class Held:
    """A request function that holds its actor busy until `release`."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.gate = threading.Event()

    def __call__(self, state: ImmutableState) -> ImmutableState:
        self.entered.set()
        assert self.gate.wait(10), "the test never released the held actor"
        return state.update(log=(*state.log, "held"))

    def hold(self, manager: StateManager) -> Any:
        """Send it to ``manager`` and wait until the actor runs it."""
        reply = manager.request_modify(self)
        assert self.entered.wait(5), "the actor never started the held request"
        return reply

    def release(self) -> None:
        self.gate.set()


def append(tag: str) -> Callable[[ImmutableState], ImmutableState]:
    def step(state: ImmutableState) -> ImmutableState:
        return state.update(log=(*state.log, tag))

    step.__qualname__ = f"append({tag!r})"
    return step


def wait_for_waiters(handle: Any, count: int, timeout: float = 5.0) -> None:
    """Wait (bounded) until ``count`` senders wait for room in ``handle``'s
    mailbox. They block on primitives of their own, so this polls the
    shared list of waiters."""
    mailbox = handle._cell.mailbox
    deadline = time.monotonic() + timeout
    while len(waiting.get(mailbox, ())) < count:
        assert time.monotonic() < deadline, f"{count} waiter(s) never started waiting for room"
        time.sleep(0.0005)


def amodify(manager: StateManager, fn: Any, timeout: float | None = None) -> Any:
    """The awaited ``modify``: the coroutine behind every ``a*`` call."""
    return manager._acall(Modify((fn,)), timeout)


@pytest.fixture
def rt() -> Any:
    runtime = Runtime("bp", default_timeout=10.0)
    yield runtime
    runtime.shutdown(timeout=10.0)


# -- request_* -------------------------------------------------------------------------------


def test_request_at_the_limit_raises_mailbox_full_and_nothing_is_lost(rt: Runtime) -> None:
    manager = StateManager({"log": ()}, name="orders", runtime=rt, mailbox_limit=3)
    held = Held()
    first = held.hold(manager)  # running: taken off the queue, so it does not count
    queued = [manager.request_modify(append(f"q{i}")) for i in range(3)]
    assert manager.stats().at_limit and manager.stats().queue_depth == 3

    with pytest.raises(MailboxFull) as refused:
        manager.request_modify(append("refused"))
    error = refused.value
    assert (error.actor, error.limit) == ("orders", 3)
    assert "'orders'" in str(error) and "3 requests waiting" in str(error)
    assert "append('refused')" in str(error) and "nothing was sent" in str(error)
    assert "mailbox_limit" in str(error)
    assert manager.stats().queue_depth == 3  # nothing was queued

    held.release()
    first.result(5)
    for reply in queued:
        reply.result(5)
    assert manager.get_state().log == ("held", "q0", "q1", "q2")
    stats = manager.stats()
    assert (stats.mailbox_limit, stats.at_limit, stats.queue_depth) == (3, False, 0)
    assert stats.messages == 4


def test_a_machine_request_at_its_limit_is_refused_the_same_way(rt: Runtime) -> None:
    held = Held()
    machine = StateMachine("a", TOGGLE, name="door", runtime=rt, mailbox_limit=1)

    def observer(old: Any, new: Any) -> None:
        if new.version == 1:  # holds the actor after its first commit
            held.entered.set()
            assert held.gate.wait(10)

    machine.add_observer(observer)
    first = machine.request_transition("b")
    assert held.entered.wait(5)
    second = machine.request_transition("a")
    with pytest.raises(MailboxFull) as refused:
        machine.request_transition("b")
    assert (refused.value.actor, refused.value.limit) == ("door", 1)
    assert "transition('b')" in str(refused.value)
    held.release()
    assert first.result(5).state == "b" and second.result(5).state == "a"
    assert machine.version == 2


def test_a_runtime_default_bounds_every_handle_and_a_handle_limit_wins(each_host: str) -> None:
    with Runtime("bounded", mailbox_limit=2, default_timeout=10.0) as runtime:
        defaulted = StateManager({"log": ()}, runtime=runtime)
        own = StateManager({"log": ()}, runtime=runtime, mailbox_limit=5)
        config = ConfigManager({"a": 1}, runtime=runtime)
        machine = StateMachine("a", TOGGLE, runtime=runtime)
        assert [h.stats().mailbox_limit for h in (defaulted, own, config, machine)] == [2, 5, 2, 2]
        held = Held()
        first = held.hold(defaulted)
        replies = [defaulted.request_modify(append(f"q{i}")) for i in range(2)]
        with pytest.raises(MailboxFull) as refused:
            defaulted.request_modify(append("refused"))
        assert refused.value.limit == 2
        held.release()
        for reply in (first, *replies):
            reply.result(5)
        assert defaulted.get_state().log == ("held", "q0", "q1")
    with Runtime("unbounded") as runtime:
        assert StateManager({}, runtime=runtime).stats().mailbox_limit is None


def test_an_idle_actor_runs_a_blocking_call_inline_at_any_limit(rt: Runtime) -> None:
    manager = StateManager({"log": ()}, runtime=rt, mailbox_limit=1)
    for i in range(20):
        manager.modify(append(str(i)), timeout=5)
    assert len(manager.get_state().log) == 20
    assert not manager.stats().at_limit


# -- blocking calls ----------------------------------------------------------------------------


def test_a_blocking_call_at_the_limit_waits_for_room_and_gets_in(
    rt: Runtime, workers: Workers
) -> None:
    manager = StateManager({"log": ()}, runtime=rt, mailbox_limit=1)
    held = Held()
    first = held.hold(manager)
    queued = manager.request_modify(append("queued"))
    answers: list[ImmutableState] = []
    workers.start(lambda: answers.append(manager.modify(append("waited"), timeout=10)))
    wait_for_waiters(manager, 1)
    assert not answers and manager.stats().queue_depth == 1  # it waits; nothing was queued

    held.release()
    workers.join()
    assert answers[0].log == ("held", "queued", "waited")
    first.result(5)
    queued.result(5)
    assert manager.get_state().log == ("held", "queued", "waited")


def test_a_blocking_call_that_finds_no_room_in_time_sends_nothing(rt: Runtime) -> None:
    manager = StateManager({"log": ()}, name="slow", runtime=rt, mailbox_limit=1)
    held = Held()
    first = held.hold(manager)
    queued = manager.request_modify(append("queued"))
    started = time.monotonic()
    with pytest.raises(ActorTimeout) as timed_out:
        manager.modify(append("never"), timeout=0.2)
    assert time.monotonic() - started >= 0.2
    error = timed_out.value
    assert error.started is False and error.seconds == 0.2
    assert "limit of 1" in str(error) and "was not sent" in str(error)
    assert isinstance(error.__cause__, MailboxFull) and error.__cause__.actor == "slow"
    assert not waiting.get(manager._cell.mailbox)  # it left the waiters

    held.release()
    first.result(5)
    queued.result(5)
    manager.modify(append("after"), timeout=5)
    assert manager.get_state().log == ("held", "queued", "after")


# -- awaited calls -----------------------------------------------------------------------------


def test_an_awaited_call_at_the_limit_suspends_and_the_loop_keeps_running(
    rt: Runtime,
) -> None:
    manager = StateManager({"log": ()}, runtime=rt, mailbox_limit=1)
    held = Held()
    first = held.hold(manager)
    queued = manager.request_modify(append("queued"))

    async def main() -> tuple[ImmutableState, int]:
        async with asyncio.timeout(10):
            call = asyncio.create_task(amodify(manager, append("awaited"), timeout=10))
            ticks = 0
            # The loop stays free while the call waits for room: this task runs.
            while len(waiting.get(manager._cell.mailbox, ())) < 1 or ticks < 50:
                await asyncio.sleep(0.001)
                ticks += 1
            assert not call.done()
            assert manager.stats().queue_depth == 1  # nothing of it was queued yet
            held.release()
            return await call, ticks

    state, ticks = asyncio.run(main())
    assert ticks >= 50
    assert state.log == ("held", "queued", "awaited")
    first.result(5)
    queued.result(5)


def test_an_awaited_call_that_finds_no_room_in_time_sends_nothing(rt: Runtime) -> None:
    manager = StateManager({"log": ()}, runtime=rt, mailbox_limit=1)
    held = Held()
    first = held.hold(manager)
    queued = manager.request_modify(append("queued"))

    async def main() -> None:
        async with asyncio.timeout(10):
            with pytest.raises(ActorTimeout) as timed_out:
                await amodify(manager, append("never"), timeout=0.1)
            assert timed_out.value.started is False
            assert isinstance(timed_out.value.__cause__, MailboxFull)

    asyncio.run(main())
    assert not waiting.get(manager._cell.mailbox)
    held.release()
    first.result(5)
    queued.result(5)
    manager.modify(append("after"), timeout=5)
    assert manager.get_state().log == ("held", "queued", "after")


def test_a_cancelled_awaiter_that_was_woken_passes_the_room_on(rt: Runtime) -> None:
    manager = StateManager({"log": ()}, runtime=rt, mailbox_limit=1)
    held = Held()
    first = held.hold(manager)
    second_runs = threading.Event()
    second_gate = threading.Event()

    def second(state: ImmutableState) -> ImmutableState:
        second_runs.set()
        assert second_gate.wait(10)
        return state.update(log=(*state.log, "second"))

    queued = manager.request_modify(second)

    async def main() -> ImmutableState:
        async with asyncio.timeout(10):
            a = asyncio.create_task(amodify(manager, append("a"), timeout=10))
            b = asyncio.create_task(amodify(manager, append("b"), timeout=10))
            while len(waiting.get(manager._cell.mailbox, ())) < 2:
                await asyncio.sleep(0.001)
            # Room is made for the oldest waiter, a; a is cancelled before it
            # sees it (this blocks the loop on purpose, so the wake is pending).
            held.release()
            assert second_runs.wait(5)  # the actor took `second` off the queue: a was woken
            a.cancel()
            with pytest.raises(asyncio.CancelledError):
                await a
            second_gate.set()
            return await b

    state = asyncio.run(main())
    assert state.log == ("held", "second", "b")  # b got the room a left; a sent nothing
    first.result(5)
    queued.result(5)


# -- stopping --------------------------------------------------------------------------------


def test_stopping_the_actor_wakes_every_waiter_with_the_stopped_error(
    workers: Workers,
) -> None:
    runtime = Runtime("stopping", default_timeout=30.0)
    manager = StateManager({"log": ()}, name="busy", runtime=runtime, mailbox_limit=1)
    held = Held()
    first = held.hold(manager)
    queued = manager.request_modify(append("queued"))
    errors: list[BaseException] = []

    def blocking() -> None:
        with pytest.raises(ActorStopped) as stopped:
            manager.modify(append("blocked"), timeout=30)
        errors.append(stopped.value)

    def awaited() -> None:
        async def main() -> None:
            async with asyncio.timeout(30):
                with pytest.raises(ActorStopped) as stopped:
                    await amodify(manager, append("awaited"), timeout=30)
            errors.append(stopped.value)

        asyncio.run(main())

    workers.start(blocking)
    workers.start(awaited)
    wait_for_waiters(manager, 2)
    started = time.monotonic()
    report = runtime.shutdown(timeout=0.2)  # the held actor is abandoned: its mailbox closes
    workers.join(10)
    assert time.monotonic() - started < 10  # woken by the close, not by their 30 s timeouts
    assert report.abandoned == ("busy",)
    assert len(errors) == 2 and all(e.actor == "busy" for e in errors)  # type: ignore[attr-defined]
    assert not waiting.get(manager._cell.mailbox)
    with pytest.raises(ActorStopped):
        queued.result(5)
    held.release()
    with pytest.raises(ActorStopped):
        first.result(5)


# -- bad limits ----------------------------------------------------------------------------


MAKERS: dict[str, Callable[..., Any]] = {
    "StateMachine": lambda rt, **kw: StateMachine("a", TOGGLE, runtime=rt, **kw),
    "StateManager": lambda rt, **kw: StateManager({}, runtime=rt, **kw),
    "ConfigManager": lambda rt, **kw: ConfigManager({}, runtime=rt, **kw),
    "Runtime": lambda rt, **kw: Runtime(**kw),
}


@pytest.mark.parametrize("kind", sorted(MAKERS))
@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ArgumentValueError),
        (-3, ArgumentValueError),
        (1.5, ArgumentTypeError),
        ("10", ArgumentTypeError),
        (True, ArgumentTypeError),
    ],
)
def test_a_bad_mailbox_limit_is_refused_and_nothing_is_created(
    rt: Runtime, kind: str, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error) as refused:
        MAKERS[kind](rt, mailbox_limit=value)
    message = str(refused.value)
    assert kind in message and "mailbox_limit" in message and ">= 1" in message
    assert repr(value) in message
    assert rt.names() == []


# -- a producer faster than its actor ----------------------------------------------------------


#: Send attempts of the fast producer; STATEWARD_BP_ATTEMPTS raises it locally.
ATTEMPTS = int(os.environ.get("STATEWARD_BP_ATTEMPTS", "2000"))
LIMIT = 16
#: The producer makes this many attempts for each message it lets the actor take.
SPEEDUP = 10


def test_a_producer_ten_times_faster_than_its_actor_keeps_memory_bounded(
    rt: Runtime, workers: Workers
) -> None:
    """One producer sends ``request_modify`` ten times as fast as the actor
    takes messages (it lets the actor take one per ten attempts: no clock
    involved), and a second one makes blocking calls that wait for room. The
    queue never holds more than the limit, traced memory stays bounded, and
    every accepted message is applied exactly once, each producer's in the
    order sent. ``STATEWARD_BP_ATTEMPTS`` sets the attempts (2,000 here)."""
    rng = random.Random(15)
    ids = rng.sample(range(10**9), ATTEMPTS)
    blocking_ids = [f"b{i}" for i in range(ATTEMPTS // 20)]
    tokens = threading.Semaphore(0)
    applied: list[Any] = []
    depths: list[int] = []
    manager = StateManager({"n": 0}, runtime=rt, mailbox_limit=LIMIT)

    def apply(tag: Any) -> Callable[[ImmutableState], ImmutableState]:
        def step(state: ImmutableState) -> ImmutableState:
            assert tokens.acquire(timeout=10), "the producer stopped letting the actor run"
            applied.append(tag)
            depths.append(manager.stats().queue_depth)
            return state.update(n=state.n + 1)

        return step

    accepted: list[int] = []
    refused = 0
    producer_depths: list[int] = []

    def fast() -> None:
        nonlocal refused
        for i, tag in enumerate(ids):
            try:
                manager.request_modify(apply(tag))
            except MailboxFull:
                refused += 1
            else:
                accepted.append(tag)
            producer_depths.append(manager.stats().queue_depth)
            if i % SPEEDUP == SPEEDUP - 1:
                tokens.release()  # the actor may take one message

    def slow() -> None:
        for tag in blocking_ids:
            manager.modify(apply(tag), timeout=10)

    manager.request_modify(lambda s: s).result(5)  # its worker is up before we measure
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        workers.start(slow)
        fast()
        tokens.release(ATTEMPTS)  # the producer is done: let the actor drain
        workers.join()
        manager.modify(lambda s: s, timeout=10)  # behind everything queued
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert refused > 0 and accepted, "the producer was never held back, or never got in"
    assert max(depths + producer_depths) <= LIMIT
    # A queued request costs well under 2 KB here (its reply, message and
    # function); unbounded, the ~1,800 requests queued take about 1 MB.
    assert peak - baseline < 100_000 + LIMIT * 2_000, peak - baseline
    assert sorted(applied, key=str) == sorted([*accepted, *blocking_ids], key=str)
    assert len(applied) == len(set(applied))  # exactly once
    assert [t for t in applied if isinstance(t, int)] == accepted  # in the order sent
    assert [t for t in applied if isinstance(t, str)] == blocking_ids
    assert manager.get_state().n == len(accepted) + len(blocking_ids)


def test_an_awaited_call_that_waited_for_a_loop_round_still_keeps_to_the_limit(
    rt: Runtime,
) -> None:
    """An awaited call that found room, then waited for its loop's next round
    of inline calls, is queued only if there is room still: a request sent
    meanwhile took it, so it waits for room like any other sender."""
    target = StateManager({"log": ()}, runtime=rt, mailbox_limit=1)
    other = StateManager({"log": ()}, runtime=rt)
    held = Held()
    first = held.hold(target)

    async def main() -> ImmutableState:
        async with asyncio.timeout(10):
            # A round's worth of inline calls on an idle actor, then one more
            # call, to the held actor: it waits for the next round.
            spent = [asyncio.create_task(amodify(other, append(str(n)))) for n in range(ROUND)]
            late = asyncio.create_task(amodify(target, append("late"), timeout=10))
            await asyncio.sleep(0)  # every task has made its first step
            assert target.stats().queue_depth == 0  # there was room when it looked
            sneaked = target.request_modify(append("sneaked"))  # ... and now there is none
            while len(waiting.get(target._cell.mailbox, ())) < 1:
                assert target.stats().queue_depth <= 1, "the late call went past the limit"
                await asyncio.sleep(0.001)
            assert target.stats().queue_depth == 1
            held.release()
            await asyncio.gather(*spent)
            sneaked.result(5)
            return await late

    state = asyncio.run(main())
    assert state.log == ("held", "sneaked", "late")
    first.result(5)
