"""The binding of a machine to a SQLAlchemy model, and the ORM adapter underneath.

`RowBinding` says which column holds the state, which identifies the row, and
optionally which holds a version counter. `SQLAlchemyAdapter` implements the
small `ORMAdapter` protocol on an SQLAlchemy 2.x engine: a transaction that
reads a row (locking it where the mode asks), writes it back only if it is
still as read, and appends to the audit table. Other ORMs can implement the
same protocol.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import decimal
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from stateward.core import ImmutableState, encode

from ._errors import UnknownStateValue, UnmappedColumn

_AUDIT_METADATA = sa.MetaData()

#: How many characters of a row's key the audit table keeps (its ``row_key``).
AUDIT_KEY_LENGTH = 200

#: The audit table: every committed transition of a bound row, written in the
#: same database transaction as the row itself.
AUDIT_TABLE = sa.Table(
    "stateward_audit",
    _AUDIT_METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("table_name", sa.String(200), nullable=False),
    sa.Column("row_key", sa.String(AUDIT_KEY_LENGTH), nullable=False),
    sa.Column("from_state", sa.String(200), nullable=True),
    sa.Column("to_state", sa.String(200), nullable=False),
    sa.Column("event", sa.String(200), nullable=True),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("process", sa.Integer, nullable=False),
    sa.Index("ix_stateward_audit_row", "table_name", "row_key", "id"),
)


def _plain(value: Any) -> Any:
    """A column value as the hooks see it: values ImmutableState cannot hold are
    given as text (Decimal, date, time, UUID), so nothing is silently rounded."""
    if isinstance(value, (decimal.Decimal, uuid.UUID, _dt.date, _dt.time)) and not isinstance(
        value, _dt.datetime
    ):
        return str(value)
    return value


@dataclass(frozen=True)
class RowBinding:
    """Which columns of a SQLAlchemy model a machine uses.

    Args:
        model: a mapped class (or a `sqlalchemy.Table`).
        state: the column that holds the state.
        key: the column that identifies a row (the primary key by default).
        version: an optional integer column, increased by one per transition;
            optimistic mode compares it.
        states: machine state -> column value, when they differ (an integer
            column, say). By default the column holds the state's name.
        columns: the columns hooks see as ``ctx.data`` and may change (by
            returning them from enter/exit hooks); by default every other column.

    Raises:
        UnmappedColumn: a named column does not exist.
    """

    model: Any
    state: str = "status"
    key: str | None = None
    version: str | None = None
    states: Mapping[str, Any] | None = None
    columns: Sequence[str] | None = None
    table: sa.Table = field(init=False, repr=False)

    def __post_init__(self) -> None:
        table = (
            self.model if isinstance(self.model, sa.Table) else sa.inspect(self.model).local_table
        )
        object.__setattr__(self, "table", table)
        names = [c.name for c in table.columns]
        key = self.key
        if key is None:
            primary = [c.name for c in table.primary_key.columns]
            if len(primary) != 1:
                raise UnmappedColumn(
                    table.name,
                    "<key>",
                    names,
                    "RowBinding needs key= (the table has no single-column primary key)",
                )
            object.__setattr__(self, "key", primary[0])
        for role, name in (("state", self.state), ("key", self.key), ("version", self.version)):
            if name is not None and name not in names:
                raise UnmappedColumn(table.name, name, names, f"RowBinding {role}=")
        for name in self.columns or ():
            if name not in names:
                raise UnmappedColumn(table.name, name, names, "RowBinding columns=")

    @property
    def name(self) -> str:
        return str(self.table.name)

    @property
    def data_columns(self) -> list[str]:
        if self.columns is not None:
            return list(self.columns)
        fixed = {self.state, self.key, self.version}
        return [c.name for c in self.table.columns if c.name not in fixed]

    def value_of(self, state: str) -> Any:
        """The column value that stands for ``state``."""
        return state if self.states is None else self.states[state]

    def state_of(self, row: object, value: Any, known: Sequence[str]) -> str:
        """The machine state a column value stands for."""
        if self.states is None:
            if value in known:
                return str(value)
            raise UnknownStateValue(self.name, row, self.state, value, list(known))
        for state, stored in self.states.items():
            if stored == value:
                return state
        raise UnknownStateValue(self.name, row, self.state, value, list(self.states.values()))

    def data_of(self, row: Mapping[str, Any]) -> ImmutableState:
        return ImmutableState({name: _plain(row[name]) for name in self.data_columns})

    def check_columns(self, names: Sequence[str], where: str) -> None:
        known = [c.name for c in self.table.columns]
        for name in names:
            if name not in known:
                raise UnmappedColumn(self.name, name, known, where)


class RowTransaction(Protocol):
    """One database transaction on bound rows."""

    def read(self, key: Any, *, lock: bool) -> dict[str, Any] | None:
        """The row's columns, locked for this transaction when ``lock``."""

    def exists(self, key: Any) -> bool:
        """Whether a row with that key exists (no lock)."""

    def update(
        self, key: Any, values: Mapping[str, Any], *, state_value: Any, version: int | None
    ) -> int:
        """Write ``values`` if the row still has ``state_value`` (and ``version``);
        return the number of rows written."""

    def insert(self, values: Mapping[str, Any]) -> Any:
        """Insert a row; return its key."""

    def audit(self, entry: Mapping[str, Any]) -> None:
        """Append one entry to the audit table."""


