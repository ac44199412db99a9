"""A daemon under load for tests/actors/test_stop_on_signal.py, run as a child process.

    python stop_daemon.py STORE ACKS [--asyncio] [--clients N] [--budget S] [--stuck]

Client threads (with ``--asyncio``: tasks) each update a counter of their own
(``counter-<i>``, a `StateManager` in a SQLite store) as fast as they can and
append ``<i> <n>`` to ACKS, flushed per line, for every update acknowledged;
a refused update ends the client, which appends ``refused <i> <message>``.
Once every client has had 20 updates acknowledged, it prints ``loaded``. The
main thread runs `Runtime.run_until_signal`, which starts the clients once
its handlers are in (``on_ready``), and exits with its code once the clients
have ended.

With ``--stuck``, an actor named ``stuck`` also runs an update that blocks
(on an event that is never set, for at most 60 s) with two more queued
behind it, and ``stuck`` is printed once it blocks.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from stateward.actors import Runtime, SQLiteStore, StateManager
from stateward.core import StatewardError

LOADED_AFTER = 20


class Acks:
    """The acknowledgement log, and the ``loaded`` line once every client is under way."""

    def __init__(self, path: Path, clients: int) -> None:
        self._file: TextIO = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self._under_way: set[int] = set()
        self._clients = clients

    def acked(self, client: int, n: int) -> None:
        with self._lock:
            self._file.write(f"{client} {n}\n")
            self._file.flush()
            if n >= LOADED_AFTER and client not in self._under_way:
                self._under_way.add(client)
                if len(self._under_way) == self._clients:
                    print("loaded", flush=True)

    def refused(self, client: int, error: BaseException) -> None:
        with self._lock:
            self._file.write(f"refused {client} {type(error).__name__}: {error}\n")
            self._file.flush()

    def close(self) -> None:
        self._file.close()


def increment(state: Any) -> Any:
    return state.update(n=state.n + 1)


def block_stuck(runtime: Runtime) -> threading.Event:
    """Start an update of ``stuck`` that blocks, with two queued behind it."""
    stuck = StateManager({"n": 0}, name="stuck", runtime=runtime)
    release = threading.Event()  # never set: the stop must give up on it
    blocked = threading.Event()

    def block(state: Any) -> Any:
        blocked.set()
        release.wait(60)
        return state.update(n=state.n + 1)

    stuck.request_modify(block)
    stuck.request_modify(increment)
    stuck.request_modify(increment)
    if not blocked.wait(30):
        raise RuntimeError("the stuck actor never started its update")
    print("stuck", flush=True)
    return release


def run_threads(args: argparse.Namespace) -> int:
    with Runtime("stop-daemon", store=SQLiteStore(args.store, durability="batched")) as runtime:
        counters = [
            StateManager({"n": 0}, name=f"counter-{i}", runtime=runtime)
            for i in range(args.clients)
        ]
        acks = Acks(args.acks, args.clients)

        def client(i: int) -> None:
            while True:
                try:
                    state = counters[i].modify(increment, timeout=30)
                except StatewardError as exc:
                    acks.refused(i, exc)
                    return
                acks.acked(i, state.n)

        threads = [
            threading.Thread(target=client, args=(i,), name=f"client-{i}")
            for i in range(args.clients)
        ]

        def on_ready() -> None:  # a signal from now on stops it gracefully
            for thread in threads:
                thread.start()
            if args.stuck:
                block_stuck(runtime)

        code = runtime.run_until_signal(budget=args.budget, on_ready=on_ready)
        for thread in threads:
            thread.join(30)
        acks.close()
        return code


async def run_tasks(args: argparse.Namespace) -> int:
    with Runtime("stop-daemon", store=SQLiteStore(args.store, durability="batched")) as runtime:
        counters = [
            StateManager({"n": 0}, name=f"counter-{i}", runtime=runtime)
            for i in range(args.clients)
        ]
        acks = Acks(args.acks, args.clients)

        async def client(i: int) -> None:
            while True:
                try:
                    state = await counters[i].amodify(increment, timeout=30)
                except StatewardError as exc:
                    acks.refused(i, exc)
                    return
                acks.acked(i, state.n)

        tasks: list[asyncio.Task[None]] = []

        async def on_ready() -> None:  # a signal from now on stops it gracefully
            tasks.extend(asyncio.create_task(client(i)) for i in range(args.clients))
            if args.stuck:
                block_stuck(runtime)

        code = await runtime.arun_until_signal(budget=args.budget, on_ready=on_ready)
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        acks.close()
        return code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("acks", type=Path)
    parser.add_argument("--asyncio", action="store_true")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--budget", type=float, default=10.0)
    parser.add_argument("--stuck", action="store_true")
    args = parser.parse_args()
    if args.asyncio:
        return asyncio.run(run_tasks(args))
    return run_threads(args)


if __name__ == "__main__":
    sys.exit(main())
