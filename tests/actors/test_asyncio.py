"""asyncio: awaiting replies never blocks the loop; async hooks run to completion
in order; a cancelled await withdraws a request the actor has not started; the
answers reach a loop in batches."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
from support import TOGGLE, bump

from stateward.actors import (
    ActorTimeout,
    RequestCancelled,
    Runtime,
    SelfCallError,
    StateMachine,
    StateManager,
)
from stateward.actors._loop_inbox import LoopInbox, inbox_for
from stateward.core import ImmutableState, MachineBuilder, StatewardError

T = TypeVar("T")


def test_ticker_keeps_ticking_while_a_200ms_async_hook_runs(runtime: Runtime) -> None:
    flow = MachineBuilder("created", {"created": ["paying"], "paying": []})

    @flow.on_enter("paying")
    async def call_payment_gateway(ctx):
        await asyncio.sleep(0.2)  # stands for a slow network call
        return {"paid": True}

    machine = StateMachine(flow, runtime=runtime)

    async def main() -> tuple[int, float]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        task = asyncio.create_task(ticker())
        started = time.monotonic()
        snapshot = await machine.request_transition("paying")
        elapsed = time.monotonic() - started
        task.cancel()
        assert snapshot.data == {"paid": True}
        return ticks, elapsed

    ticks, elapsed = asyncio.run(main())
    assert elapsed >= 0.2
    # A blocked loop would tick at most once; a free one ~40 times in 200 ms.
    assert ticks >= 10, f"the event loop was blocked: only {ticks} ticks in {elapsed:.3f}s"


def test_async_hooks_finish_before_the_next_message_starts(runtime: Runtime) -> None:
    flow = MachineBuilder("a", TOGGLE)
    log: list[str] = []

    @flow.guard
    async def slow_guard(ctx):
        log.append(f"start {ctx.version}")
        await asyncio.sleep(0.02)
        log.append(f"end {ctx.version}")
        return True

    machine = StateMachine(flow, runtime=runtime)

    async def main() -> list[str]:
        replies = [machine.request_transition(t) for t in ("b", "a", "b")]
        done = await asyncio.gather(*replies)
        return [s.state for s in done]

    assert asyncio.run(main()) == ["b", "a", "b"]
    assert log == ["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"]


def test_async_guard_veto_and_async_error_reach_the_awaiting_caller(runtime: Runtime) -> None:
    flow = MachineBuilder(
        "created", {"created": ["paying", "shipped"], "paying": [], "shipped": []}
    )

    @flow.guard("shipped")
    async def risk_control(ctx):
        """shipping before payment is not allowed"""
        await asyncio.sleep(0)
        return False

    @flow.on_enter("paying")
    async def fail(ctx):
        await asyncio.sleep(0)
        raise ConnectionError("gateway down")

    machine = StateMachine(flow, runtime=runtime)

    async def main() -> None:
        with pytest.raises(ValueError, match="shipping before payment is not allowed"):
            await machine.request_transition("shipped")
        with pytest.raises(ConnectionError, match="gateway down"):
            await machine.request_transition("paying")

    asyncio.run(main())
    assert machine.current_state == "created" and machine.version == 0


def test_await_times_out_with_the_runtime_default_and_withdraws() -> None:
    with Runtime("short", default_timeout=0.05) as runtime:
        manager = StateManager({"n": 0}, runtime=runtime)
        release = asyncio.Event()

        async def main() -> None:
            loop = asyncio.get_running_loop()

            def hold(state: ImmutableState) -> ImmutableState:
                fut = asyncio.run_coroutine_threadsafe(release.wait(), loop)
                fut.result(timeout=10)
                return state

            blocked = manager.request_modify(hold)
            with pytest.raises(ActorTimeout, match="will not run"):
                await manager.request_update({"n": 1})
            release.set()
            await blocked.wait(timeout=10)

        asyncio.run(main())
        assert manager.get_state() == {"n": 0}
        assert manager.version == 1


def test_blocking_call_from_an_async_hook_raises(runtime: Runtime) -> None:
    other = StateManager({"n": 0}, runtime=runtime)
    flow = MachineBuilder("a", {"a": ["b"], "b": []})

    @flow.on_enter
    async def blocking_inside(ctx):
        other.update_state({"n": 1})

    machine = StateMachine(flow, runtime=runtime)
    with pytest.raises(SelfCallError, match="runtime's event loop"):
        machine.transition("b")

    flow2 = MachineBuilder("a", {"a": ["b"], "b": []})

    @flow2.on_enter
    async def awaiting_inside(ctx):
        new = await other.request_update({"n": 2})
        return {"other_n": new.n}

    assert StateMachine(flow2, runtime=runtime).transition("b").data == {"other_n": 2}


def test_async_observer_and_async_modify(runtime: Runtime) -> None:
    manager = StateManager({"n": 0}, runtime=runtime)
    seen: list[int] = []

    async def observer(old: ImmutableState, new: ImmutableState) -> None:
        await asyncio.sleep(0)
        seen.append(new.n)

    async def bump(state: ImmutableState) -> ImmutableState:
        await asyncio.sleep(0)
        return state.update(n=state.n + 1)

    manager.add_observer(observer)
    assert manager.modify(bump) == {"n": 1}
    assert seen == [1]


# -- cancellation withdraws an unstarted request --------------------------------------


class _Held:
    """A manager kept busy by one request until `release` (its operation
    waits on a threading.Event), so that the requests sent after it queue."""

    def __init__(self, manager: StateManager) -> None:
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.reply = manager.request_modify(self._hold)
        assert self.entered.wait(5)

    def _hold(self, state: ImmutableState) -> ImmutableState:
        self.entered.set()
        assert self.gate.wait(10)
        return state.update(held=True)

    def release(self) -> None:
        self.gate.set()
        self.reply.result(timeout=10)


def _bounded(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(10):
            return await main()

    return asyncio.run(bounded())


@pytest.mark.parametrize("how", ["task.cancel", "asyncio.timeout", "asyncio.wait_for"])
def test_a_cancelled_await_withdraws_a_request_the_actor_has_not_started(
    runtime: Runtime, how: str
) -> None:
    manager = StateManager({"n": 0}, runtime=runtime)
    held = _Held(manager)
    seen: list[BaseException | None] = []
    reply = manager.request_update({"n": 1}, callback=lambda r: seen.append(r.exception(0)))

    async def main() -> None:
        if how == "task.cancel":
            task = asyncio.create_task(reply.wait(10))
            await asyncio.sleep(0)  # the task awaits the answer now
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        elif how == "asyncio.timeout":
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.02):
                    await reply
        else:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(reply.wait(10), 0.02)

    try:
        _bounded(main)
        # Answered at once, as a timed-out wait would have: every waiter and
        # done-callback learns that it will not run.
        assert reply.done()
        error = reply.exception(timeout=0)
        assert isinstance(error, RequestCancelled) and isinstance(error, StatewardError)
        assert error.actor == manager.name and error.message == "update({'n': 1})"
        assert "withdrawn before it started" in str(error)
        assert seen == [error]
    finally:
        held.release()
    assert manager.update_state({"after": 1}) == {"n": 0, "held": True, "after": 1}
    assert manager.version == 2  # the held request and the last one: never n=1


def test_a_cancelled_await_leaves_a_started_request_to_complete_and_commit(
    runtime: Runtime,
) -> None:
    manager = StateManager({"n": 0}, runtime=runtime)
    entered, gate = threading.Event(), threading.Event()

    def slow(state: ImmutableState) -> ImmutableState:
        entered.set()
        assert gate.wait(10)
        return state.update(n=1)

    reply = manager.request_modify(slow)

    async def main() -> None:
        task = asyncio.create_task(reply.wait(10))
        assert entered.wait(5)  # it runs now, on the actor's worker
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not reply.done()

    try:
        _bounded(main)
    finally:
        gate.set()
    assert reply.result(timeout=10) == {"n": 1}
    assert manager.get_state() == {"n": 1} and manager.version == 1


# -- replies reach a loop in batches ----------------------------------------------------


def test_replies_finished_while_the_loop_is_busy_wake_it_once(runtime: Runtime) -> None:
    """1,000 replies answered by the actor's worker while the loop is blocked
    cost the loop one wake-up (``call_soon_threadsafe``), not one each."""
    manager = StateManager({"n": 0}, runtime=runtime)
    held = _Held(manager)
    replies = [manager.request_modify(bump) for _ in range(1000)]
    all_answered = threading.Event()
    replies[-1].add_done_callback(lambda _: all_answered.set())  # answered in order: last

    async def main() -> tuple[int, list[int]]:
        loop = asyncio.get_running_loop()
        wakeups = itertools.count()
        original = loop.call_soon_threadsafe

        def counting(*args: Any, **kwargs: Any) -> Any:
            next(wakeups)
            return original(*args, **kwargs)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        gathered = asyncio.gather(*replies)
        await asyncio.sleep(0)  # every reply is awaited now
        held.gate.set()
        assert all_answered.wait(10)  # the loop stays blocked meanwhile
        results = await gathered
        return next(wakeups), [state.n for state in results]

    try:
        woken, values = _bounded(main)
    finally:
        held.release()
    assert values == list(range(1, 1001))
    assert woken <= 2, f"{woken} wake-ups of the loop for 1,000 replies"


def test_a_future_delivered_while_the_inbox_drains_is_resolved_too() -> None:
    """An answer that arrives while the loop drains its inbox schedules
    another drain: it is never left behind."""

    async def main() -> int:
        loop = asyncio.get_running_loop()
        inbox = LoopInbox(loop)
        wakeups = itertools.count()
        original = loop.call_soon_threadsafe

        def counting(*args: Any, **kwargs: Any) -> Any:
            next(wakeups)
            return original(*args, **kwargs)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        late: asyncio.Future[bool] = loop.create_future()

        class DeliversAnotherWhenResolved(asyncio.Future):  # type: ignore[type-arg]
            def set_result(self, result: Any) -> None:
                super().set_result(result)
                _on_a_thread(lambda: inbox.deliver(late))  # during the drain

        first = DeliversAnotherWhenResolved()
        _on_a_thread(lambda: inbox.deliver(first))
        assert await first is True
        assert await late is True
        assert inbox.pending() == 0
        return next(wakeups)

    assert _bounded(main) == 2


def test_futures_delivered_from_many_threads_during_drains_are_all_resolved(
    tiny_switch_interval: None,
) -> None:
    """Stress: 4 threads deliver 2,000 futures each while the loop drains; a
    lost wake-up would leave some unresolved until the bound fails the test.
    ``STATEWARD_INBOX_STRESS=<n>`` delivers n futures per thread instead."""
    per_thread = int(os.environ.get("STATEWARD_INBOX_STRESS", "2000"))
    threads: list[threading.Thread] = []
    errors: list[BaseException] = []

    async def main() -> int:
        loop = asyncio.get_running_loop()
        inbox = inbox_for(loop)
        batches = [[loop.create_future() for _ in range(per_thread)] for _ in range(4)]

        def produce(futures: list[asyncio.Future[bool]]) -> None:
            try:
                for future in futures:
                    inbox.deliver(future)
            except BaseException as exc:
                errors.append(exc)

        threads.extend(threading.Thread(target=produce, args=(batch,)) for batch in batches)
        for thread in threads:
            thread.start()
        results = await asyncio.gather(*(f for batch in batches for f in batch))
        return sum(results)

    try:
        assert _bounded(main) == 4 * per_thread
    finally:
        for thread in threads:
            thread.join(5)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []


def test_a_reply_answered_after_its_loop_closed_is_dropped_quietly(runtime: Runtime) -> None:
    manager = StateManager({"n": 0}, runtime=runtime)
    entered, gate = threading.Event(), threading.Event()

    def slow(state: ImmutableState) -> ImmutableState:
        entered.set()
        assert gate.wait(10)
        return state.update(n=1)

    reply = manager.request_modify(slow)
    assert entered.wait(5)

    async def main() -> None:
        waiting = asyncio.create_task(reply.wait(10))
        await asyncio.sleep(0)
        assert not waiting.done()  # still awaiting when the loop ends

    asyncio.run(main())  # cancels the task and closes the loop
    gate.set()
    assert reply.result(timeout=10) == {"n": 1}
    assert runtime.errors() == []

    async def again() -> int:  # the same thread's next loop gets answers as usual
        state = await manager.request_modify(bump)
        return int(state.n)

    assert _bounded(again) == 2


def _on_a_thread(fn: Callable[[], Any]) -> None:
    """Run ``fn`` on another thread and wait for it; its error is raised here."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    if errors:
        raise errors[0]
