"""Fixtures for machines bound to database rows: both databases, the models, a runtime.

``engines`` runs a test once on SQLite (a file on disk) and once on PostgreSQL
(``STATEWARD_PG_URL``). Without that variable the PostgreSQL run skips, saying
so, except in CI (``CI=true``), where it fails: CI must never skip it silently.
Each PostgreSQL test gets a fresh schema (its tables and the audit table live
there, through ``search_path``) that is dropped afterwards, so tests never see
each other's rows.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pg_support import pg_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from stateward.actors import Runtime
from stateward.actors.rows import AUDIT_TABLE, RowBinding, RowMachines
from stateward.core import MachineBuilder, MachineSpec, decode

#: Seconds a teardown may wait for a lock before it gives up (it never hangs).
TEARDOWN_LOCK_TIMEOUT_MS = 10_000


class Base(DeclarativeBase):
    pass


class Order(Base):
    """An order row: the machine's state lives in ``status``."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[str | None] = mapped_column(sa.String(40), unique=True)
    status: Mapped[str] = mapped_column(sa.String(20))
    amount: Mapped[float] = mapped_column(default=0.0)
    version: Mapped[int] = mapped_column(default=0)
    customer: Mapped[str | None] = mapped_column(sa.String(100))
    paid_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(sa.String(200))


class Ticket(Base):
    """A row whose state is stored as an integer, keyed by a string column."""

    __tablename__ = "tickets"

    code: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    state: Mapped[int] = mapped_column()
    rev: Mapped[int] = mapped_column(default=0)
    title: Mapped[str] = mapped_column(sa.String(100), default="")


@dataclass
class Databases:
    """One database for one test: the engine the machines use, and a second one
    (``other``) for raw SQL behind the machines' back."""

    kind: str  # "sqlite" or "postgresql"
    url: str
    schema: str | None
    engine: sa.Engine
    other: sa.Engine
    _extra: list[sa.Engine] = field(default_factory=list)

    @property
    def connect_args(self) -> dict[str, Any]:
        return {"options": f"-csearch_path={self.schema}"} if self.schema else {}

    def new_engine(self, **kwargs: Any) -> sa.Engine:
        """Another engine on the same database (disposed at teardown)."""
        engine = sa.create_engine(self.url, connect_args=self.connect_args, **kwargs)
        self._extra.append(engine)
        return engine

    def execute(self, sql: str, **params: Any) -> int:
        """Run ``sql`` on a separate connection and commit; return the row count."""
        with self.other.begin() as conn:
            return int(conn.execute(sa.text(sql), params).rowcount)

    def row(self, key: Any, table: str = "orders", key_column: str = "id") -> dict[str, Any]:
        """A row as the database has it now, read on a separate connection."""
        with self.other.connect() as conn:
            found = (
                conn.execute(sa.text(f"SELECT * FROM {table} WHERE {key_column} = :k"), {"k": key})
                .mappings()
                .first()
            )
        assert found is not None, f"no row {table}[{key!r}]"
        return dict(found)

    def count(self, table: str = "orders") -> int:
        with self.other.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())

    def audit(self, key: Any = None, table: str = "orders") -> list[dict[str, Any]]:
        """The committed audit entries (of one row, or of the table), oldest first,
        with the payload decoded."""
        query = sa.select(AUDIT_TABLE).where(AUDIT_TABLE.c.table_name == table)
        if key is not None:
            query = query.where(AUDIT_TABLE.c.row_key == str(key))
        with self.other.connect() as conn:
            if not sa.inspect(conn).has_table(AUDIT_TABLE.name):
                return []
            rows = conn.execute(query.order_by(AUDIT_TABLE.c.id)).mappings().all()
        return [{**row, "payload": decode(row["payload"]).to_dict()} for row in rows]

    def dispose(self) -> None:
        for engine in [self.engine, self.other, *self._extra]:
            engine.dispose()


def _sqlite(tmp_path: Path) -> Iterator[Databases]:
    url = f"sqlite:///{tmp_path / 'orders.db'}"
    db = Databases("sqlite", url, None, sa.create_engine(url), sa.create_engine(url))
    Base.metadata.create_all(db.engine)
    try:
        yield db
    finally:
        db.dispose()


def _postgresql() -> Iterator[Databases]:
    url = pg_url()
    schema = f"sw_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        options = {"options": f"-csearch_path={schema}"}
        db = Databases(
            "postgresql",
            url,
            schema,
            sa.create_engine(url, connect_args=options),
            sa.create_engine(url, connect_args=options),
        )
        try:
            Base.metadata.create_all(db.engine)
            yield db
        finally:
            db.dispose()
            with admin.begin() as conn:
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{TEARDOWN_LOCK_TIMEOUT_MS}ms'")
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engines(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Databases]:
    """The test's database: a SQLite file on disk, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield from _sqlite(tmp_path)
    else:
        yield from _postgresql()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Databases]:
    """SQLite only, for what only SQLite does (BEGIN IMMEDIATE, busy timeouts)."""
    yield from _sqlite(tmp_path)


@pytest.fixture
def pg_db() -> Iterator[Databases]:
    """PostgreSQL only, for row locks (FOR UPDATE, NOWAIT, SKIP LOCKED, lock_timeout)."""
    yield from _postgresql()


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    """A runtime for one test, shut down (its row actors and threads gone) afterwards."""
    rt = Runtime("rows-test", default_timeout=30.0)
    yield rt
    rt.shutdown(timeout=10.0)


@pytest.fixture
def order_model() -> type[Order]:
    """The orders model (id, order_id, status, amount, version, customer, paid_at, note)."""
    return Order


@pytest.fixture
def ticket_model() -> type[Ticket]:
    """The tickets model: an integer state column, a string key."""
    return Ticket


MachinesFactory = Callable[..., RowMachines]


def _factory(db: Databases, runtime: Runtime) -> Iterator[MachinesFactory]:
    made: list[RowMachines] = []

    def make(
        spec: MachineSpec | MachineBuilder,
        binding: RowBinding | None = None,
        *,
        engine: Any = None,
        **options: Any,
    ) -> RowMachines:
        options.setdefault("runtime", runtime)
        machines = RowMachines(
            spec,
            binding if binding is not None else RowBinding(Order, version="version"),
            engine if engine is not None else db.engine,
            **options,
        )
        made.append(machines)
        return machines

    yield make
    for machines in made:
        machines.close()


@pytest.fixture
def machines(engines: Databases, runtime: Runtime) -> Iterator[MachinesFactory]:
    """``machines(spec, binding=None, **options)``: a `RowMachines` on ``engines``,
    bound to orders (with the version column) unless told otherwise; closed at the end."""
    yield from _factory(engines, runtime)


@pytest.fixture
def sqlite_machines(sqlite_db: Databases, runtime: Runtime) -> Iterator[MachinesFactory]:
    """`machines` on ``sqlite_db``."""
    yield from _factory(sqlite_db, runtime)


@pytest.fixture
def pg_machines(pg_db: Databases, runtime: Runtime) -> Iterator[MachinesFactory]:
    """`machines` on ``pg_db``."""
    yield from _factory(pg_db, runtime)
