"""Definitions the Ray tests create machines from: module-level, so that a
shard's worker imports them by path (the test cluster puts this folder on its
workers' PYTHONPATH)."""

from __future__ import annotations

from typing import Any

from stateward.core import MachineBuilder, MachineSpec

ORDER = MachineSpec(
    "draft",
    {"draft": ["review"], "review": ["published", "draft"], "published": []},
)


def record(thread: int, number: int, state: Any) -> dict[str, Any]:
    """A ``modify`` function: thread ``thread`` sent its request ``number``.
    Counts an inversion when the requests of one thread arrive out of order."""
    values = dict(state)
    key = f"t{thread}"
    last = values.get(key, -1)
    values[key] = number
    values["inversions"] = values.get("inversions", 0) + (number != last + 1)
    return values


PAYMENTS = MachineBuilder("pending", {"pending": ["paid"], "paid": []})


@PAYMENTS.guard("paid")
def amount_positive(ctx: Any) -> bool:
    """Runs on the shard: the builder and its hooks are imported there."""
    return bool(ctx.payload.get("amount", 0) > 0)
