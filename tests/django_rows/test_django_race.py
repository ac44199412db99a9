"""Several processes race on shared rows of a Django model; the committed audit log
must explain everything.

4 worker processes (``django_race_worker.py``) x 500 seeded events on 50 shared rows
of ``shop.Order``, with conflicting pairs (pay / cancel), on SQLite (a file on
disk) and on PostgreSQL, in pessimistic mode and in optimistic mode with a
version field and retries; ``race_support`` says what the workers do and what
the parent checks (every row explained by its committed audit rows, no row
took two conflicting transitions, no write lost, wins plus conflicts add up).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import race_support as race
from shop.models import Order

from stateward.actors import Runtime
from stateward.actors.rows import RowMachines
from stateward.actors.rows.django import DjangoBinding
from stateward.actors.rows.django.models import AuditEntry
from stateward.core import decode

WORKER = Path(__file__).resolve().parent / "django_race_worker.py"


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("mode", ["pessimistic", "optimistic"])
def test_processes_racing_on_shared_rows(alias: str, tmp_path: Path, mode: str) -> None:
    kind = "sqlite" if alias == "default" else "postgresql"
    # The parent creates the rows before any worker starts.
    binding = DjangoBinding(Order, state="status", version="version")
    with (
        Runtime("race-parent") as runtime,
        RowMachines(race.SPEC, binding, alias, runtime=runtime) as orders,
    ):
        keys = [orders.create({"id": n}).key for n in range(1, race.ROWS + 1)]
    assert keys == list(range(1, race.ROWS + 1))  # the workers pick keys 1..ROWS

    started = time.monotonic()
    reports = race.run_workers(
        lambda index, out: [
            str(WORKER),
            alias,
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
    entries = [
        {**e, "payload": decode(bytes(e["payload"])).to_dict()}
        for e in AuditEntry.objects.using(alias).order_by("id").values()
        if e["table_name"] == "shop_order"
    ]
    current = {
        row["id"]: (row["status"], row["version"])
        for row in Order.objects.using(alias).values("id", "status", "version")
    }
    race.check_race(reports, entries, current, keys, mode=mode, kind=kind, elapsed=elapsed)
