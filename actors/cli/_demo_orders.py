"""The demo's workload: its order machine, the client threads that drive it,
and what they saw acknowledged."""

from __future__ import annotations

import functools
import itertools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stateward.actors import ActorCrashed, StateMachine, StateManager
from stateward.core import InvalidTransition, MachineBuilder, MachineSpec

#: The order lifecycle the demo drives; ``delivered -> pending`` starts the next
#: order, so each machine can keep going for as long as the demo runs.
ORDER_MOVES = {
    "pending": ["paid", "cancelled"],
    "paid": ["packed", "cancelled"],
    "packed": ["shipped"],
    "shipped": ["delivered"],
    "delivered": ["pending"],
    "cancelled": ["pending"],
}
#: The path a client pushes each order along.
NEXT = {
    "pending": "paid",
    "paid": "packed",
    "packed": "shipped",
    "shipped": "delivered",
    "delivered": "pending",
    "cancelled": "pending",
}
#: How many machines one fan-out reaches (one pipelined transition each).
FANOUT = 16
#: Seconds a client waits for one reply: far above any commit, finite.
REPLY_TIMEOUT = 60.0


class InjectedCrash(RuntimeError):
    """The failure the demo injects into a seeded fraction of its transitions."""


def order_spec(history_limit: int = 50) -> MachineSpec:
    """The demo's order machine: an enter hook counts deliveries, and crashes on
    purpose when the payload asks it to."""
    orders = MachineBuilder("pending", ORDER_MOVES, history_limit=history_limit, name="order")

    @orders.on_enter
    def enter(ctx: Any) -> Any:
        if ctx.payload.get("crash"):
            raise InjectedCrash(f"injected crash in {ctx.machine} at version {ctx.version}")
        if ctx.target == "delivered":
            return {"delivered": ctx.data.get("delivered", 0) + 1}
        return None

    return orders.build()


#: The order machine at module level: a `RayRuntime` sends it to its shards by
#: import path (``stateward demo --ray``), where this module is imported again.
ORDER = order_spec()


@dataclass
class Ledger:
    """What the clients saw acknowledged, per machine.

    ``live`` holds one running count of acknowledged transitions per client,
    each written by its own client only, so progress can add them up without
    a lock and without visiting every machine.
    """

    clients: int
    acked: dict[str, int] = field(default_factory=dict)
    crashed: dict[str, int] = field(default_factory=dict)
    crashes: int = 0
    refused: int = 0
    modifies: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    live: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.live = [0] * self.clients


class _Tally:
    """One client's own counts, merged into the `Ledger` when it ends."""

    def __init__(self, index: int, ledger: Ledger) -> None:
        self.index = index
        self.ledger = ledger
        self.acked: dict[str, int] = {}
        self.crashed: dict[str, int] = {}
        self.crashes = self.refused = self.modifies = 0
        self.total = 0

    def settle(self, machine: StateMachine, outcome: Callable[[], object]) -> None:
        """Wait for one transition on ``machine`` (``outcome()`` returns once it
        is committed, or raises) and count how it ended."""
        try:
            outcome()
        except ActorCrashed as exc:
            if not isinstance(exc.cause, InjectedCrash):
                raise
            self.crashes += 1
            self.crashed[machine.name] = self.crashed.get(machine.name, 0) + 1
        except InjectedCrash:  # on_error="fail" (a RayRuntime): it failed its transition only
            self.crashes += 1
            self.crashed[machine.name] = self.crashed.get(machine.name, 0) + 1
        except InvalidTransition:
            self.refused += 1  # an earlier link of its chain crashed
        else:
            self.acked[machine.name] = self.acked.get(machine.name, 0) + 1
            self.total += 1
            self.ledger.live[self.index] = self.total

    def merge(self) -> None:
        ledger = self.ledger
        with ledger.lock:
            for name, count in self.acked.items():
                ledger.acked[name] = ledger.acked.get(name, 0) + count
            for name, count in self.crashed.items():
                ledger.crashed[name] = ledger.crashed.get(name, 0) + count
            ledger.crashes += self.crashes
            ledger.refused += self.refused
            ledger.modifies += self.modifies


def client(
    index: int,
    machines: list[StateMachine],
    totals: StateManager,
    ledger: Ledger,
    deadline: float,
    seed: int,
    crash_rate: float,
) -> None:
    """Drive ``machines`` (this client's own share) until ``deadline``.

    Each round picks, by a seeded generator: one blocking transition (50%), a
    pipelined chain of three transitions on one machine (25%), a fan-out of one
    pipelined transition on each of `FANOUT` machines (15%), or a ``modify``
    on the shared totals (10%). A seeded fraction ``crash_rate`` of the
    transitions asks the enter hook to crash the machine.
    """
    rng = random.Random(seed * 1_000 + index)
    tally = _Tally(index, ledger)

    def payload() -> dict[str, bool] | None:
        return {"crash": True} if rng.random() < crash_rate else None

    try:
        while time.monotonic() < deadline:
            roll = rng.random()
            if roll < 0.5:  # one blocking transition, answered when its commit is durable
                machine = machines[rng.randrange(len(machines))]
                target, data = NEXT[machine.current_state], payload()
                tally.settle(machine, functools.partial(machine.transition, target, data))
            elif roll < 0.75:  # a pipelined chain of three on one machine
                machine = machines[rng.randrange(len(machines))]
                state = machine.current_state
                chain = []
                for _ in range(3):
                    state = NEXT[state]
                    chain.append(machine.request_transition(state, payload()))
                for reply in chain:
                    tally.settle(machine, functools.partial(reply.result, REPLY_TIMEOUT))
            elif roll < 0.9:  # a fan-out: one pipelined transition on each of several machines
                picked = [
                    machines[i]
                    for i in rng.sample(range(len(machines)), min(FANOUT, len(machines)))
                ]
                replies = [m.request_transition(NEXT[m.current_state], payload()) for m in picked]
                for machine, reply in zip(picked, replies, strict=True):
                    tally.settle(machine, functools.partial(reply.result, REPLY_TIMEOUT))
            else:  # an atomic read-modify-write on the shared totals
                totals.modify(lambda s: s.update(modifies=s.modifies + 1))
                tally.modifies += 1
    except Exception as exc:  # reported as a failed check, never only logged
        with ledger.lock:
            ledger.errors.append(f"client {index}: {exc!r}")
    tally.merge()


def check_history(machine: StateMachine) -> str | None:
    """What is wrong with ``machine``'s history, or None if it fits its state."""
    history = machine.history
    if not history:
        return None if machine.version == 0 else "no history kept"
    if history[-1].version != machine.version or history[-1].to_state != machine.current_state:
        return (
            f"history ends at v{history[-1].version} {history[-1].to_state!r}, machine is "
            f"v{machine.version} {machine.current_state!r}"
        )
    for earlier, later in itertools.pairwise(history):
        if later.version != earlier.version + 1 or later.from_state != earlier.to_state:
            return f"history breaks between v{earlier.version} and v{later.version}"
        if later.to_state not in ORDER_MOVES[later.from_state]:
            return f"v{later.version} moved {later.from_state!r} -> {later.to_state!r}"
    return None
