"""The asyncio cases (issue 15): stateward awaited from an event loop, side by
side with python-statemachine's async engine.

- ``asyncio_one_at_a_time``: one coroutine awaits one transition after the
  other on one machine.
- ``asyncio_in_flight``: one event loop keeps ``async_in_flight`` requests in
  flight over ``async_machines`` machines, while a probe task measures how
  late the loop wakes it from a 1 ms sleep: the loop's lag, which every other
  coroutine of a web service waits too. The same probe on the idle loop runs
  in the same round.

stateward's ``stateward`` rows use the awaited calls (``await
machine.atransition(...)``: an idle actor's request runs on the loop, no
thread hop); the ``stateward-request_transition`` rows await the replies of
``machine.request_transition(...)`` (every request goes to a worker thread
and its reply comes back to the loop), for comparison.

Each round runs its own event loop (``asyncio.run``).
"""

from __future__ import annotations

import asyncio
import collections
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from _harness import Sample, Stopwatch, System, percentile
from _systems import CALL_TIMEOUT, A, B, Counter, Peers, Sizes, check, sample, stateward_toggle

from stateward.actors import Runtime, StateMachine

#: The probe's sleep, in seconds.
PROBE_SLEEP = 0.001
#: How long the probe runs on the idle loop, in seconds.
IDLE_PROBE_SECONDS = 0.3


class LagProbe:
    """Sleeps ``PROBE_SLEEP`` again and again on the loop; each wake-up's
    lateness (seconds past the sleep) is one lag sample."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        clock = time.perf_counter
        while not self._stop.is_set():
            began = clock()
            await asyncio.sleep(PROBE_SLEEP)
            self.lags.append(clock() - began - PROBE_SLEEP)

    def start(self) -> LagProbe:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def stop(self) -> list[float]:
        self._stop.set()
        assert self._task is not None
        await self._task
        return self.lags


def lag_values(prefix: str, lags: list[float]) -> dict[str, float]:
    """p50 and p99 of ``lags``, in ms, under ``prefix``."""
    if not lags:
        return {}
    ordered = sorted(lags)
    return {
        f"{prefix}_p50_ms": statistics.median(ordered) * 1e3,
        f"{prefix}_p99_ms": percentile(ordered, 0.99) * 1e3,
    }


async def idle_lag() -> list[float]:
    probe = LagProbe().start()
    await asyncio.sleep(IDLE_PROBE_SECONDS)
    return await probe.stop()


def psm_async_class(sm: ModuleType) -> type:
    """A python-statemachine toggle whose hook is a coroutine: its async engine."""

    class AsyncToggle(sm.StateMachine):  # type: ignore[name-defined,misc]
        a = sm.State(initial=True)
        b = sm.State()
        go_b = a.to(b)
        go_a = b.to(a)

    return AsyncToggle


class AsyncCounter(Counter):
    """`Counter` with a coroutine hook, for python-statemachine's async engine."""

    __slots__ = ()

    async def on_enter_state(self, *_args: Any) -> None:  # type: ignore[override]
        self.n += 1


async def psm_machine(cls: type) -> tuple[Any, AsyncCounter]:
    counter = AsyncCounter()
    machine = cls(listeners=[counter])
    await machine.activate_initial_state()
    counter.n = 0
    return machine, counter


def run_round(body: Callable[[], Awaitable[Sample]]) -> Sample:
    return asyncio.run(body())


def atransition_of(machine: StateMachine) -> Callable[..., Awaitable[Any]]:
    """``machine.atransition``; a version of stateward without it (``--against``
    an older commit) gets the same call through the handle's ``_acall``, the
    coroutine every ``a*`` call goes through."""
    method: Callable[..., Awaitable[Any]] | None = getattr(machine, "atransition", None)
    if method is not None:
        return method
    from stateward.core._messages import Move

    acall = machine._acall

    async def atransition(target: str) -> Any:
        return await acall(Move((target, None, None)), None)

    return atransition


# -- asyncio_one_at_a_time ------------------------------------------------------------------


def asyncio_one_at_a_time(sizes: Sizes, peers: Peers, scratch: Path) -> list[System]:
    n = sizes.async_calls

    def stateward(awaited: bool) -> Callable[[int], Sample]:
        async def body() -> Sample:
            problems: list[str] = []
            counter = Counter()
            runtime = Runtime("bench-async-1")
            try:
                machine = stateward_toggle(runtime, counter)
                call = atransition_of(machine) if awaited else machine.request_transition
                latencies = [0.0] * n
                clock = time.perf_counter
                timed = Stopwatch().start()
                for i in range(n):
                    began = clock()
                    await call(B if i % 2 == 0 else A)
                    latencies[i] = clock() - began
                timed.stop()
                check(problems, machine.version == n, f"version {machine.version}, not {n}")
                check(problems, counter.n == n, f"the hook ran {counter.n} times, not {n}")
            finally:
                runtime.shutdown(timeout=CALL_TIMEOUT)
            return sample(n, timed, statistics.median(latencies) * 1e6, problems)

        return lambda _round: run_round(body)

    def psm(sm: ModuleType) -> Callable[[int], Sample]:
        cls = psm_async_class(sm)

        async def body() -> Sample:
            problems: list[str] = []
            machine, counter = await psm_machine(cls)
            go_a, go_b = machine.go_a, machine.go_b
            latencies = [0.0] * n
            clock = time.perf_counter
            timed = Stopwatch().start()
            for i in range(n):
                began = clock()
                await (go_b() if i % 2 == 0 else go_a())
                latencies[i] = clock() - began
            timed.stop()
            check(problems, counter.n == n, f"the hook ran {counter.n} times, not {n}")
            return sample(n, timed, statistics.median(latencies) * 1e6, problems)

        return lambda _round: run_round(body)

    systems = [
        System(
            "stateward",
            stateward(True),
            "await machine.atransition(...) one after the other, on one machine",
        ),
        System(
            "stateward-request_transition",
            stateward(False),
            "await machine.request_transition(...) one after the other, on one machine",
        ),
    ]
    if peers.statemachine is not None:
        systems.append(
            System(
                "python-statemachine",
                psm(peers.statemachine),
                "await sm.go_b() / go_a() one after the other; the hook is a coroutine "
                "(its async engine)",
            )
        )
    return systems