class ORMAdapter(Protocol):
    """What `RowMachines` needs from an ORM."""

    dialect: str

    def transaction(
        self, binding: RowBinding, *, lock: str | None, lock_timeout: float | None
    ) -> contextlib.AbstractContextManager[RowTransaction]:
        """A transaction that commits when the block ends normally."""

    def busy(self, error: BaseException) -> str | None:
        """Why ``error`` means "locked by another transaction", or None."""

    def create_audit_table(self) -> None:
        """Create the audit table if it does not exist."""

    def audit_entries(self, table: str, key: Any) -> list[dict[str, Any]]:
        """The audit entries of one row, oldest first."""


class _SQLAlchemyTransaction:
    def __init__(
        self, conn: Connection, binding: RowBinding, lock: str | None, dialect: str
    ) -> None:
        self.conn = conn
        self.binding = binding
        self.lock = lock
        self.dialect = dialect
        self.key_column = binding.table.c[binding.key]  # type: ignore[index]

    def read(self, key: Any, *, lock: bool) -> dict[str, Any] | None:
        query = sa.select(self.binding.table).where(self.key_column == key)
        if lock and self.dialect == "postgresql":
            query = query.with_for_update(
                nowait=self.lock == "nowait", skip_locked=self.lock == "skip_locked"
            )
        row = self.conn.execute(query).mappings().first()
        return None if row is None else dict(row)

    def exists(self, key: Any) -> bool:
        query = sa.select(sa.literal(1)).where(self.key_column == key)
        return self.conn.execute(query).first() is not None

    def update(
        self, key: Any, values: Mapping[str, Any], *, state_value: Any, version: int | None
    ) -> int:
        table = self.binding.table
        query = sa.update(table).where(self.key_column == key).values(**values)
        if state_value is not None:
            query = query.where(table.c[self.binding.state] == state_value)
        if version is not None and self.binding.version is not None:
            query = query.where(table.c[self.binding.version] == version)
        return int(self.conn.execute(query).rowcount)

    def insert(self, values: Mapping[str, Any]) -> Any:
        result = self.conn.execute(sa.insert(self.binding.table).values(**values))
        primary = result.inserted_primary_key
        if self.binding.key in values:
            return values[self.binding.key]  # type: ignore[index]
        return primary[0] if primary else None

    def audit(self, entry: Mapping[str, Any]) -> None:
        self.conn.execute(sa.insert(AUDIT_TABLE).values(**entry))


class SQLAlchemyAdapter:
    """The `ORMAdapter` for SQLAlchemy 2.x engines (PostgreSQL and SQLite tested).

    Args:
        engine: the engine (a `sqlalchemy.Engine`).
        busy_timeout: SQLite only: seconds to wait for the database lock before
            giving up with `RowBusy` (never a raw "database is locked").
    """

    def __init__(self, engine: Engine, *, busy_timeout: float = 5.0) -> None:
        if not isinstance(engine, Engine):
            raise TypeError(f"SQLAlchemyAdapter needs a sqlalchemy Engine, got {engine!r}")
        self.engine = engine
        self.dialect = engine.dialect.name
        self.busy_timeout = busy_timeout

    @contextlib.contextmanager
    def transaction(
        self, binding: RowBinding, *, lock: str | None, lock_timeout: float | None
    ) -> Iterator[_SQLAlchemyTransaction]:
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
                if lock is not None:
                    # Take the write lock up front, so two writers never both read
                    # and then both fail to upgrade: SQLite's BEGIN IMMEDIATE.
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif self.dialect == "postgresql" and lock_timeout is not None:
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(lock_timeout * 1000)}ms'")
            try:
                yield _SQLAlchemyTransaction(conn, binding, lock, self.dialect)
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def busy(self, error: BaseException) -> str | None:
        if not isinstance(error, sa.exc.DBAPIError):
            return None
        original = error.orig
        code = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
        if code == "55P03":
            return "lock not available (NOWAIT or lock_timeout)"
        if code == "40P01":
            return "deadlock detected"
        if code == "40001":
            return "serialization failure"
        text = str(original).lower()
        if "database is locked" in text or "database table is locked" in text:
            return "SQLite database locked past the busy timeout"
        return None

    def create_audit_table(self) -> None:
        try:
            _AUDIT_METADATA.create_all(self.engine, checkfirst=True)
        except sa.exc.DBAPIError:
            # Several processes starting at once may all find the table missing
            # and all create it: the ones that lose fail ("already exists", or a
            # unique violation in PostgreSQL's catalog). That is success, if
            # the table is there now; anything else is a real error.
            with self.engine.connect() as conn:
                if not sa.inspect(conn).has_table(AUDIT_TABLE.name):
                    raise

    def audit_entries(self, table: str, key: Any) -> list[dict[str, Any]]:
        query = (
            sa.select(AUDIT_TABLE)
            .where(AUDIT_TABLE.c.table_name == table, AUDIT_TABLE.c.row_key == str(key))
            .order_by(AUDIT_TABLE.c.id)
        )
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]


def audit_entry(
    binding: RowBinding,
    key: Any,
    from_state: str | None,
    to_state: str,
    event: str | None,
    version: int | None,
    at: _dt.datetime,
    payload: ImmutableState,
) -> dict[str, Any]:
    return {
        "table_name": binding.name,
        "row_key": str(key),
        "from_state": from_state,
        "to_state": to_state,
        "event": event,
        "version": version,
        "at": at,
        "payload": encode(payload),
        "process": os.getpid(),
    }
