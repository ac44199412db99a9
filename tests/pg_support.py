"""PostgreSQL for the tests (stores and rows): the server's URL (or a skip), and dropping a
test's schema."""

from __future__ import annotations

import os

import pytest

#: Where the PostgreSQL server is.
PG_ENV = "STATEWARD_PG_URL"
PG_SKIP = "no PostgreSQL: set STATEWARD_PG_URL (CI always does)"


def pg_url() -> str:
    """The PostgreSQL URL; skips without one, but fails in CI."""
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
