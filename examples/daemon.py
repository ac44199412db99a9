"""A daemon that stops cleanly on SIGTERM, and whose progress survives ``kill -9``.

The daemon processes one job per tick, on a thread of its own. Its progress
lives in a `StateManager` named ``jobs`` and its lifecycle (stopped / running
/ crashed) in a `StateMachine` named ``lifecycle``, both in a SQLite store. In
strict durability a commit is fsynced before ``modify`` returns, so every tick
it printed is on disk: kill it with SIGKILL at any moment, start it again on
the same store, and it recovers every acknowledged tick and carries on from
there. Its lifecycle still says ``running`` then, which is how it knows the
last run did not stop cleanly.

The main thread runs `Runtime.run_until_signal`: on SIGTERM or Ctrl-C it stops
the ticks, records ``stopped``, drains the actors and closes the store within
``--budget`` seconds, and the process exits with 0 (1 if it had to abandon work).

Run it as a daemon with ``python examples/daemon.py --store jobs.db`` (until
SIGTERM, Ctrl-C or ``kill -9``), or for a few ticks with ``--ticks 5``. Run
with no arguments, it shows the whole story on a temporary store: it starts
itself as a daemon and kills it with SIGKILL after five ticks, starts it
again and stops it with SIGTERM after three, and starts it once more.
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

from stateward.actors import ActorStopped, Runtime, SQLiteStore, StateMachine, StateManager

LIFECYCLE = {"stopped": ["running"], "running": ["stopped", "crashed"], "crashed": ["running"]}


def process_next_job(state):
    """One tick's work, run inside the actor: an atomic read-modify-write."""
    job = state.processed + 1
    return state.update(processed=job, last_id=f"job-{job:04d}")


def run(store_path: Path, ticks: int | None, interval: float, budget: float) -> int:
    """Process jobs until SIGTERM or SIGINT (or ``ticks`` are done), then stop
    gracefully; return the exit code."""
    with Runtime("daemon", store=SQLiteStore(store_path, durability="strict")) as runtime:
        jobs = StateManager({"processed": 0, "last_id": None}, name="jobs", runtime=runtime)
        lifecycle = StateMachine("stopped", LIFECYCLE, name="lifecycle", runtime=runtime)
        state = jobs.get_state()
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
        stopping = threading.Event()
        worker = threading.Thread(target=work, args=(jobs, ticks, interval, stopping), name="jobs")

        def before_stop() -> None:
            """The signal came: stop our own intake, then say so while the runtime still
            takes requests. The runtime then drains, stops and closes the store."""
            stopping.set()
            worker.join(budget / 2)
            lifecycle.transition("stopped")

        # The ticks start once a signal would stop them gracefully (on_ready).
        code = runtime.run_until_signal(
            budget=budget, on_ready=worker.start, before_stop=before_stop
        )
    if code == 0:
        print(f"stopped cleanly: processed={jobs.get_state().processed}", flush=True)
    return code


def work(jobs: StateManager, ticks: int | None, interval: float, stopping: threading.Event) -> None:
    """The daemon's work, on a thread of its own: one job per tick until it is stopping."""
    done = 0
    while not stopping.is_set():
        try:
            state = jobs.modify(process_next_job)  # returns once it is on disk
        except ActorStopped:  # the runtime stopped taking requests: no more work
            return
        print(f"tick: processed={state.processed} last_id={state.last_id}", flush=True)
        done += 1
        if done == ticks:  # all done: stop the way a service manager would stop it
            os.kill(os.getpid(), signal.SIGTERM)
            return
        stopping.wait(interval)  # the pace of the work, not synchronisation


def demo() -> None:
    """Start the daemon and kill it with SIGKILL; start it again and stop it with
    SIGTERM; start it once more."""
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "daemon.db"
        print("demo: starting the daemon on a new store; SIGKILL after 5 ticks")
        _, killed_at, _ = run_and_signal(store, after_ticks=5, signum=signal.SIGKILL)
        print(f"demo: killed it after it printed processed={killed_at}; starting it again")
        print("demo: SIGTERM after 3 ticks this time")
        recovered, stopped_at, code = run_and_signal(store, 3, signal.SIGTERM)
        print(
            f"demo: every tick the daemon acknowledged survived the kill: {recovered >= killed_at}"
        )
        print(f"demo: it stopped on SIGTERM with exit code {code}; starting it once more")
        again, _, _ = run_and_signal(store, after_ticks=1, signum=signal.SIGTERM)
        print(f"demo: the SIGTERM stop kept exactly the ticks it printed: {again == stopped_at}")


def run_and_signal(
    store: Path, after_ticks: int, signum: int, timeout: float = 60.0
) -> tuple[int, int, int]:
    """Run the daemon in a child process and send it ``signum`` once it printed
    ``after_ticks`` ticks. Returns the count it recovered from, the last count
    it printed, and its exit code."""
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
    recovered = ticks = processed = 0
    deadline = time.monotonic() + timeout
    try:
        while (line := lines.get(timeout=max(0.0, deadline - time.monotonic()))) is not None:
            if line.startswith("recovered:"):
                recovered = int(line.split()[1].split("=")[1])
            if line.startswith("tick:"):
                ticks += 1
                processed = int(line.split()[1].split("=")[1])
                if ticks > after_ticks:
                    continue  # ticks done before the signal reached it: how many varies
            print(f"  | {line}")
            if ticks == after_ticks and line.startswith("tick:"):
                # SIGKILL: no chance to clean up; SIGTERM: what a service manager sends.
                os.kill(child.pid, signum)
    finally:
        if child.poll() is None:
            child.wait(max(0.0, deadline - time.monotonic()))
        reader.join(10)
        child.stdout.close()
    return recovered, processed, child.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="the SQLite store file")
    parser.add_argument("--ticks", type=int, help="stop after this many ticks")
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between ticks")
    parser.add_argument(
        "--budget", type=float, default=10.0, help="seconds to stop in, once signalled"
    )
    args = parser.parse_args()
    if args.store is None:
        demo()
        return 0
    return run(args.store, args.ticks, args.interval, args.budget)


if __name__ == "__main__":
    sys.exit(main())
