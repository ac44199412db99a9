"""A child process that commits as fast as it can until the parent kills it with SIGKILL.

Run as ``python tests/stores/crash_child.py PATH MODE SEED``. It opens
``SQLiteStore(PATH, durability=MODE)``, creates (or recovers: the names are the
same on every run) its actors, prints one ``READY`` line with the versions it
recovered, then commits forever and prints ``ACK <actor> <version>`` after
each acknowledged commit:

- ``strict`` and ``snapshot``: one thread, alternating ``counter.modify`` and
  ``door.transition``, so at most one request is in flight in the process;
- ``batched``: one thread per actor (four counters and the door), so the
  store's writer thread really gathers commits from several actors in one batch;
  each actor still has at most one request in flight.

It never exits on its own while the parent lives. Its stdin is a pipe from the
parent: when that reaches end of file (the parent died without killing it),
the child exits, so an interrupted test run leaves no orphan behind.

The test (``test_crash.py``) imports this module for `open_actors` and the
model checks, so the definitions it recovers with are the very same.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from stateward.actors import Runtime, SQLiteStore, StateMachine, StateManager
from stateward.core import MachineBuilder, MachineSnapshot

#: Journal entries between snapshots: small, so kills land around snapshot writes too.
SNAPSHOT_EVERY = 7
#: Seconds between snapshot writes in snapshot mode.
SNAPSHOT_INTERVAL = 0.05
#: The counters of each mode (the door is always there too).
COUNTERS = {
    "strict": ["counter"],
    "snapshot": ["counter"],
    "batched": [f"counter-{i}" for i in range(4)],
}
DOOR = "door"
#: How long one commit may take before the child gives up (it then exits with an error).
COMMIT_TIMEOUT = 30.0


def door_spec() -> Any:
    """The door: closed <-> open; its enter hook counts the toggles in the machine's data."""
    builder = MachineBuilder("closed", {"closed": ["open"], "open": ["closed"]})

    @builder.on_enter
    def count_toggle(ctx: Any) -> dict[str, int]:
        return {"toggles": ctx.data.toggles + 1}

    return builder.build()


def open_store(path: str, mode: str) -> SQLiteStore:
    return SQLiteStore(
        path,
        durability=mode,
        # In snapshot mode snapshot_every would write a snapshot early: make the
        # interval alone decide, as the loss bound under test is the interval's.
        snapshot_every=SNAPSHOT_EVERY if mode != "snapshot" else 10**9,
        snapshot_interval=SNAPSHOT_INTERVAL,
    )


def open_actors(runtime: Runtime, mode: str) -> tuple[dict[str, StateManager], StateMachine]:
    """Create or recover the counters and the door of ``mode`` in ``runtime``."""
    counters = {name: StateManager({"n": 0}, name=name, runtime=runtime) for name in COUNTERS[mode]}
    door = StateMachine(door_spec(), name=DOOR, runtime=runtime, data={"toggles": 0})
    return counters, door


def door_state(version: int) -> str:
    """The door's state after ``version`` toggles (it starts closed)."""
    return "open" if version % 2 else "closed"


def model_problems(counters: Mapping[str, StateManager], door: StateMachine) -> list[str]:
    """Where the recovered values differ from the model of what the child does (none: [])."""
    problems = []
    for name, counter in counters.items():
        state, version = counter.get_state(), counter.version
        if state.to_dict() != {"n": version}:
            problems.append(f"{name}: state {state.to_dict()} at version {version}")
    problems += machine_problems(door.snapshot)
    return problems


def machine_problems(snapshot: MachineSnapshot) -> list[str]:
    """How a door snapshot differs from the model: the state, the data and the history."""
    version = snapshot.version
    problems = []
    if snapshot.state != door_state(version):
        problems.append(f"door: state {snapshot.state!r} at version {version}")
    if snapshot.data.to_dict() != {"toggles": version}:
        problems.append(f"door: data {snapshot.data.to_dict()} at version {version}")
    history = snapshot.history
    expected = list(range(max(1, version - len(history) + 1), version + 1))
    if [r.version for r in history] != expected:
        problems.append(f"door: history versions {[r.version for r in history]} at {version}")
    for record in history:
        if (record.from_state, record.to_state) != (
            door_state(record.version - 1),
            door_state(record.version),
        ):
            problems.append(
                f"door: history record {record.version} goes {record.from_state!r} -> "
                f"{record.to_state!r}"
            )
    if version and not history:
        problems.append(f"door: no history at version {version}")
    return problems


class _Output:
    """Whole lines on stdout from several threads, each flushed at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        with self._lock:
            print(text, flush=True)


def _drive(
    out: _Output,
    rng: random.Random,
    counters: list[StateManager],
    door: StateMachine | None,
) -> None:
    """Commit forever, round robin over ``counters`` and ``door``, acknowledging each."""
    try:
        while True:
            for counter in counters:
                state = counter.modify(lambda s: s.update(n=s.n + 1), timeout=COMMIT_TIMEOUT)
                out.line(f"ACK {counter.name} {state.n}")
                _jitter(rng)
            if door is not None:
                target = "closed" if door.current_state == "open" else "open"
                snapshot = door.transition(target, timeout=COMMIT_TIMEOUT)
                out.line(f"ACK {door.name} {snapshot.version}")
                _jitter(rng)
    except BaseException as exc:  # tell the parent, then end the process: never hang
        out.line(f"ERROR {threading.current_thread().name}: {exc!r}")
        os._exit(2)


def _jitter(rng: random.Random) -> None:
    # Not synchronisation: a tiny, seeded pause now and then varies where the kill lands.
    if rng.random() < 0.1:
        time.sleep(rng.random() * 0.002)


def main(argv: list[str]) -> None:
    path, mode, seed = argv[1], argv[2], int(argv[3])
    out = _Output()
    runtime = Runtime("crash-child", store=open_store(path, mode), default_timeout=COMMIT_TIMEOUT)
    counters, door = open_actors(runtime, mode)
    versions = " ".join(f"{h.name}={h.version}" for h in [*counters.values(), door])
    out.line(f"READY {versions}")
    if mode == "batched":
        plans: list[tuple[list[StateManager], StateMachine | None]] = [
            ([counter], None) for counter in counters.values()
        ]
        plans.append(([], door))
    else:
        plans = [(list(counters.values()), door)]
    for index, (handles, machine) in enumerate(plans):
        threading.Thread(
            target=_drive,
            args=(out, random.Random(seed * 100 + index), handles, machine),
            name=f"driver-{index}",
            daemon=True,
        ).start()
    # The drivers run until SIGKILL. Waiting here on stdin is not synchronisation:
    # end of file means the parent is gone, and the child must not outlive it.
    sys.stdin.read()
    os._exit(3)


if __name__ == "__main__":
    main(sys.argv)
