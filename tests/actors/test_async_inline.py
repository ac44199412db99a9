"""An awaited call that finds its actor idle runs the request on the awaiting
event loop: no hop to a worker thread, and its async hooks awaited on that
loop, not on the runtime's event loop thread (issue 15).

The calls are awaited through the handles' ``atransition`` / ``amodify`` where
they exist, else through ``ActorHandle._acall``, the coroutine every ``a*``
call goes through (`atransition`, `amodify` below).
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import TOGGLE

from stateward.actors import (
    ActorCrashed,
    ActorStopped,
    ActorTimeout,
    Runtime,
    SQLiteStore,
    StateMachine,
    StateManager,
)
from stateward.actors._errors import DeadlineExceeded
from stateward.actors._loop_turn import ROUND
from stateward.core import ImmutableState, MachineBuilder
from stateward.core._messages import Modify, Move


async def atransition(machine: StateMachine, target: str, *, timeout: float | None = None) -> Any:
    method = getattr(machine, "atransition", None)
    if method is not None:
        return await method(target, timeout=timeout)
    return await machine._acall(Move((target, None, None)), timeout)


async def amodify(
    manager: StateManager, fn: Callable[[ImmutableState], Any], *, timeout: float | None = None
) -> Any:
    method = getattr(manager, "amodify", None)
    if method is not None:
        return await method(fn, timeout=timeout)
    return await manager._acall(Modify((fn,)), timeout)


def runtime_threads(runtime: Runtime) -> list[str]:
    """The names of the threads the runtime has started to run requests (workers,
    its event loop). Its timer thread runs no request: a runtime with actors may
    have one for its own periodic work (looking for an OpenTelemetry provider
    set later), and it ends once idle."""
    prefix = f"stateward:{runtime.name}:"
    return [
        t.name
        for t in threading.enumerate()
        if t.name.startswith(prefix) and not t.name.endswith(":timers")
    ]


def test_an_idle_actors_request_runs_on_the_awaiting_loops_thread(runtime: Runtime) -> None:
    flow = MachineBuilder("a", TOGGLE)
    threads: list[threading.Thread] = []

    @flow.on_enter("b")
    def record(ctx: Any) -> None:
        threads.append(threading.current_thread())

    def bump_here(state: ImmutableState) -> ImmutableState:
        threads.append(threading.current_thread())
        return state.update(n=state.n + 1)

    machine = StateMachine(flow, runtime=runtime)
    manager = StateManager({"n": 0}, runtime=runtime)

    async def main() -> tuple[Any, Any]:
        return await atransition(machine, "b"), await amodify(manager, bump_here)

    snapshot, state = asyncio.run(main())
    assert (snapshot.state, snapshot.version) == ("b", 1)
    assert state.n == 1 and manager.version == 1
    assert threads == [threading.current_thread()] * 2
    assert runtime_threads(runtime) == []  # no worker, no event loop thread


def test_async_hooks_are_awaited_on_the_callers_loop_not_the_runtimes(runtime: Runtime) -> None:
    flow = MachineBuilder("a", TOGGLE)
    seen: dict[str, tuple[asyncio.AbstractEventLoop, threading.Thread]] = {}

    def where() -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
        task = asyncio.current_task()
        assert task is not None
        return task.get_loop(), threading.current_thread()

    @flow.guard("b")
    async def allowed(ctx: Any) -> bool:
        seen["guard"] = where()
        await asyncio.sleep(0)
        return True

    @flow.on_enter("b")
    async def enter(ctx: Any) -> dict[str, bool]:
        await asyncio.sleep(0)
        seen["enter"] = where()
        return {"entered": True}

    async def add_one(state: ImmutableState) -> ImmutableState:
        await asyncio.sleep(0)
        seen["modify"] = where()
        return state.update(n=state.n + 1)

    machine = StateMachine(flow, runtime=runtime)
    manager = StateManager({"n": 0}, runtime=runtime)

    async def main() -> None:
        here = (asyncio.get_running_loop(), threading.current_thread())
        snapshot = await atransition(machine, "b")
        state = await amodify(manager, add_one)
        assert snapshot.data == {"entered": True} and state.n == 1
        assert seen == {"guard": here, "enter": here, "modify": here}

    asyncio.run(main())
    assert runtime_threads(runtime) == []


def test_a_request_to_an_actor_whose_inline_hook_awaits_is_queued_and_answered_after_it(
    runtime: Runtime,
) -> None:
    flow = MachineBuilder("a", TOGGLE)
    log: list[str] = []
    started = asyncio.Event()
    gate = asyncio.Event()

    @flow.on_enter("b")
    async def slow(ctx: Any) -> None:
        log.append("enter b")
        started.set()
        await gate.wait()
        log.append("entered b")

    @flow.on_enter("a")
    def back(ctx: Any) -> None:
        log.append(f"enter a on {threading.current_thread().name}")

    machine = StateMachine(flow, runtime=runtime)

    async def main() -> None:
        async with asyncio.timeout(10):
            first = asyncio.ensure_future(atransition(machine, "b"))
            await started.wait()
            second = asyncio.ensure_future(atransition(machine, "a"))
            await asyncio.sleep(0)  # its first step: it finds the turn held and queues
            assert machine.stats().queue_depth == 1 and machine.version == 0
            gate.set()
            assert (await first).version == 1
            assert (await second).version == 2

    asyncio.run(main())
    assert log[:2] == ["enter b", "entered b"]
    # Queued behind the held turn, it went to a worker once the turn came back.
    assert len(log) == 3 and log[2].startswith(f"enter a on stateward:{runtime.name}:worker")


@pytest.mark.parametrize("seed", range(8))
def test_each_senders_awaits_are_applied_in_the_order_made_inline_or_queued(
    runtime: Runtime, seed: int
) -> None:
    """Senders start tasks (each one awaited call) faster than a loop round
    takes them, some pausing between calls, to managers whose async
    ``modify`` functions hold their turn: calls run inline, wait for a round,
    or queue behind a held turn, and each sender's calls still apply in the
    order it made them, each once."""
    rng = random.Random(seed)
    senders, per_sender = 6, ROUND
    managers = [StateManager({"log": []}, runtime=runtime) for _ in range(3)]

    def append(item: tuple[int, int]) -> Callable[[ImmutableState], Any]:
        def fn(state: ImmutableState) -> ImmutableState:
            return state.update(log=[*state.log, item])

        return fn

    def append_later(item: tuple[int, int]) -> Callable[[ImmutableState], Any]:
        async def fn(state: ImmutableState) -> ImmutableState:
            await asyncio.sleep(0)
            return state.update(log=[*state.log, item])

        return fn

    # (manager, whether its function awaits, whether the sender then lets
    # the loop run before its next call), for each call of each sender.
    plans = [
        [
            (rng.randrange(len(managers)), rng.random() < 0.3, rng.random() < 0.3)
            for _ in range(per_sender)
        ]
        for _ in range(senders)
    ]

    async def sender(number: int) -> None:
        calls = []
        for seq, (target, later, pause) in enumerate(plans[number]):
            fn = (append_later if later else append)((number, seq))
            calls.append(asyncio.ensure_future(amodify(managers[target], fn)))
            if pause:
                await asyncio.sleep(0)
        await asyncio.gather(*calls)

    async def main() -> None:
        async with asyncio.timeout(20):
            await asyncio.gather(*(sender(n) for n in range(senders)))

    asyncio.run(main())
    for index, manager in enumerate(managers):
        log = [tuple(item) for item in manager.get_state()["log"]]
        for number in range(senders):
            made = [seq for seq, (target, *_) in enumerate(plans[number]) if target == index]
            assert [seq for who, seq in log if who == number] == made
    assert sum(m.version for m in managers) == senders * per_sender


def test_a_call_made_as_a_waiting_call_is_woken_goes_after_it(runtime: Runtime) -> None:
    """A round is spent, so ``first`` waits; the loop's next round wakes it,
    and ``second``, made right then (before ``first`` has gone on), goes
    after it, not into a free slot ahead of it."""
    spent = [StateMachine("a", TOGGLE, runtime=runtime) for _ in range(ROUND)]
    manager = StateManager({"log": []}, runtime=runtime)

    def append(label: str) -> Callable[[ImmutableState], Any]:
        def fn(state: ImmutableState) -> ImmutableState:
            return state.update(log=[*state.log, label])

        return fn

    async def second() -> Any:
        await asyncio.sleep(0)  # made in the next loop iteration
        return await amodify(manager, append("second"))

    async def main() -> None:
        async with asyncio.timeout(10):
            calls = [asyncio.ensure_future(atransition(m, "b")) for m in spent]
            calls.append(asyncio.ensure_future(amodify(manager, append("first"))))
            calls.append(asyncio.ensure_future(second()))
            await asyncio.gather(*calls)

    asyncio.run(main())
    assert list(manager.get_state()["log"]) == ["first", "second"]


def test_a_loop_runs_at_most_a_round_of_inline_requests_before_its_other_callbacks(
    runtime: Runtime,
) -> None:
    """Many awaited calls on idle actors in one loop iteration: each runs one
    request, at most `ROUND` of them before the loop serves its callbacks;
    and one coroutine awaiting call after call gives the loop back as often."""
    machines = [StateMachine("a", TOGGLE, runtime=runtime) for _ in range(3 * ROUND)]
    manager = StateManager({"n": 0}, runtime=runtime)
    iteration = 0
    ran_in: list[int] = []

    def bump_noting(state: ImmutableState) -> ImmutableState:
        ran_in.append(iteration)
        return state.update(n=state.n + 1)

    async def main() -> int:
        nonlocal iteration
        loop = asyncio.get_running_loop()
        stop = False

        def tick() -> None:  # one call per loop iteration while it runs
            nonlocal iteration
            iteration += 1
            if not stop:
                loop.call_soon(tick)

        loop.call_soon(tick)
        async with asyncio.timeout(10):
            await asyncio.gather(*(atransition(m, "b") for m in machines))
            first = iteration
            for _ in range(4 * ROUND):
                await amodify(manager, bump_noting)
            stop = True
            return first

    first = asyncio.run(main())
    assert all(m.version == 1 for m in machines)
    assert first >= 3  # 3 rounds of calls, never all in one iteration
    assert max(ran_in.count(i) for i in set(ran_in)) <= ROUND
    assert len(set(ran_in)) >= 4  # the awaiting coroutine let the loop run between rounds


def test_a_call_cancelled_while_it_waits_for_a_round_is_never_sent(runtime: Runtime) -> None:
    machines = [StateMachine("a", TOGGLE, runtime=runtime) for _ in range(ROUND + 2)]

    async def main() -> None:
        async with asyncio.timeout(10):
            calls = [asyncio.ensure_future(atransition(m, "b")) for m in machines]
            await asyncio.sleep(0)  # their first steps: a round runs, two wait
            assert [c.done() for c in calls] == [True] * ROUND + [False, False]
            calls[-1].cancel()
            with pytest.raises(asyncio.CancelledError):
                await calls[-1]
            assert (await calls[-2]).version == 1
            assert (await atransition(machines[-1], "b")).version == 1  # sent now

    asyncio.run(main())
    assert [m.version for m in machines] == [1] * len(machines)


def test_an_error_in_an_inline_async_hook_reaches_the_caller_and_frees_the_turn(
    runtime: Runtime,
) -> None:
    flow = MachineBuilder("a", TOGGLE)
    failing = [False, True]  # popped from the end: fails once

    @flow.on_enter("b")
    async def gateway(ctx: Any) -> None:
        await asyncio.sleep(0)
        if failing.pop():
            raise ConnectionError("gateway down")

    machine = StateMachine(flow, runtime=runtime)

    async def main() -> None:
        async with asyncio.timeout(10):
            with pytest.raises(ConnectionError, match="gateway down"):
                await atransition(machine, "b")
            assert machine.version == 0 and machine.current_state == "a"
            assert (await atransition(machine, "b")).version == 1  # inline again

    asyncio.run(main())
    assert machine.restarts == 0 and runtime_threads(runtime) == []


def test_a_crash_in_an_inline_async_hook_is_supervised_as_on_a_worker(runtime: Runtime) -> None:
    flow = MachineBuilder("a", TOGGLE)
    failing = [False, True]  # popped from the end: fails once

    @flow.on_enter("b")
    async def gateway(ctx: Any) -> None:
        await asyncio.sleep(0)
        if failing.pop():
            raise ConnectionError("gateway down")

    machine = StateMachine(flow, runtime=runtime, on_error="restart")

    async def main() -> None:
        async with asyncio.timeout(10):
            with pytest.raises(ActorCrashed) as crashed:
                await atransition(machine, "b")
            assert isinstance(crashed.value.cause, ConnectionError)
            assert machine.restarts == 1  # decided before the caller was answered
            assert (await atransition(machine, "b")).version == 1  # the next incarnation

    asyncio.run(main())
    assert machine.current_state == "b" and machine.stats().failures == 1


def test_a_timed_out_caller_of_an_inline_hook_leaves_the_request_to_commit(
    runtime: Runtime,
) -> None:
    flow = MachineBuilder("a", TOGGLE)
    started = asyncio.Event()
    gate = asyncio.Event()

    @flow.on_enter("b")
    async def slow(ctx: Any) -> None:
        started.set()
        await gate.wait()

    machine = StateMachine(flow, runtime=runtime)

    async def main() -> None:
        async with asyncio.timeout(10):
            with pytest.raises(ActorTimeout) as timed_out:
                await atransition(machine, "b", timeout=0.05)
            assert timed_out.value.started and started.is_set()
            gate.set()
            # Queued behind the held turn or run inline once it is back:
            # either way after the first request, which committed.
            assert (await atransition(machine, "a")).version == 2

    asyncio.run(main())
    assert [r.to_state for r in machine.history] == ["b", "a"]


def test_a_cancelled_caller_of_an_inline_hook_leaves_the_request_to_commit(
    runtime: Runtime,
) -> None:
    flow = MachineBuilder("a", TOGGLE)
    started = asyncio.Event()
    gate = asyncio.Event()
    finished: list[str] = []

    @flow.on_enter("b")
    async def slow(ctx: Any) -> None:
        started.set()
        await gate.wait()
        finished.append("b")

    machine = StateMachine(flow, runtime=runtime)

    async def main() -> None:
        async with asyncio.timeout(10):
            call = asyncio.ensure_future(atransition(machine, "b"))
            await started.wait()
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            gate.set()
            assert (await atransition(machine, "a")).version == 2

    asyncio.run(main())
    assert finished == ["b"] and [r.to_state for r in machine.history] == ["b", "a"]


def test_a_shutdown_giving_up_on_an_inline_hook_cancels_it_and_commits_nothing() -> None:
    runtime = Runtime("gives-up", default_timeout=10.0)
    flow = MachineBuilder("a", TOGGLE)
    started = asyncio.Event()
    cancelled: list[bool] = []

    @flow.on_enter("b")
    async def hangs(ctx: Any) -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # never set
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    machine = StateMachine(flow, runtime=runtime)

    async def main() -> None:
        async with asyncio.timeout(10):
            call = asyncio.ensure_future(atransition(machine, "b"))
            await started.wait()
            # From another thread: it waits 0.2 s for the actor, then fences it.
            await asyncio.to_thread(runtime.shutdown, 0.2)
            with pytest.raises(ActorStopped, match="nothing of that request was committed"):
                await call

    try:
        asyncio.run(main())
    finally:
        runtime.shutdown(timeout=10.0)
    assert cancelled == [True]
    assert machine.version == 0 and machine.snapshot.state == "a"
    assert machine.stats().queue_depth == 0


def test_a_loop_closed_while_an_inline_hook_awaits_holds_no_turn_once_the_actor_is_given_up() -> (
    None
):
    """The caller gave up and its loop closed with the hook's task pending: a
    shutdown that gives up on the actor ends the request on its own thread."""
    runtime = Runtime("closed-loop", default_timeout=10.0)
    flow = MachineBuilder("a", TOGGLE)
    started = asyncio.Event()

    @flow.on_enter("b")
    async def hangs(ctx: Any) -> None:
        started.set()
        await asyncio.Event().wait()  # never set

    machine = StateMachine(flow, runtime=runtime)

    async def call_then_give_up() -> None:
        call = asyncio.ensure_future(atransition(machine, "b"))
        await asyncio.wait_for(started.wait(), 10)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(call_then_give_up())
    finally:
        loop.close()  # the hook's task never ends
    runtime.shutdown(timeout=0.2)  # gives up on the actor after 0.2 s
    assert machine.version == 0 and machine.snapshot.state == "a"
    assert machine._cell.mailbox.turn == 0


def test_an_actor_with_a_deadline_is_not_run_inline_so_its_deadline_applies(
    runtime: Runtime,
) -> None:
    flow = MachineBuilder("a", TOGGLE)
    threads: list[str] = []

    @flow.on_enter("b")
    async def hangs(ctx: Any) -> None:
        threads.append(threading.current_thread().name)
        await asyncio.sleep(10)  # cancelled when the deadline fences it

    machine = StateMachine(flow, runtime=runtime, deadline=0.2)

    async def main() -> None:
        async with asyncio.timeout(10):
            with pytest.raises(ActorCrashed) as crashed:
                await atransition(machine, "b")
            assert isinstance(crashed.value.cause, DeadlineExceeded)

    asyncio.run(main())
    assert threads == [f"stateward:{runtime.name}:event-loop"]
    assert machine.version == 0


def test_an_async_after_commit_hook_never_makes_the_callers_loop_wait(runtime: Runtime) -> None:
    """An after-commit hook that awaits runs on the runtime's event loop, and
    a turn waits for it: such an actor's requests are not run on the loop."""
    flow = MachineBuilder("a", TOGGLE)
    done = threading.Event()

    @flow.after_commit
    async def notify(ctx: Any) -> None:
        await asyncio.sleep(0)
        assert done.wait(10)  # until the caller's loop has run its ticker

    machine = StateMachine(flow, runtime=runtime)

    async def main() -> None:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0)
                ticks += 1
                if ticks == 3:
                    done.set()

        task = asyncio.ensure_future(ticker())
        async with asyncio.timeout(10):
            assert (await atransition(machine, "b")).version == 1
        task.cancel()
        assert ticks >= 3

    asyncio.run(main())


