"""Definitions the behaviour suite of the handles creates its actors from, on
every host (a thread, a worker pool, a Ray shard): module-level, so that a
shard's worker imports them by path (the test cluster puts this folder on
its workers' PYTHONPATH). Module-level records (``STARTS``, ``ARRIVED``)
live in the process that runs the actors: the test's own, or a shard's.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

from stateward.core import MachineBuilder

#: A request's tenant: registered for propagation to Ray shards by the tests.
TENANT: contextvars.ContextVar[str] = contextvars.ContextVar("behaviour_specs_tenant")
#: Never registered: its value stays in the caller's process.
LOCAL_ONLY: contextvars.ContextVar[str] = contextvars.ContextVar("behaviour_specs_local")

ORDERS = MachineBuilder(
    "pending",
    {
        "pending": ["paid", "cancelled"],
        "paid": ["shipped", "cancelled"],
        "shipped": [],
        "cancelled": [],
    },
)


@ORDERS.guard("paid")
def amount_positive(ctx: Any) -> bool:
    """Vetoes a payment of nothing."""
    return bool(ctx.payload.get("amount", 0) > 0)


@ORDERS.event("ship", "paid", "shipped")
def ship(ctx: Any) -> dict[str, Any]:
    """Records the carrier, and the tenant the request's context says, as
    seen where the effect runs."""
    return {"carrier": ctx.payload.get("carrier", "post"), "tenant": TENANT.get("unset")}


@ORDERS.on_enter("cancelled")
def refuse_an_exploding_cancel(ctx: Any) -> None:
    """Raises before the commit when asked to: the move rolls back."""
    if ctx.payload.get("explode"):
        raise RuntimeError("the cancel exploded")


def tenant_of(state: Any) -> dict[str, Any]:
    """A ``modify`` function: records the tenant its request carried (and
    ``LOCAL_ONLY``, where it runs)."""
    return {**state, "tenant": TENANT.get("unset"), "local": LOCAL_ONLY.get("absent")}


def add(key: str, amount: int, state: Any) -> dict[str, Any]:
    """A ``modify`` function: adds ``amount`` to ``state[key]``."""
    return {**state, key: state.get(key, 0) + amount}


def explode(state: Any) -> dict[str, Any]:
    raise ValueError("modify exploded")


#: How many times each key's ``on_start`` ran, in this process.
STARTS: dict[str, int] = {}


def count_start(key: str, view: Any) -> None:
    """An ``on_start``: counts the starts of ``key`` (at every restart too)."""
    STARTS[key] = STARTS.get(key, 0) + 1


def starts_of(key: str, state: Any) -> dict[str, Any]:
    """A ``modify`` function: records how often ``key`` started, where it runs."""
    return {**state, "starts": STARTS.get(key, 0)}


# -- an async hook that waits for another actor of its shard ---------------------------

WAITER = MachineBuilder("idle", {"idle": ["done"], "done": []})
SIGNAL = MachineBuilder("off", {"off": ["on"], "on": []})
#: Keys announced by a SIGNAL, and the guards waiting for one.
ARRIVED: set[str] = set()
_WAITING: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}
_LOCK = threading.Lock()


@WAITER.guard("done")
async def signal_arrived(ctx: Any) -> bool:
    """Waits (at most 20 s, without holding a worker) for a SIGNAL machine to
    announce ``ctx.payload["for"]``; vetoes if none does."""
    key = ctx.payload["for"]
    event = asyncio.Event()
    with _LOCK:
        if key in ARRIVED:
            return True
        _WAITING[key] = (asyncio.get_running_loop(), event)
    try:
        async with asyncio.timeout(20):
            await event.wait()
    except TimeoutError:
        return False
    return True


def is_waiting(key: str, state: Any) -> dict[str, Any]:
    """A ``modify`` function: whether a WAITER's guard waits for ``key``
    (in the process that runs it: a probe on the same shard)."""
    with _LOCK:
        return {**state, "waiting": key in _WAITING}


@SIGNAL.on_enter("on")
def announce(ctx: Any) -> None:
    key = ctx.payload["key"]
    with _LOCK:
        ARRIVED.add(key)
        waiting = _WAITING.pop(key, None)
    if waiting is not None:
        loop, event = waiting
        loop.call_soon_threadsafe(event.set)
