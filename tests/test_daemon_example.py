"""examples/daemon.py stops gracefully on SIGTERM and SIGINT: driven here as a
service manager would, in a child process on a SQLite file store."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from stateward.actors import Runtime, SQLiteStore, StateMachine, StateManager

DAEMON = Path(__file__).resolve().parent.parent / "examples" / "daemon.py"
LIFECYCLE = {"stopped": ["running"], "running": ["stopped", "crashed"], "crashed": ["running"]}
#: Generous: the machine is shared, and a child process starts in seconds there.
START_S = 60.0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_example_daemon_stops_on_a_signal_with_every_tick_it_printed_stored(
    tmp_path: Path, signum: signal.Signals
) -> None:
    store, budget = tmp_path / "jobs.db", 10.0
    child = subprocess.Popen(
        [sys.executable, str(DAEMON), "--store", str(store), "--interval", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    reader = threading.Thread(target=read, name="daemon-stdout")
    reader.start()
    printed: list[str] = []
    try:
        deadline = time.monotonic() + START_S
        while sum(line.startswith("tick:") for line in printed) < 50:  # under way, ticking on
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            assert line is not None, f"it ended before the signal: {printed}"
            printed.append(line)
        sent = time.monotonic()
        child.send_signal(signum)
        code = child.wait(budget + 20)
        seconds = time.monotonic() - sent
    finally:
        if child.poll() is None:
            child.kill()
        _, stderr = child.communicate(timeout=20)
        reader.join(20)
    while (line := lines.get(timeout=5)) is not None:
        printed.append(line)

    assert code == 0, stderr
    assert seconds < budget, f"took {seconds:.1f} s to exit, over its {budget} s budget"
    ticks = [int(line.split()[1].split("=")[1]) for line in printed if line.startswith("tick:")]
    assert ticks == list(range(1, len(ticks) + 1))
    assert printed[0] == "fresh store"
    assert printed[-1] == f"stopped cleanly: processed={ticks[-1]}"
    with Runtime("reopened", store=SQLiteStore(store)) as runtime:
        jobs = StateManager({"processed": 0, "last_id": None}, name="jobs", runtime=runtime)
        lifecycle = StateMachine("stopped", LIFECYCLE, name="lifecycle", runtime=runtime)
        # Every tick it acknowledged is there, and no other: it stopped between two.
        assert jobs.get_state().processed == ticks[-1]
        assert lifecycle.current_state == "stopped"
        assert lifecycle.version == 2  # running, then stopped: it said so before it ended
