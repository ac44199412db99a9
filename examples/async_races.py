"""Two races from a well-known chapter on asyncio state, and the same work on stateward.

Both races come from coroutines that read shared state, await something, and
then write back what they computed from their stale read:

- the counter: three coroutines each read the counter, wait 0.1 s and write
  back what they read plus one. Expected 3; the plain code ends at 1.
- the two-step update: two coroutines each add 1, wait 0.1 s, then double.
  Run one after the other the answer is 6 ((0 + 1) * 2 = 2, then
  (2 + 1) * 2 = 6). Run concurrently the steps interleave (+1, +1, *2, *2)
  and the plain code ends at 8. (The chapter prints its expected and actual
  values as 4 and 2; its code, run here, prints 8, and no order of the two
  updates gives 4.)

With stateward the state lives in an actor. ``await manager.amodify(fn)``
sends ``fn`` to it; an async ``fn`` holds the actor's turn while it awaits, so
the next update waits for it and reads what it wrote. No lock in sight, and
the event loop stays free meanwhile: a ticker task keeps ticking.

Run it with ``python examples/async_races.py``.
"""

from __future__ import annotations

import asyncio
import time

from stateward.actors import Runtime, StateManager
from stateward.core import ImmutableState

PAUSE = 0.1  # the chapter's pause between a read and its write


# -- the chapter's code, unchanged in substance ----------------------------------------------


async def plain_counter() -> int:
    counter = 0

    async def increment() -> None:
        nonlocal counter
        read = counter
        await asyncio.sleep(PAUSE)
        counter = read + 1

    await asyncio.gather(increment(), increment(), increment())
    return counter


async def plain_two_steps() -> int:
    state = {"value": 0}

    async def add_then_double() -> None:
        state["value"] += 1
        await asyncio.sleep(PAUSE)
        state["value"] *= 2

    await asyncio.gather(add_then_double(), add_then_double())
    return state["value"]


# -- the same work through an actor --------------------------------------------------------


async def increment(state: ImmutableState) -> ImmutableState:
    read = state.count
    await asyncio.sleep(PAUSE)  # the actor's next update waits for this one
    return state.update(count=read + 1)


async def add_then_double(state: ImmutableState) -> ImmutableState:
    added = state.update(value=state.value + 1)
    await asyncio.sleep(PAUSE)
    return added.update(value=added.value * 2)


async def main(runtime: Runtime) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    ticking = asyncio.create_task(ticker())

    print("the counter (three coroutines, each +1):")
    print(f"  plain coroutines: {await plain_counter()} (expected 3)")
    counter = StateManager({"count": 0}, name="counter", runtime=runtime)
    began = time.perf_counter()
    await asyncio.gather(*(counter.amodify(increment) for _ in range(3)))
    took = time.perf_counter() - began
    print(f"  stateward: {counter.get_state().count} (expected 3)")
    print(f"  the three updates ran one after the other: {took >= 3 * PAUSE}")

    print("the two-step update (two coroutines, each +1 then *2):")
    print(f"  plain coroutines: {await plain_two_steps()} (one after the other gives 6)")
    value = StateManager({"value": 0}, name="value", runtime=runtime)
    await asyncio.gather(value.amodify(add_then_double), value.amodify(add_then_double))
    print(f"  stateward: {value.get_state().value} (expected 6)")

    ticking.cancel()
    print(f"the event loop kept running meanwhile: the ticker ticked > 0 times: {ticks > 0}")


if __name__ == "__main__":
    with Runtime("async-races") as rt:
        asyncio.run(main(rt))
