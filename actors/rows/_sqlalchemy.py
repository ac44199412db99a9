"""The binding of a machine to a SQLAlchemy model, and its ORM adapter.

`RowBinding` says which column holds the state, which identifies the row, and
optionally which holds a version counter. `SQLAlchemyAdapter` implements the
`ORMAdapter` protocol on an SQLAlchemy 2.x engine: a transaction that reads a
row (locking it where the mode asks), writes it back only if it is still as
read, and appends to the audit table. This module is imported only when one
of its names is used, so that ``stateward.actors.rows`` needs no SQLAlchemy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Before anything imports SQLAlchemy for real: without the extra, say which one to install.
try:
    import sqlalchemy as sa
except ModuleNotFoundError as _missing:
    if _missing.name != "sqlalchemy":
        raise  # SQLAlchemy is there, something it needs is not: its own error says what
    raise ModuleNotFoundError(
        "the SQLAlchemy binding of stateward.actors.rows (RowBinding, SQLAlchemyAdapter, "
        "AUDIT_TABLE) needs SQLAlchemy 2.0 or newer, which is not installed: "
        "pip install 'stateward[sqlalchemy]' (or 'stateward[postgresql]' for the "
        "PostgreSQL driver too)",
        name="sqlalchemy",
    ) from None
if int(sa.__version__.split(".")[0]) < 2:
    raise ImportError(
        f"the SQLAlchemy binding of stateward.actors.rows needs SQLAlchemy 2.0 or newer, "
        f"found {sa.__version__}: pip install 'stateward[sqlalchemy]' (or "
        "pip install --upgrade 'sqlalchemy>=2.0')",
        name="sqlalchemy",
    )

from sqlalchemy.engine import Connection, Engine

from ._adapter import AUDIT_KEY_LENGTH, AUDIT_TABLE_NAME, ColumnMapping, busy_reason
from ._errors import UnmappedColumn
from ._keys import normalize_key

_AUDIT_METADATA = sa.MetaData()

AUDIT_TABLE = sa.Table(
    AUDIT_TABLE_NAME,
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
"""The audit table (``stateward_audit``): every committed transition of a bound row,
written in the same database transaction as the row itself. One row per transition:
``table_name``, ``row_key`` (at most `AUDIT_KEY_LENGTH` characters), ``from_state``,
``to_state``, ``event``, ``version``, ``at`` (timezone-aware), ``payload`` (the
encoded payload) and ``process`` (the writer's process id); indexed by table, key
and id.
"""


#: Signed integer ranges by column type, on databases whose integer columns
#: have the declared width. SQLite stores every integer in 64 bits.
_BITS = ((sa.SmallInteger, 16), (sa.BigInteger, 64), (sa.Integer, 32))


def _int_bits(column: sa.Column[Any], dialect: str) -> int:
    if dialect == "sqlite":
        return 64
    for kind, bits in _BITS:
        if isinstance(column.type, kind):
            return bits
    return 64


def _python_type(column: sa.Column[Any]) -> type | None:
    try:
        kind = column.type.python_type
    except NotImplementedError:  # a custom type that does not say
        return None
    return None if kind is object else kind


@dataclass(frozen=True)
class RowBinding(ColumnMapping):
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
    def column_names(self) -> list[str]:
        return [c.name for c in self.table.columns]

    def normalize_key(self, key: Any, dialect: str, call: str) -> Any:
        """``key`` as a value of the key column (see `RowMachines.key_of`)."""
        column = self.table.c[self.key]  # type: ignore[index]
        where = (self.name, str(column.name))
        return normalize_key(
            _python_type(column), _int_bits(column, dialect), where, key, dialect, call
        )

    def adapter_for(self, engine: Any) -> SQLAlchemyAdapter:
        """The `SQLAlchemyAdapter` of ``engine`` (a `sqlalchemy.Engine`)."""
        return SQLAlchemyAdapter(engine)


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
        return busy_reason(error.orig)

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