class RecordingStore(SQLiteStore):
    """A SQLite store that notes the thread of every write."""

    def __init__(self, path: Path, durability: str) -> None:
        super().__init__(path, durability=durability)
        self.writers: list[threading.Thread] = []

    def commit(self, name: str, codec: Any, old: Any, new: Any) -> None:
        self.writers.append(threading.current_thread())
        super().commit(name, codec, old, new)

    def write_staged(self, items: list[Any]) -> None:
        self.writers.append(threading.current_thread())
        super().write_staged(items)


@pytest.mark.parametrize("durability", ["strict", "batched", "snapshot"])
def test_a_durable_store_is_never_written_on_the_loops_thread(
    tmp_path: Path, durability: str
) -> None:
    store = RecordingStore(tmp_path / "actors.db", durability)
    with Runtime("durable", store=store, default_timeout=10.0) as runtime:
        machine = StateMachine("a", TOGGLE, name="order", runtime=runtime)
        manager = StateManager({"n": 0}, name="counter", runtime=runtime)

        async def main() -> None:
            async with asyncio.timeout(10):
                for target in ("b", "a", "b"):
                    await atransition(machine, target)
                await amodify(manager, lambda state: state.update(n=state.n + 1))

        asyncio.run(main())
        assert machine.version == 3 and manager.get_state()["n"] == 1
    assert store.writers, "nothing was written"
    assert threading.current_thread() not in store.writers
