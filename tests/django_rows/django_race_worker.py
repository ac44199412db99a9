"""One worker process of the Django multi-process race test (``test_django_race.py``).

Run as ``python django_race_worker.py ALIAS MODE SEED INDEX ATTEMPTS ROWS OUT`` with
``tests/`` on ``PYTHONPATH`` and the environment of ``dj_settings`` (the SQLite
file, the PostgreSQL URL and schema). It configures Django, builds its own
`RowMachines` on ``shop.Order`` through `DjangoBinding` in its own `Runtime`,
and runs `race_support.race`; it writes its records as JSON to ``OUT`` and
prints ``DONE``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # dj_settings, the shop app

import dj_settings

dj_settings.configure_from_env()

from django.db import connections  # noqa: E402
from race_support import ATTEMPT_TIMEOUT, SPEC, race, retry_policy, write_report  # noqa: E402
from shop.models import Order  # noqa: E402

from stateward.actors import Runtime  # noqa: E402
from stateward.actors.rows import RowMachines  # noqa: E402
from stateward.actors.rows.django import DjangoAdapter, DjangoBinding  # noqa: E402


def run(alias: str, mode: str, seed: int, index: int, attempts: int, rows: int) -> dict[str, Any]:
    binding = DjangoBinding(Order, state="status", version="version")
    adapter = DjangoAdapter(alias, busy_timeout=20.0)
    if adapter.dialect == "sqlite":
        # As the test PostgreSQL runs with fsync=off: this test is about locks
        # and races, not the disk's durability. Locking is unchanged.
        connections[alias].settings_dict["OPTIONS"]["init_command"] = "PRAGMA synchronous = OFF"
    retry = retry_policy(seed * 100 + index) if mode == "optimistic" else None
    try:
        with (
            Runtime(f"race-worker-{index}", default_timeout=ATTEMPT_TIMEOUT) as runtime,
            RowMachines(SPEC, binding, adapter, mode=mode, retry=retry, runtime=runtime) as orders,
        ):
            return race(orders, seed, index, attempts, rows)
    finally:
        connections.close_all()


def main(argv: list[str]) -> int:
    alias, mode, seed, index, attempts, rows, out = argv
    write_report(run(alias, mode, int(seed), int(index), int(attempts), int(rows)), out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
