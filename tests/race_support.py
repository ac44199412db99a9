"""The multi-process race on shared rows, for every binding (SQLAlchemy, Django).

4 worker processes x 500 seeded events on 50 shared rows that start in
"pending", with conflicting pairs (pay / cancel from pending, ship / cancel from
paid). A worker script builds its `RowMachines` and calls `race`; the parent
starts the workers with `run_workers` and checks, from the database alone, with
`check_race`:

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
import json
import os
import random
import selectors
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from stateward.actors.rows import ConcurrentTransition, RetryPolicy, RowBusy
from stateward.core import InvalidTransition, MachineSpec

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

#: The order machine of the race. Conflicting pairs: pay / cancel from pending,
#: ship / cancel from paid. No state is terminal (reopen, reorder), so every row
#: keeps racing through the whole run instead of settling early.
SPEC = MachineSpec(
    "pending",
    {
        "pending": ["paid", "cancelled"],
        "paid": ["shipped", "cancelled"],
        "shipped": ["delivered"],
        "delivered": ["pending"],
        "cancelled": ["pending"],
    },
    events={
        "pay": "pending -> paid",
        "cancel": "pending|paid -> cancelled",
        "ship": "paid -> shipped",
        "deliver": "shipped -> delivered",
        "reorder": "delivered -> pending",
        "reopen": "cancelled -> pending",
    },
    name="race",
)
EVENTS = tuple(sorted({event.name for event in SPEC.events}))
#: How often a worker fires an event blindly, without looking at the row first.
BLIND = 0.1
#: Seconds one attempt may take (waiting for a row lock included).
ATTEMPT_TIMEOUT = 30.0


def retry_policy(seed: int) -> RetryPolicy:
    """The retry policy of optimistic workers: short, jittered, bounded."""
    return RetryPolicy(attempts=5, min_delay=0.001, max_delay=0.02, seed=seed)


# -- a worker ---------------------------------------------------------------------------------


def race(orders: Any, seed: int, index: int, attempts: int, rows: int) -> dict[str, Any]:
    """One worker's race on ``orders`` (a `RowMachines`): prints ``READY``, waits
    for ``GO`` on stdin, then makes ``attempts`` seeded attempts on random rows:
    it reads the row's state, picks an event that state allows (one time in ten,
    any event), and fires it with a unique attempt id in its payload (the audit
    keeps the payload). What each attempt got:

    - ``win``: committed; with the version, the states and the retries;
    - ``InvalidTransition``: the row was no longer in a state the event leaves;
    - ``ConcurrentTransition``: optimistic mode lost the race (after retries);
    - ``RowBusy``: the row or the database stayed locked.

    Anything else is a bug: it propagates (the worker dies with a traceback).
    """
    rng = random.Random(f"{seed}:{index}")
    records: list[dict[str, Any]] = []
    print("READY", flush=True)
    if sys.stdin.readline().strip() != "GO":
        raise SystemExit(3)  # the parent went away
    started = time.monotonic()
    for number in range(attempts):
        key = rng.randint(1, rows)
        # Check, then act, as applications do: read the row's state (no lock)
        # and pick an event it allows. Another process may move the row in
        # between; the transition must then lose cleanly.
        try:
            seen = orders.state_of(key)
        except RowBusy:
            seen = None
        if seen is None or rng.random() < BLIND:
            event = rng.choice(EVENTS)
        else:
            event = rng.choice(SPEC.allowed_events(seen))
        record: dict[str, Any] = {
            "attempt": f"w{index}-{number}",
            "row": key,
            "event": event,
            "seen": seen,
        }
        try:
            result = orders.trigger(
                key, event, {"attempt": record["attempt"]}, timeout=ATTEMPT_TIMEOUT
            )
        except (InvalidTransition, ConcurrentTransition, RowBusy) as exc:
            record["outcome"] = type(exc).__name__
            if isinstance(exc, InvalidTransition):
                record["found"] = exc.state
        else:
            assert result.record is not None
            record.update(
                outcome="win",
                version=result.version,
                source=result.record.from_state,
                target=result.state,
                retries=result.retries,
            )
        records.append(record)
    return {
        "pid": os.getpid(),
        "index": index,
        "started": started,
        "finished": time.monotonic(),
        "records": records,
    }


def write_report(report: Mapping[str, Any], out: str) -> None:
    with open(out, "w", encoding="utf-8") as file:
        json.dump(report, file)
    print("DONE", flush=True)


# -- the parent -------------------------------------------------------------------------------


def _read_line(proc: subprocess.Popen[str], deadline: float, what: str) -> str:
    """One line of a worker's stdout, waiting no later than ``deadline``."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not selector.select(remaining):
            raise AssertionError(f"worker {proc.pid} did not print {what} in time")
    return proc.stdout.readline().strip()


def _stderr(logs: list[Any]) -> str:
    text = []
    for log in logs:
        log.flush()
        log.seek(0)
        text.append(log.read()[-3000:])
    return "\n---\n".join(text)


def run_workers(
    argv: Callable[[int, Path], list[str]], tmp_path: Path, env: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Start `WORKERS` processes (``argv(index, out)``), let them race at the
    same moment, wait for them (bounded), and return their reports."""
    procs: list[subprocess.Popen[str]] = []
    logs = []
    tests = str(Path(__file__).resolve().parent)
    environment = dict(env if env is not None else os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (tests, environment.get("PYTHONPATH", "")) if p
    )
    try:
        for index in range(WORKERS):
            log = open(tmp_path / f"worker-{index}.log", "w+", encoding="utf-8")  # noqa: SIM115
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    [sys.executable, *argv(index, tmp_path / f"worker-{index}.json")],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                    env=environment,
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


def check_race(
    reports: list[dict[str, Any]],
    entries: list[dict[str, Any]],
    current: Mapping[int, tuple[str, int]],
    keys: list[int],
    *,
    mode: str,
    kind: str,
    elapsed: float,
) -> None:
    """Check the workers' reports against the committed audit ``entries``
    (oldest first, payload decoded) and the rows' ``current`` (state, version)."""
    seed = f"(seed {SEED}, {kind}, {mode})"
    # -- the workers' side: every attempt is a win or a conflict -----------------------------
    records = [dict(r, pid=report["pid"]) for report in reports for r in report["records"]]
    outcomes = collections.Counter(r["outcome"] for r in records)
    assert len(records) == WORKERS * ATTEMPTS, seed
    assert set(outcomes) <= {"win"} | CONFLICTS, (outcomes, seed)
    assert sum(outcomes.values()) == outcomes["win"] + sum(outcomes[c] for c in CONFLICTS)
    assert outcomes["win"] > 0, seed
    if mode == "pessimistic":  # the row lock decides before the write: no lost race
        assert outcomes["ConcurrentTransition"] == 0, (outcomes, seed)
        if kind == "postgresql":  # FOR UPDATE waits; nothing times out
            assert outcomes["RowBusy"] == 0, (outcomes, seed)
    # They really ran at the same time: there is a moment when all four were racing.
    assert max(r["started"] for r in reports) < min(r["finished"] for r in reports), seed

    # -- the database's side: the committed audit log -----------------------------------------
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
            assert SPEC.event_for(entry["event"], state).target == entry["to_state"]
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
        f"\nrace {kind}/{mode}: {elapsed:.1f}s, {dict(outcomes)}, "
        f"lost races {lost}, retries {retries}"
    )
