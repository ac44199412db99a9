"""A child process that leaves durable timers pending, then waits to be killed.

Run as ``python tests/stores/timer_crash_child.py PATH MODE COUNT``. It opens
``SQLiteStore(PATH, durability=MODE)`` under a runtime whose timer is a
`ManualClock` that never moves (so no timer fires here) and whose wall clock
stands at `START`, creates ``COUNT`` machines of `orders` named ``order-<i>``,
and for each ``i``:

- ``i % 3 == 0``: ``pay``: its state timeout is cancelled by the later state,
  so it must never fire;
- ``i % 3 == 1``: left ``pending``: its state timeout (`TIMEOUT` seconds) is pending;
- ``i % 3 == 2``: ``hold``: entering ``held`` starts the named timer
  ``release`` (`RELEASE` seconds), pending.

Every commit is acknowledged (durable) before the next request. It then
prints ``READY`` and blocks on stdin until the parent kills it (or, when the
parent dies without killing it, reaches end of file and exits).

The test (``test_timer_crash.py``) imports this module for `orders` and the
constants, so it recovers with the very same definition.
"""

from __future__ import annotations

import datetime as dt
import sys

from stateward.actors import ManualClock, Runtime, SQLiteStore, StateMachine
from stateward.core import MachineBuilder, MachineSpec

#: The wall-clock time of every commit in the child.
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
#: The state timeout of ``pending``, in seconds.
TIMEOUT = 60
#: The named timer started on entering ``held``, in seconds.
RELEASE = 120


def orders() -> MachineSpec:
    builder = MachineBuilder(
        "pending",
        events={
            "pay": "pending -> paid",
            "expire": "pending -> expired",
            "hold": "pending -> held",
            "release": "held -> released",
        },
        timeouts={"pending": (TIMEOUT, "expire")},
    )

    @builder.on_enter("held")
    def start_release(ctx):  # type: ignore[no-untyped-def]
        ctx.start_timer("release", RELEASE, "release")

    return builder.build()


def kind(i: int) -> str:
    """What the child did to ``order-<i>``: ``paid``, ``pending`` or ``held``."""
    return ("paid", "pending", "held")[i % 3]


def main() -> None:
    path, mode, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    clock = ManualClock(wall=START)
    runtime = Runtime(
        "child", store=SQLiteStore(path, durability=mode), timer=clock, clock=clock.wall_clock
    )
    spec = orders()
    for i in range(count):
        machine = StateMachine(spec, name=f"order-{i}", runtime=runtime)
        if kind(i) == "paid":
            machine.trigger("pay")
        elif kind(i) == "held":
            machine.trigger("hold")
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    sys.stdin.read()  # until the parent kills us, or dies


if __name__ == "__main__":
    main()
