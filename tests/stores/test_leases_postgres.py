"""The lease logic of ``stores/_leases.py`` on PostgreSQL, for the PostgresStore to share.

Two connections stand for two hosts; at the end, two `PostgresStore` objects
whose clients' clocks disagree. Without ``STATEWARD_PG_URL`` the test
skips (CI always sets it). Each test works in a schema of its own, dropped at
the end.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from stateward.actors import ActorOwned, LeaseLost, PostgresStore, Runtime
from stateward.actors.stores._leases import POSTGRES_TABLE, Leases
from stateward.core import ImmutableState
from stateward.core._persist import ManagerCodec
from stateward.core._store import StoreSnapshot

psycopg = pytest.importorskip("psycopg")

LEASE = 30.0
TABLES = (
    "CREATE TABLE owners (name TEXT PRIMARY KEY, runtime_id TEXT NOT NULL)",
    "CREATE TABLE journal (name TEXT NOT NULL, version BIGINT NOT NULL, "
    "at DOUBLE PRECISION NOT NULL, payload BYTEA NOT NULL, PRIMARY KEY (name, version))",
    POSTGRES_TABLE,
)


def pg_url() -> str:
    url = os.environ.get("STATEWARD_PG_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("STATEWARD_PG_URL is not set, and CI=true: PostgreSQL tests never skip")
        pytest.skip("no PostgreSQL: set STATEWARD_PG_URL (CI always does)")
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


class WallClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def connections() -> Iterator[tuple[Any, Any]]:
    url = pg_url()
    schema = f"leases_{uuid.uuid4().hex[:12]}"
    admin = psycopg.connect(url, autocommit=True)
    admin.execute(f"CREATE SCHEMA {schema}")
    first = psycopg.connect(url, options=f"-c search_path={schema}")
    second = psycopg.connect(url, options=f"-c search_path={schema}")
    try:
        with first.transaction():
            for statement in TABLES:
                first.execute(statement)
        yield first, second
    finally:
        first.close()
        second.close()
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


def claim(conn: Any, leases: Leases, name: str, runtime: str) -> int:
    """A claim's transaction, as a PostgresStore runs it."""
    with conn.transaction():
        cur = conn.cursor()
        row = cur.execute("SELECT runtime_id FROM owners WHERE name = %s", (name,)).fetchone()
        if row is not None and row[0] != runtime:
            lease = leases.holder_live(cur.execute, runtime, row[0])
            if lease is not None:
                raise ActorOwned(name, leases.describe(row[0], lease))
            leases.revoke(cur.execute, row[0])
        epoch = leases.acquire(cur.execute, runtime, [name])
        cur.execute(
            "INSERT INTO owners VALUES (%s, %s) ON CONFLICT (name) DO UPDATE "
            "SET runtime_id = EXCLUDED.runtime_id",
            (name, runtime),
        )
    leases.claimed(name, epoch)
    return epoch


def commit(conn: Any, leases: Leases, name: str, version: int) -> None:
    """A commit's fenced journal insert, as a PostgresStore runs it."""
    with conn.transaction():
        cur = conn.cursor()
        leases.fenced_insert(
            cur.execute,
            "journal",
            "(%s, %s, %s, %s)",
            (name, version, time.time(), b"x"),
            [name],
            leases.epochs_of([name]),
        )


def test_a_zombie_host_commits_nothing_after_its_lease_was_taken_over_on_postgres(
    connections: tuple[Any, Any],
) -> None:
    first, second = connections
    clock = WallClock()
    zombie_leases = Leases("pg", LEASE, clock, dialect="postgres")
    heir_leases = Leases("pg", LEASE, clock, dialect="postgres")
    with Runtime("zombie") as zombie, Runtime("heir") as heir:
        assert claim(first, zombie_leases, "counter", zombie.runtime_id) == 1
        commit(first, zombie_leases, "counter", 1)
        with pytest.raises(ActorOwned, match=r"lease epoch 1\) until"):
            claim(second, heir_leases, "counter", heir.runtime_id)

        clock.now += LEASE + 1
        assert claim(second, heir_leases, "counter", heir.runtime_id) == 2
        commit(second, heir_leases, "counter", 2)
        with pytest.raises(LeaseLost) as lost:
            commit(first, zombie_leases, "counter", 3)
        assert (lost.value.held, lost.value.current) == (1, 2)
        with pytest.raises(LeaseLost):
            zombie_leases.renew(first.cursor().execute, zombie.runtime_id)
        first.rollback()
    rows = second.execute("SELECT version FROM journal ORDER BY version").fetchall()
    assert rows == [(1,), (2,)]


def test_a_takeover_waits_for_a_commit_that_checked_the_lease_on_postgres(
    connections: tuple[Any, Any],
) -> None:
    """Under READ COMMITTED, the fence locks the lease row it checks: a
    takeover's delete waits for that commit instead of slipping past it."""
    first, second = connections
    clock = WallClock()
    zombie_leases = Leases("pg", LEASE, clock, dialect="postgres")
    heir_leases = Leases("pg", LEASE, clock, dialect="postgres")
    with Runtime("zombie") as zombie, Runtime("heir") as heir:
        claim(first, zombie_leases, "counter", zombie.runtime_id)
        clock.now += LEASE + 1
        with first.transaction():  # a commit under way: the fence has checked the lease
            cur = first.cursor()
            assert (
                zombie_leases.lost_epochs(cur.execute, zombie_leases.epochs_of(["counter"]))
                == set()
            )
            second.execute("SET lock_timeout = '200ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                claim(second, heir_leases, "counter", heir.runtime_id)
            second.rollback()
        assert claim(second, heir_leases, "counter", heir.runtime_id) == 2


def test_clients_whose_clocks_disagree_agree_on_leases_by_the_servers_clock(
    pg_schema: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``lease_clock``, a `PostgresStore` measures leases by the
    server's clock: a holder whose clock runs an hour behind still holds its
    name against a claimant whose clock runs an hour ahead, and the lease row
    expires ``lease_seconds`` after the server's now."""
    url, schema = pg_schema
    codec = ManagerCodec()
    real_time = time.time
    holder_store = PostgresStore(url, schema=schema, lease_seconds=LEASE)
    ahead_store = PostgresStore(url, schema=schema, lease_seconds=LEASE)
    try:
        with Runtime("holder") as holder, Runtime("ahead") as ahead:
            monkeypatch.setattr(time, "time", lambda: real_time() - 3600)
            assert holder_store.claim("counter", codec, holder.runtime_id) is None
            holder_store.create("counter", codec, StoreSnapshot(ImmutableState(n=0), 0))
            monkeypatch.setattr(time, "time", lambda: real_time() + 3600)
            with pytest.raises(ActorOwned, match=r"lease epoch 1\) until"):
                ahead_store.claim("counter", codec, ahead.runtime_id)
            monkeypatch.undo()
            with psycopg.connect(pg_url(), autocommit=True) as conn:
                left = conn.execute(
                    f"SELECT expires - extract(epoch FROM clock_timestamp())::float8 "
                    f"FROM {schema}.leases"
                ).fetchall()
            assert len(left) == 1 and LEASE - 20 < left[0][0] <= LEASE
    finally:
        ahead_store.close()
        holder_store.close()
