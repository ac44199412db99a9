"""Several processes race on shared rows; the committed audit log must explain everything.

4 worker processes (``race_worker.py``) x 500 seeded events on 50 shared rows
that start in "pending", with conflicting pairs (pay / cancel from pending,
ship / cancel from paid), on SQLite (a file on disk) and on PostgreSQL, in
pessimistic mode and in optimistic mode with a version column and retries.
Then the parent checks, from the database alone:

- every row's committed audit entries, replayed from its creation, follow the
  machine's moves, have contiguous versions 1..n, and end in the row's state
  and version: the log explains the row;
- no row took two conflicting transitions: each visit to a state is left at
  most once (never both paid and cancelled from the same pending);
- no write was lost or invented: every win a worker reported is in the log
  exactly once, with its process, row, version and states, and the log has no
  entry that no worker reported;
- wins and conflicts add up to the attempts.

Every wait is bounded; workers are killed and reaped in a ``finally``; the
seed (``STATEWARD_RACE_SEED``) is printed in failure messages.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa

from stateward.actors import Runtime
from stateward.actors.rows import RowBinding, RowMachines

HERE = Path(__file__).resolve().parent
WORKER = HERE / "race_worker.py"

WORKERS = 4
ATTEMPTS = 500
ROWS = 50
SEED = int(os.environ.get("STATEWARD_RACE_SEED", "20240501"))
CONFLICTS = {"InvalidTransition", "ConcurrentTransition", "RowBusy"}

#: Seconds a worker may take to start (interpreter and imports) and print READY.
READY_TIMEOUT = 60.0
#: Seconds all workers together may take to finish their attempts.
RUN_TIMEOUT = 120.0
#: Seconds to reap a killed worker.
REAP_TIMEOUT = 10.0


def _load_worker() -> ModuleType:
    """``race_worker.py`` as a module: the parent checks with the workers' own machine."""
    spec = importlib.util.spec_from_file_location("stateward_race_worker", WORKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


race = _load_worker()


def _read_line(proc: subprocess.Popen[str], deadline: float, what: str) -> str:
    """One line of a worker's stdout, waiting no later than ``deadline``."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not selector.select(remaining):
            raise AssertionError(f"worker {proc.pid} did not print {what} in time")
    return proc.stdout.readline().strip()


def _run_workers(db: Any, mode: str, tmp_path: Path) -> list[dict[str, Any]]:
    procs: list[subprocess.Popen[str]] = []
    logs = []
    try:
        for index in range(WORKERS):
            log = open(tmp_path / f"worker-{index}.log", "w+", encoding="utf-8")  # noqa: SIM115
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(WORKER),
                        db.url,
                        db.schema or "-",
                        mode,
                        str(SEED),
                        str(index),
                        str(ATTEMPTS),
                        str(ROWS),
                        str(tmp_path / f"worker-{index}.json"),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                )
            )
        deadline = time.monotonic() + READY_TIMEOUT
        for proc in procs:
            assert _read_line(proc, deadline, "READY") == "READY", _stderr(logs)
        for proc in procs:  # all at once: the race starts here
            assert proc.stdin is not None
            proc.stdin.write("GO\n")
            proc.stdin.flush()
        deadline = time.monotonic() + RUN_TIMEOUT
        for proc in procs:
            try:
                code = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise AssertionError(
                    f"worker {proc.pid} still running after {RUN_TIMEOUT}s (seed {SEED})"
                ) from None
            assert code == 0, (
                f"worker {proc.pid} exited with {code} (seed {SEED}):\n{_stderr(logs)}"
            )
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=REAP_TIMEOUT)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
        for log in logs:
            log.close()
    return [
        json.loads((tmp_path / f"worker-{index}.json").read_text(encoding="utf-8"))
        for index in range(WORKERS)
    ]


def _stderr(logs: list[Any]) -> str:
    text = []
    for log in logs:
        log.flush()
        log.seek(0)
        text.append(log.read()[-3000:])
    return "\n---\n".join(text)


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("mode", ["pessimistic", "optimistic"])
def test_processes_racing_on_shared_rows(
    engines: Any, order_model: Any, tmp_path: Path, mode: str
) -> None:
    seed = f"(seed {SEED}, {engines.kind}, {mode})"
    # The parent creates the rows (and the audit table) before any worker starts.
    with (
        Runtime("race-parent") as runtime,
        RowMachines(
            race.SPEC, RowBinding(order_model, version="version"), engines.engine, runtime=runtime
        ) as orders,
    ):
        keys = [orders.create({"order_id": f"R-{n:03d}"}).key for n in range(1, ROWS + 1)]
    assert keys == list(range(1, ROWS + 1))

    started = time.monotonic()
    reports = _run_workers(engines, mode, tmp_path)
    elapsed = time.monotonic() - started

    # -- the workers' side: every attempt is a win or a conflict -----------------------------
    records = [dict(r, pid=report["pid"]) for report in reports for r in report["records"]]
    outcomes = collections.Counter(r["outcome"] for r in records)
    assert len(records) == WORKERS * ATTEMPTS, seed
    assert set(outcomes) <= {"win"} | CONFLICTS, (outcomes, seed)
    assert sum(outcomes.values()) == outcomes["win"] + sum(outcomes[c] for c in CONFLICTS)
    assert outcomes["win"] > 0, seed
    if mode == "pessimistic":  # the row lock decides before the write: no lost race
        assert outcomes["ConcurrentTransition"] == 0, (outcomes, seed)
        if engines.kind == "postgresql":  # FOR UPDATE waits; nothing times out
            assert outcomes["RowBusy"] == 0, (outcomes, seed)
    # They really ran at the same time: there is a moment when all four were racing.
    assert max(r["started"] for r in reports) < min(r["finished"] for r in reports), seed

    # -- the database's side: the committed audit log -----------------------------------------
    entries = engines.audit()
    creations = [e for e in entries if e["event"] == "create"]
    moves = [e for e in entries if e["event"] != "create"]
    assert len(creations) == ROWS, seed

    # No write lost, none invented: the wins and the log are the same multiset.
    wins = {r["attempt"]: r for r in records if r["outcome"] == "win"}
    logged = collections.Counter(e["payload"].get("attempt") for e in moves)
    duplicated = {a: n for a, n in logged.items() if n > 1}
    assert not duplicated, (f"attempts committed twice: {duplicated}", seed)
    assert set(logged) == set(wins), (
        f"won but not in the log: {sorted(set(wins) - set(logged))[:10]}; "
        f"in the log but not won: {sorted(set(logged) - set(wins))[:10]}",
        seed,
    )
    for entry in moves:
        win = wins[entry["payload"]["attempt"]]
        assert (
            int(entry["row_key"]),
            entry["version"],
            entry["from_state"],
            entry["to_state"],
            entry["event"],
            entry["process"],
        ) == (
            win["row"],
            win["version"],
            win["source"],
            win["target"],
            win["event"],
            win["pid"],
        ), seed

    # Every row: its log replays from its creation to its current state and version.
    by_row: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
    for entry in entries:
        by_row[int(entry["row_key"])].append(entry)
    with engines.other.connect() as conn:
        current = {
            row.id: (row.status, row.version)
            for row in conn.execute(sa.text("SELECT id, status, version FROM orders"))
        }
    assert sorted(current) == keys, seed
    for key in keys:
        log = by_row[key]  # in commit order (the audit id)
        first, rest = log[0], log[1:]
        assert (first["event"], first["to_state"], first["version"]) == ("create", "pending", 0)
        assert [e["version"] for e in rest] == list(range(1, len(rest) + 1)), (key, seed)
        state = "pending"
        entered = collections.Counter({"pending": 1})
        left: collections.Counter[str] = collections.Counter()
        for entry in rest:
            assert entry["from_state"] == state, (key, entry, seed)
            assert race.SPEC.event_for(entry["event"], state).target == entry["to_state"]
            left[state] += 1
            state = entry["to_state"]
            entered[state] += 1
        assert current[key] == (state, len(rest)), (key, seed)
        # Each visit to a state was left at most once: two conflicting exits from
        # one visit (paid *and* cancelled from the same pending) would break this.
        for visited, times in entered.items():
            assert left[visited] == times - (visited == state), (key, visited, seed)

    wins_per_row = collections.Counter(r["row"] for r in wins.values())
    assert {key: len(by_row[key]) - 1 for key in keys} == {
        key: wins_per_row[key] for key in keys
    }, seed
    # Lost check-then-act races: the row moved between a worker's look and its move.
    lost = sum(
        1
        for r in records
        if r["outcome"] == "ConcurrentTransition"
        or (r["outcome"] == "InvalidTransition" and r["found"] != r["seen"])
    )
    assert lost > 0, ("the workers never raced for a row", seed)
    retries = sum(r.get("retries", 0) for r in wins.values())
    print(
        f"\nrace {engines.kind}/{mode}: {elapsed:.1f}s, {dict(outcomes)}, "
        f"lost races {lost}, retries {retries}"
    )
