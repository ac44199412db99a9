"""One worker process of the SQLAlchemy multi-process race test (``test_race.py``).

Run as ``python race_worker.py URL SCHEMA MODE SEED INDEX ATTEMPTS ROWS OUT``
(``SCHEMA`` is ``-`` on SQLite), with ``tests/`` on ``PYTHONPATH``. The worker
reflects the ``orders`` table the parent created, builds its own `RowMachines`
in its own `Runtime`, and runs `race_support.race`; it writes its records as
JSON to ``OUT`` and prints ``DONE``.
"""

from __future__ import annotations

import sys
from typing import Any

import sqlalchemy as sa
from race_support import ATTEMPT_TIMEOUT, SPEC, race, retry_policy, write_report

from stateward.actors import Runtime
from stateward.actors.rows import RowBinding, RowMachines


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
        with (
            Runtime(f"race-worker-{index}", default_timeout=ATTEMPT_TIMEOUT) as runtime,
            RowMachines(SPEC, binding, engine, mode=mode, retry=retry, runtime=runtime) as orders,
        ):
            return race(orders, seed, index, attempts, rows)
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
    write_report(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
