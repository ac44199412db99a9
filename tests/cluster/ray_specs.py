"""Definitions the Ray tests create machines from: module-level, so that a
shard's worker imports them by path (the test cluster puts this folder on its
workers' PYTHONPATH)."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

from stateward.core import MachineBuilder, MachineSpec

ORDER = MachineSpec(
    "draft",
    {"draft": ["review"], "review": ["published", "draft"], "published": []},
)

#: A statechart: compound states and a deep history state.
CHART = MachineSpec(
    "off",
    events={
        "power": "off -> on",
        "off": "on -> off",
        "work": "idle -> busy",
        "resume": "off -> on_deep",
    },
    compound={"on": ["idle", "busy"]},
    history={"on_deep": ("on", "deep")},
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


#: A machine that keeps its last 3 transition records.
SHORT_HISTORY = MachineSpec("a", {"a": ["a"]}, history_limit=3)


PAYMENTS = MachineBuilder("pending", {"pending": ["paid"], "paid": []})


@PAYMENTS.guard("paid")
def amount_positive(ctx: Any) -> bool:
    """Runs on the shard: the builder and its hooks are imported there."""
    return bool(ctx.payload.get("amount", 0) > 0)


def log_entry(thread: int, number: int, state: Any) -> dict[str, Any]:
    """A ``modify`` function: append ``[thread, number]`` to the state's log,
    so that the log shows which requests were applied, how often, in what order."""
    return {"log": [*state.get("log", ()), [thread, number]]}


#: A machine that logs every request it applies: ``transition("open",
#: {"by": [thread, number]})`` appends ``[thread, number]`` to its ``log``.
LEDGER = MachineBuilder("open", {"open": ["open"]}, history_limit=1)


@LEDGER.on_enter("open")
def append_to_log(ctx: Any) -> dict[str, Any]:
    _die_once(ctx.payload.get("die_once"))
    if "die_after" in ctx.payload:  # [a file to wait for, the die_once marker]
        go, marker = ctx.payload["die_after"]
        _wait_for_file(go)
        _die_once(marker)
    return {"log": [*ctx.data.get("log", ()), list(ctx.payload["by"])]}


def _wait_for_file(path: str) -> None:
    """Wait (at most 60 s) until ``path`` exists: a hook that runs this
    holds its batch up, so that the shard defers its answer."""
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        threading.Event().wait(0.01)


def _die_once(marker: str | None) -> None:
    """Given a file path that does not exist yet: create it, and SIGKILL this
    process (a shard's), before the request commits."""
    if marker is not None and not os.path.exists(marker):
        with open(marker, "x"):
            pass
        os.kill(os.getpid(), signal.SIGKILL)


#: A machine whose entry hooks log ``payload["n"]`` and, given
#: ``payload["die_once"]`` (a file path), kill their own shard's process the
#: first time (creating that file), before the transition commits.
FLIP = MachineBuilder("x", {"x": ["y"], "y": ["x", "y"]})


@FLIP.on_enter("x")
@FLIP.on_enter("y")
def log_or_die(ctx: Any) -> dict[str, Any]:
    _die_once(ctx.payload.get("die_once"))
    return {"log": [*ctx.data.get("log", ()), ctx.payload["n"]]}
