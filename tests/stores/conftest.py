from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

#: The environment variable a child process of these tests reads for ``Runtime(workers=...)``.
CHILD_WORKERS = "STATEWARD_CHILD_WORKERS"


@pytest.fixture(params=["thread", "pool"])
def child_host(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once per host in its child processes: each actor on a
    thread of its own (``thread``: ``Runtime(workers=0)``), or on the default
    pool of 4 workers (``pool``). The children read `CHILD_WORKERS`."""
    monkeypatch.setenv(CHILD_WORKERS, "0" if request.param == "thread" else "4")
    return str(request.param)


#: Where the PostgreSQL server is, as in tests/rows/conftest.py.
PG_ENV = "STATEWARD_PG_URL"
PG_SKIP = "no PostgreSQL: set STATEWARD_PG_URL (CI always does)"


def pg_url() -> str:
    """The PostgreSQL URL; skips without one, but fails in CI (as tests/rows does)."""
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"{PG_ENV} is not set, and CI=true: the PostgreSQL tests must run in CI, "
                "never skip (.ci/run starts the server and exports the URL)"
            )
        pytest.skip(PG_SKIP)
    return url


def drop_pg_schema(url: str, schema: str) -> None:
    """Drop a test's schema and everything in it."""
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, str]]:
    """``(url, schema)``: a fresh schema name on the test server, dropped afterwards.
    A `PostgresStore` with ``schema=`` creates it."""
    url = pg_url()
    schema = f"sw_store_{uuid.uuid4().hex[:12]}"
    try:
        yield url, schema
    finally:
        drop_pg_schema(url, schema)
