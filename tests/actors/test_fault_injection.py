"""Fault injection: numbered modifies from 4 threads while seeded random messages
crash the actor. Every acknowledged message is applied exactly once and in its
sender's order; every crashed one is applied zero times."""

from __future__ import annotations

import random

import pytest
from support import Workers

from stateward.actors import ActorCrashed, Reply, Runtime, StateManager, Supervisor
from stateward.core import ImmutableState

#: Every behaviour here holds on each host (thread per actor, and pooled).
pytestmark = pytest.mark.usefixtures("each_host")

SEED = 4242
THREADS = 4
PER_THREAD = 2_500  # 10,000 messages in all
CRASH_RATE = 0.02
WINDOW = 64  # requests a pipelining sender keeps in flight


def chain(previous: int, number: int) -> int:
    """A running fingerprint of the order of applied numbers."""
    return (previous * 1_000_003 + number + 1) % (2**61 - 1)


class Injected(RuntimeError):
    """The crash a test message asks for."""


def apply(sender: int, number: int, crash: bool):
    def fn(state: ImmutableState) -> ImmutableState:
        if crash:
            raise Injected(f"injected crash at {sender}:{number}")
        key = f"t{sender}"
        mine = state[key]
        return state.update(
            {
                key: {
                    "count": mine["count"] + 1,
                    "last": number,
                    "chain": chain(mine["chain"], number),
                    "disorder": mine["disorder"] + (number <= mine["last"]),
                }
            }
        )

    return fn


@pytest.mark.parametrize("inline", [True, False])
def test_crashes_lose_nothing_acknowledged_and_apply_nothing_that_failed(
    inline: bool, workers: Workers
) -> None:
    rng = random.Random(SEED)
    crashing = {
        (t, n) for t in range(THREADS) for n in range(PER_THREAD) if rng.random() < CRASH_RATE
    }
    start = {f"t{t}": {"count": 0, "last": -1, "chain": 0, "disorder": 0} for t in range(THREADS)}
    acked: dict[int, list[int]] = {t: [] for t in range(THREADS)}
    failed: dict[int, list[int]] = {t: [] for t in range(THREADS)}

    with Runtime("faults", inline_calls=inline, default_timeout=60) as runtime:
        sup = Supervisor("faults", runtime=runtime, max_restarts=10_000, within=60.0)
        store = StateManager(start, runtime=runtime, supervisor=sup, on_error="restart")

        def settle(sender: int, number: int, reply: Reply[ImmutableState]) -> None:
            try:
                reply.result(timeout=60)
            except ActorCrashed as exc:
                if not isinstance(exc.cause, Injected):
                    raise
                failed[sender].append(number)
            else:
                acked[sender].append(number)

        def blocking_sender(sender: int) -> None:
            for number in range(PER_THREAD):
                try:
                    store.modify(apply(sender, number, (sender, number) in crashing))
                except ActorCrashed as exc:
                    if not isinstance(exc.cause, Injected):
                        raise
                    failed[sender].append(number)
                else:
                    acked[sender].append(number)

        def pipelining_sender(sender: int) -> None:
            in_flight: list[tuple[int, Reply[ImmutableState]]] = []
            for number in range(PER_THREAD):
                crash = (sender, number) in crashing
                in_flight.append((number, store.request_modify(apply(sender, number, crash))))
                if len(in_flight) >= WINDOW:
                    settle(sender, *in_flight.pop(0))
            for number, reply in in_flight:
                settle(sender, number, reply)

        for sender in range(THREADS):
            workers.start(blocking_sender if sender % 2 else pipelining_sender, sender)
        workers.join(timeout=300)
        final = store.get_state()
        restarts = store.restarts
        assert runtime.fatal is None

    for sender in range(THREADS):
        expected_failed = sorted(n for t, n in crashing if t == sender)
        assert failed[sender] == expected_failed
        assert acked[sender] == [n for n in range(PER_THREAD) if (sender, n) not in crashing]
        model = {"count": 0, "last": -1, "chain": 0, "disorder": 0}
        for number in acked[sender]:  # replay the acknowledged messages, in order
            model = {
                "count": model["count"] + 1,
                "last": number,
                "chain": chain(model["chain"], number),
                "disorder": 0,
            }
        assert final[f"t{sender}"] == model
    assert restarts == len(crashing)
    assert 100 < len(crashing) < 300  # the seed gives a meaningful number of crashes
