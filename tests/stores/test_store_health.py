"""`Runtime.health` reads the store: a PostgreSQL store that no longer
answers makes the runtime unhealthy (SQLite: tests/actors/test_metrics_endpoint.py)."""

from __future__ import annotations

import uuid

from pg_support import drop_pg_schema, pg_url
from support import TOGGLE

from stateward.actors import PostgresStore, Runtime, StateMachine


def test_health_reads_a_postgres_store_and_reports_when_it_is_closed() -> None:
    url = pg_url()
    schema = f"sw_health_{uuid.uuid4().hex[:12]}"
    try:
        store = PostgresStore(url, schema=schema)
        with Runtime("pg", store=store) as rt:
            StateMachine("a", TOGGLE, name="door", runtime=rt).transition("b")
            assert rt.health().ok
            store.close()
            (reason,) = rt.health().reasons
            assert reason.startswith("its store does not answer") and "closed" in reason
    finally:
        drop_pg_schema(url, schema)
