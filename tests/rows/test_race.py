"""Several processes race on shared rows of a SQLAlchemy model; the committed audit
log must explain everything.

4 worker processes (``race_worker.py``) x 500 seeded events on 50 shared rows,
on SQLite (a file on disk) and on PostgreSQL, in pessimistic mode and in
optimistic mode with a version column and retries; ``race_support`` says what
the workers do and what the parent checks.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import race_support as race
import sqlalchemy as sa

from stateward.actors import Runtime
from stateward.actors.rows import RowBinding, RowMachines

WORKER = Path(__file__).resolve().parent / "race_worker.py"


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("mode", ["pessimistic", "optimistic"])
def test_processes_racing_on_shared_rows(
    engines: Any, order_model: Any, tmp_path: Path, mode: str
) -> None:
    # The parent creates the rows (and the audit table) before any worker starts.
    with (
        Runtime("race-parent") as runtime,
        RowMachines(
            race.SPEC, RowBinding(order_model, version="version"), engines.engine, runtime=runtime
        ) as orders,
    ):
        keys = [orders.create({"order_id": f"R-{n:03d}"}).key for n in range(1, race.ROWS + 1)]
    assert keys == list(range(1, race.ROWS + 1))

    started = time.monotonic()
    reports = race.run_workers(
        lambda index, out: [
            str(WORKER),
            engines.url,
            engines.schema or "-",
            mode,
            str(race.SEED),
            str(index),
            str(race.ATTEMPTS),
            str(race.ROWS),
            str(out),
        ],
        tmp_path,
    )
    elapsed = time.monotonic() - started
    with engines.other.connect() as conn:
        current = {
            row.id: (row.status, row.version)
            for row in conn.execute(sa.text("SELECT id, status, version FROM orders"))
        }
    race.check_race(
        reports, engines.audit(), current, keys, mode=mode, kind=engines.kind, elapsed=elapsed
    )