# -- asyncio_in_flight ---------------------------------------------------------------------


def asyncio_in_flight(sizes: Sizes, peers: Peers, scratch: Path) -> list[System]:
    machines_n = sizes.async_machines
    window = max(1, sizes.async_in_flight // machines_n)
    per_machine = max(window, sizes.async_total // machines_n)
    total = per_machine * machines_n

    async def drive(machine: StateMachine, awaited: bool) -> int:
        """``per_machine`` requests on ``machine``, ``window`` in flight, in
        order; how many replies came with a version out of order. Awaited:
        each request is a task awaiting ``atransition`` (as a web handler
        would), started in order; else a ``request_transition`` reply."""
        in_flight: collections.deque[Any] = collections.deque()
        if awaited:
            call = atransition_of(machine)
            ensure_future = asyncio.ensure_future

            def request(target: str) -> Any:
                return ensure_future(call(target))
        else:
            request = machine.request_transition
        wrong = expected = 0
        for i in range(per_machine):
            if len(in_flight) >= window:
                expected += 1
                wrong += (await in_flight.popleft()).version != expected
            in_flight.append(request(B if i % 2 == 0 else A))
        while in_flight:
            expected += 1
            wrong += (await in_flight.popleft()).version != expected
        return wrong

    def stateward(awaited: bool) -> Callable[[int], Sample]:
        async def body() -> Sample:
            problems: list[str] = []
            idle = await idle_lag()
            runtime = Runtime("bench-async-flight")
            try:
                machines = [stateward_toggle(runtime, None) for _ in range(machines_n)]
                probe = LagProbe().start()
                timed = Stopwatch().start()
                wrong = sum(
                    await asyncio.wait_for(
                        asyncio.gather(*(drive(m, awaited) for m in machines)),
                        timeout=CALL_TIMEOUT * 10,
                    )
                )
                timed.stop()
                lags = await probe.stop()
                check(problems, wrong == 0, f"{wrong} replies out of order")
                versions = sum(m.version for m in machines)
                check(problems, versions == total, f"{versions} transitions committed, not {total}")
            finally:
                runtime.shutdown(timeout=CALL_TIMEOUT)
            result = sample(total, timed, None, problems)
            result.values.update(lag_values("lag", lags))
            result.values.update(lag_values("idle_lag", idle))
            return result

        return lambda _round: run_round(body)

    def psm_one(sm: ModuleType) -> Callable[[int], Sample]:
        cls = psm_async_class(sm)

        async def body() -> Sample:
            problems: list[str] = []
            machine, counter = await psm_machine(cls)
            go_a, go_b = machine.go_a, machine.go_b
            timed = Stopwatch().start()
            for i in range(total // 10):
                await (go_b() if i % 2 == 0 else go_a())
            timed.stop()
            check(problems, counter.n == total // 10, f"the hook ran {counter.n} times")
            return sample(total // 10, timed, None, problems)

        return lambda _round: run_round(body)

    def detail(_counts: dict[str, int], values: dict[str, float]) -> str:
        if "lag_p99_ms" not in values:
            return ""
        return (
            f"loop lag while it ran: p50 {values['lag_p50_ms']:.2f} ms, p99 "
            f"{values['lag_p99_ms']:.2f} ms; on the idle loop: p50 "
            f"{values.get('idle_lag_p50_ms', float('nan')):.2f} ms, p99 "
            f"{values.get('idle_lag_p99_ms', float('nan')):.2f} ms (a {PROBE_SLEEP * 1e3:.0f} ms "
            "sleep probe)"
        )

    flight = (
        f"{total:,} transitions over {machines_n} machines from one event loop, "
        f"{window} requests in flight per machine ({window * machines_n:,} in all)"
    )
    systems = [
        System(
            "stateward",
            stateward(True),
            f"{flight}, each a task awaiting machine.atransition(...)",
            detail,
        ),
        System(
            "stateward-request_transition",
            stateward(False),
            f"{flight}, each an awaited machine.request_transition(...) reply",
            detail,
        ),
    ]
    if peers.statemachine is not None:
        systems.append(
            System(
                "python-statemachine-one-at-a-time",
                psm_one(peers.statemachine),
                "await sm.go_b() / go_a() one after the other on one machine (its async engine)",
            )
        )
    return systems
