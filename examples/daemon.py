"""A daemon whose progress survives ``kill -9``.

The daemon processes one job per tick. Its progress lives in a `StateManager`
named ``jobs`` and its lifecycle (stopped / running / crashed) in a
`StateMachine` named ``lifecycle``, both in a SQLite store. In strict
durability a commit is fsynced before ``modify`` returns, so every tick it
printed is on disk: kill it with SIGKILL at any moment, start it again on the
same store, and it recovers every acknowledged tick and carries on from there.
Its lifecycle still says ``running`` then, which is how it knows the last run
did not stop cleanly.

Run it as a daemon with ``python examples/daemon.py --store jobs.db`` (until
SIGTERM, Ctrl-C or ``kill -9``), or for a few ticks with ``--ticks 5``. Run with
no arguments, it shows the whole story on a temporary store: it starts itself
as a daemon, kills it with SIGKILL after five ticks, and starts it again.
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from stateward.actors import Runtime, SQLiteStore, StateMachine, StateManager

LIFECYCLE = {"stopped": ["running"], "running": ["stopped", "crashed"], "crashed": ["running"]}


def process_next_job(state):
    """One tick's work, run inside the actor: an atomic read-modify-write."""
    job = state.processed + 1
    return state.update(processed=job, last_id=f"job-{job:04d}")


def run(store_path: Path, ticks: int | None, interval: float) -> int:
    """Process jobs until ``ticks`` are done or SIGTERM; return the count it started from."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    with Runtime("daemon", store=SQLiteStore(store_path, durability="strict")) as runtime:
        jobs = StateManager({"processed": 0, "last_id": None}, name="jobs", runtime=runtime)
        lifecycle = StateMachine("stopped", LIFECYCLE, name="lifecycle", runtime=runtime)
        state = jobs.get_state()
        start = state.processed
        if not jobs.recovered:
            print("fresh store", flush=True)
        else:
            how = "stopped cleanly"
            if lifecycle.current_state != "stopped":  # it never got to say so
                how = "did not stop cleanly"
                if lifecycle.current_state == "running":
                    lifecycle.transition("crashed")
            print(
                f"recovered: processed={state.processed} last_id={state.last_id} "
                f"(the last run {how})",
                flush=True,
            )
        lifecycle.transition("running")
        done = 0
        try:
            while (ticks is None or done < ticks) and not stop.is_set():
                state = jobs.modify(process_next_job)  # returns once it is on disk
                done += 1
                print(f"tick: processed={state.processed} last_id={state.last_id}", flush=True)
                stop.wait(interval)  # the pace of the work, not synchronisation
        except KeyboardInterrupt:
            pass
        lifecycle.transition("stopped")
        print(f"stopped cleanly: processed={jobs.get_state().processed}", flush=True)
    return start


def demo() -> None:
    """Start the daemon, kill it with SIGKILL after five ticks, start it again."""
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "daemon.db"
        print("demo: starting the daemon on a new store; SIGKILL after 5 ticks")
        seen = run_and_kill(store, after_ticks=5)
        print(f"demo: killed it after it printed processed={seen}; starting it again")
        sys.stdout.flush()
        recovered = run(store, ticks=3, interval=0.0)
        print(f"demo: every tick the daemon acknowledged survived the kill: {recovered >= seen}")


def run_and_kill(store: Path, after_ticks: int, timeout: float = 60.0) -> int:
    """Run the daemon in a child process; SIGKILL it once it printed ``after_ticks`` ticks."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--store", str(store)],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in child.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    ticks = 0
    processed = 0
    deadline = time.monotonic() + timeout
    try:
        while ticks < after_ticks:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            if line is None:
                raise RuntimeError("the daemon ended before it was killed")
            print(f"  | {line}")
            if line.startswith("tick:"):
                ticks += 1
                processed = int(line.split()[1].split("=")[1])
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)  # kill -9: no chance to clean up
        child.wait(10)
        reader.join(10)
        child.stdout.close()
    return processed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="the SQLite store file")
    parser.add_argument("--ticks", type=int, help="stop after this many ticks")
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between ticks")
    args = parser.parse_args()
    if args.store is None:
        demo()
    else:
        run(args.store, args.ticks, args.interval)


if __name__ == "__main__":
    main()
