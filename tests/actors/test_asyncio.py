"""asyncio: awaiting replies never blocks the loop; async hooks run to completion in order."""

from __future__ import annotations

import asyncio
import time

import pytest
from support import TOGGLE

from stateward.actors import ActorTimeout, Runtime, SelfCallError, StateMachine, StateManager
from stateward.core import ImmutableState, MachineBuilder


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
