"""One worker process of the multi-process race test (``test_race.py``).

Run as ``python race_worker.py URL SCHEMA MODE SEED INDEX ATTEMPTS ROWS OUT``
(``SCHEMA`` is ``-`` on SQLite). The worker reflects the ``orders`` table the
parent created, builds its own `RowMachines` in its own `Runtime`, prints
``READY`` and waits for ``GO`` on stdin, so that every worker starts racing at
the same moment. Then it makes ``ATTEMPTS`` seeded attempts on random rows: it reads the
row's state, picks an event that state allows (one time in ten, any event),
and fires it with a unique attempt id in its payload (the audit table keeps
the payload). It records what each attempt got:

- ``win``: committed; with the version, the states and the retries;
- ``InvalidTransition``: the row was no longer in a state the event leaves
  (the other side of a conflicting pair won first);
- ``ConcurrentTransition``: optimistic mode lost the race (after its retries);
- ``RowBusy``: the row or the database stayed locked.

Anything else is a bug: the worker dies with a traceback and a non-zero exit.
It writes its records as JSON to ``OUT`` and prints ``DONE``. If stdin reaches
end of file before ``GO`` (the parent died), it exits at once.

The parent imports this module for `SPEC` and `EVENTS`, so it checks the audit
log against the very definition the workers ran.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from typing import Any

import sqlalchemy as sa

from stateward.actors import Runtime
from stateward.actors.rows import (
    ConcurrentTransition,
    RetryPolicy,
    RowBinding,
    RowBusy,
    RowMachines,
)
from stateward.core import InvalidTransition, MachineSpec

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


def _no_fsync(dbapi_connection: Any, _record: Any) -> None:
    """SQLite without fsync, as the test PostgreSQL runs with ``fsync=off``: this test
    is about locks and races, not the disk's durability. Locking is unchanged."""
    dbapi_connection.execute("PRAGMA synchronous = OFF")


def run(
    url: str, schema: str | None, mode: str, seed: int, index: int, attempts: int, rows: int
) -> dict[str, Any]:
    connect_args = {"options": f"-csearch_path={schema}"} if schema else {}
    engine = sa.create_engine(url, connect_args=connect_args)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _no_fsync)
    try:
        table = sa.Table("orders", sa.MetaData(), autoload_with=engine)
        binding = RowBinding(table, state="status", version="version")
        retry = retry_policy(seed * 100 + index) if mode == "optimistic" else None
        rng = random.Random(f"{seed}:{index}")
        records: list[dict[str, Any]] = []
        with (
            Runtime(f"race-worker-{index}", default_timeout=ATTEMPT_TIMEOUT) as runtime,
            RowMachines(SPEC, binding, engine, mode=mode, retry=retry, runtime=runtime) as orders,
        ):
            print("READY", flush=True)
            if sys.stdin.readline().strip() != "GO":
                raise SystemExit(3)  # the parent went away
            started = time.monotonic()
            for number in range(attempts):
                key = rng.randint(1, rows)
                # Check, then act, as applications do: read the row's state (no
                # lock) and pick an event it allows. Another process may move the
                # row in between; the transition must then lose cleanly.
                seen = orders.state_of(key)
                if rng.random() < BLIND:
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
            finished = time.monotonic()
        return {
            "pid": os.getpid(),
            "index": index,
            "started": started,
            "finished": finished,
            "records": records,
        }
    finally:
        engine.dispose()


def main(argv: list[str]) -> int:
    url, schema, mode, seed, index, attempts, rows, out = argv
    report = run(
        url,
        None if schema == "-" else schema,
        mode,
        int(seed),
        int(index),
        int(attempts),
        int(rows),
    )
    with open(out, "w", encoding="utf-8") as file:
        json.dump(report, file)
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
