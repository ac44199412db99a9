from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pg_support import drop_pg_schema, pg_url

#: The environment variable a child process of these tests reads for ``Runtime(workers=...)``.
CHILD_WORKERS = "STATEWARD_CHILD_WORKERS"


@pytest.fixture(params=["thread", "pool"])
def child_host(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once per host in its child processes: each actor on a
    thread of its own (``thread``: ``Runtime(workers=0)``), or on the default
    pool of 4 workers (``pool``). The children read `CHILD_WORKERS`."""
    monkeypatch.setenv(CHILD_WORKERS, "0" if request.param == "thread" else "4")
    return str(request.param)


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
