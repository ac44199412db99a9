"""pending_timers: many machines with a pending state timeout on the pooled host.

Each round creates ``sizes.spawn`` machines (100,000; 1,000 with --quick)
whose initial state has a timeout, on a pooled runtime whose timer is a
`ManualClock` (its wall clock follows it), so the round decides when time
passes. It reports:

- the threads the runtime has once every timer is armed, and once they have
  all fired (its pool, at most: the timers add none; a `SystemClock` would
  add its one timer thread);
- the memory per pending timer: the tracemalloc peak of creating the machines
  with a timeout, less that of creating as many without one, per machine
  (one untimed pass each, after the rounds);
- the time from moving the clock past every due time to the last machine's
  transition by its timeout (``fire_s``), and the rate (timers fired per second).
"""

from __future__ import annotations

import threading
import tracemalloc
from pathlib import Path
from typing import Any

from _harness import Sample, Stopwatch, System
from _systems import Peers, Sizes, check, sample

from stateward.actors import ManualClock, Runtime, StateMachine
from stateward.core import MachineBuilder, MachineSpec

TIMEOUT = 3600.0
WAIT = 600.0


def _spec(timed: bool, fired: list[int], done: threading.Event, n: int) -> MachineSpec:
    builder = MachineBuilder(
        "pending",
        events={"expire": "pending -> expired", "pay": "pending -> paid"},
        timeouts={"pending": (TIMEOUT, "expire")} if timed else None,
    )
    lock = threading.Lock()

    @builder.after_commit(event="expire")
    def count(ctx: Any) -> None:
        with lock:
            fired[0] += 1
            if fired[0] == n:
                done.set()

    return builder.build()


def pending_timers(sizes: Sizes, peers: Peers, scratch: Path) -> list[System]:
    """See the module."""
    n = sizes.spawn

    def measure(round_no: int) -> Sample:
        fired = [0]
        done = threading.Event()
        spec = _spec(True, fired, done, n)
        clock = ManualClock()
        threads_before = threading.active_count()
        runtime = Runtime("bench-timers", timer=clock, clock=clock.wall_clock, default_timeout=120)
        problems: list[str] = []
        try:
            created = Stopwatch().start()
            machines = [StateMachine(spec, runtime=runtime) for _ in range(n)]
            created.stop()
            threads = threading.active_count() - threads_before
            pending = runtime.machine_timers.pending()
            check(problems, pending == n, f"{pending} timers armed, not {n}")
            fire = Stopwatch().start()
            clock.advance(TIMEOUT)
            check(problems, done.wait(WAIT), f"{n - fired[0]} timers did not fire")
            fire.stop()
            fired_threads = threading.active_count() - threads_before
            left = [m for m in machines if m.current_state != "expired"]
            check(problems, not left, f"{len(left)} machines did not expire")
        finally:
            runtime.shutdown(timeout=600)
        result = sample(n, fire, None, problems)
        result.values.update(
            {
                "threads": float(threads),
                "threads_after_firing": float(fired_threads),
                "workers": float(runtime.workers),
                "create_s": created.wall,
                "fire_s": fire.wall,
            }
        )
        return result

    def memory(timed: bool) -> tuple[float, int]:
        spec = _spec(timed, [0], threading.Event(), n)
        clock = ManualClock()
        runtime = Runtime("bench-timers-memory", timer=clock, clock=clock.wall_clock)
        tracemalloc.start()
        try:
            made = [StateMachine(spec, runtime=runtime) for _ in range(n)]
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        count = len(made)
        del made
        runtime.shutdown(timeout=600)
        return float(peak), count

    def finish(samples: list[Sample]) -> dict[str, Any]:
        with_timer, count = memory(True)
        without, _ = memory(False)
        samples[0].values["bytes_per_pending_timer"] = (with_timer - without) / count
        samples[0].values["bytes_per_machine_with_timer"] = with_timer / count
        return {"machines": n}

    def detail(_counts: dict[str, int], values: dict[str, float]) -> str:
        return (
            f"{n:,} machines with a pending timeout: threads +{values.get('threads', 0):,.0f} "
            f"armed, +{values.get('threads_after_firing', 0):,.0f} once fired "
            f"(a pool of {values.get('workers', 0):,.0f}), "
            f"{values.get('bytes_per_pending_timer', float('nan')):,.0f} B per pending timer "
            f"({values.get('bytes_per_machine_with_timer', float('nan')):,.0f} B per machine), "
            f"created in {values.get('create_s', 0):.2f} s, all fired in "
            f"{values.get('fire_s', 0):.2f} s"
        )

    note = "stateward, pooled host, ManualClock: timers fired per second"
    return [System("stateward", measure, note, detail, finish, judge_by="cpu")]
