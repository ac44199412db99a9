"""Processes that open the same new store file at the same moment all get a working store.

Each round, ``PROCESSES`` processes wait at a barrier, then open
``SQLiteStore`` on a file that does not exist yet: one of them creates the
tables, the others must find them (or wait for them), never fail on the
half-made file. ``STATEWARD_OPEN_ROUNDS`` sets the rounds (10 by default).
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from pathlib import Path
from typing import Any

from stateward.actors import Runtime, SQLiteStore, StateManager, StoreOpenError

PROCESSES = 3
ROUNDS = int(os.environ.get("STATEWARD_OPEN_ROUNDS", "10"))
#: Seconds to wait at a barrier, for a result, or for a process to end.
WAIT = 60.0


def open_rounds(folder: str, rounds: int, barrier: Any, results: Any) -> None:
    """In a child process: open a new store with the others, round after round."""
    for round_ in range(rounds):
        path = os.path.join(folder, f"round-{round_}.db")
        barrier.wait(WAIT)
        try:
            SQLiteStore(path).close()
            outcome = "opened"
        except StoreOpenError as exc:
            outcome = f"refused: {exc}"
        except BaseException as exc:  # what the test is about: report, do not die
            outcome = f"raw {type(exc).__module__}.{type(exc).__name__}: {exc}"
        results.put((round_, os.getpid(), outcome))


def test_processes_opening_a_new_store_file_at_once_all_get_the_store(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=open_rounds, args=(str(tmp_path), ROUNDS, barrier, results))
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        outcomes = [results.get(timeout=WAIT) for _ in range(PROCESSES * ROUNDS)]
    finally:
        for process in processes:
            process.join(WAIT)
            if process.is_alive():
                process.kill()
                process.join(WAIT)
    assert [p.exitcode for p in processes] == [0] * PROCESSES
    failed = sorted(o for o in outcomes if o[2] != "opened")
    assert not failed, f"{len(failed)} of {len(outcomes)} opens failed: {failed[:5]}"
    for round_ in range(ROUNDS):
        path = tmp_path / f"round-{round_}.db"
        db = sqlite3.connect(path)
        try:
            schema = db.execute("SELECT value FROM stateward_meta WHERE key = 'schema'").fetchall()
        finally:
            db.close()
        assert schema == [("1",)], f"round {round_}: schema rows {schema}"
        with Runtime("check", store=SQLiteStore(path)) as runtime:
            counter = StateManager({"n": 0}, name="counter", runtime=runtime)
            assert counter.update_state({"n": 1}).n == 1
