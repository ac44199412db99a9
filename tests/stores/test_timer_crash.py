"""Durable timers survive ``kill -9``: each pending timer fires exactly once
after recovery, and one cancelled by a later state never does.

A child process (`timer_crash_child.py`) leaves timers pending in a SQLite
file store and is killed with SIGKILL. This process then recovers the store
with the same definition, later by the wall clock than every timer's due
time or around it, and lets time pass on a `ManualClock`: `serve_timers`
starts the machines whose timers fall due (no one touches them), each fires
once; a second recovery, later still, fires nothing more.

The count of machines is small in CI; set ``STATEWARD_TIMER_CRASH_COUNT``
(a multiple of 3, say 3000) for a larger run.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import queue
import signal
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest

from stateward.actors import ManualClock, Runtime, SQLiteStore, StateMachine, serve_timers

CHILD = Path(__file__).with_name("timer_crash_child.py")


def _load_child() -> types.ModuleType:
    """The child's module, for its definition and constants (not on sys.path)."""
    spec = importlib.util.spec_from_file_location("stateward_timer_crash_child", CHILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


child = _load_child()

COUNT = int(os.environ.get("STATEWARD_TIMER_CRASH_COUNT", "12"))
WAIT = 30.0
FINAL = {"paid": "paid", "pending": "expired", "held": "released"}


def run_child_and_kill(path: Path, mode: str) -> None:
    """Start the child, wait (bounded) for its READY, then SIGKILL it."""
    proc = subprocess.Popen(
        [
            sys.executable,
            str(CHILD),
            str(path),
            mode,
            str(COUNT),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines: queue.Queue[bytes] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        try:
            line = lines.get(timeout=WAIT + COUNT * 0.05)
        except queue.Empty:
            line = b""
        assert line == b"READY\n", (
            f"the child did not get ready: {proc.stderr.read() if proc.poll() is not None else ''}"
        )  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(WAIT)
        reader.join(WAIT)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("mode", ["strict", "batched"])
@pytest.mark.parametrize("down", [30, 90], ids=["down-30s", "down-90s"])
def test_each_pending_timer_fires_once_after_kill_9_and_cancelled_ones_never(
    tmp_path: Path, mode: str, down: int
) -> None:
    path = tmp_path / "timers.db"
    run_child_and_kill(path, mode)
    spec = child.orders()
    names = [f"order-{i}" for i in range(COUNT)]

    # The process was down ``down`` seconds: past the 60 s timeouts or not yet.
    clock = ManualClock(wall=child.START + dt.timedelta(seconds=down))
    with Runtime(
        "recovered", store=SQLiteStore(path, durability=mode), timer=clock, clock=clock.wall_clock
    ) as runtime:
        service = serve_timers(runtime, {"order-": spec}, every=20)
        clock.advance(child.RELEASE)  # every timer is due by now
        timed = [n for i, n in enumerate(names) if child.kind(i) != "paid"]
        assert sorted(service.started) == sorted(timed)  # no one touched them
        for i, name in enumerate(names):
            if name in timed:
                final = runtime.get(name).wait_until(FINAL[child.kind(i)], timeout=WAIT)
                assert final.timers == ()
        service.close()

    # Later still, in another runtime: nothing fires again, nothing cancelled ever fired.
    later = ManualClock(wall=child.START + dt.timedelta(hours=1))
    with Runtime(
        "later", store=SQLiteStore(path, durability=mode), timer=later, clock=later.wall_clock
    ) as runtime:
        service = serve_timers(runtime, {"order-": spec}, every=20)
        assert service.started == []
        later.advance(3600)
        for i, name in enumerate(names):
            machine = StateMachine(spec, name=name, runtime=runtime)
            events = [r.event for r in machine.history]
            expected = {
                "paid": ["pay"],
                "pending": ["expire"],
                "held": ["hold", "release"],
            }[child.kind(i)]
            assert (machine.current_state, events) == (FINAL[child.kind(i)], expected), name
            assert machine.snapshot.timers == ()
        assert runtime.machine_timers.pending() == 0
        service.close()
