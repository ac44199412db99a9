"""What `RowMachines` needs from a binding and from an ORM, with no ORM imported.

A binding (`RowBinding` for SQLAlchemy, `DjangoBinding` for Django) says which
column of a model holds the state, which identifies the row, and optionally
which holds a version counter; `ColumnMapping` is the part of it that maps
machine states to stored values and rows to hook data, the same for every ORM.
An `ORMAdapter` opens the transactions in which a row is read, written back
only if it is still as read, and audited. Each ORM's binding lives in its own
module, imported only when it is used.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import decimal
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from stateward.core import ImmutableState, encode

from ._errors import UnknownStateValue, UnmappedColumn

AUDIT_KEY_LENGTH = 200
"""How many characters of a row's key the audit table keeps (its ``row_key``)."""

#: The audit table's name, for every ORM.
AUDIT_TABLE_NAME = "stateward_audit"


def plain(value: Any) -> Any:
    """A column value as the hooks see it: values ImmutableState cannot hold are
    given as text (Decimal, date, time, UUID), so nothing is silently rounded."""
    if isinstance(value, (decimal.Decimal, uuid.UUID, _dt.date, _dt.time)) and not isinstance(
        value, _dt.datetime
    ):
        return str(value)
    return value


class ColumnMapping:
    """The ORM-neutral half of a binding: states to stored values, rows to data.

    A subclass sets ``state``, ``key``, ``version``, ``states`` and ``columns``
    and provides ``name`` (the table) and ``column_names`` (every column).
    """

    state: str
    key: str | None
    version: str | None
    states: Mapping[str, Any] | None
    columns: Sequence[str] | None

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def column_names(self) -> list[str]:
        raise NotImplementedError

    @property
    def data_columns(self) -> list[str]:
        if self.columns is not None:
            return list(self.columns)
        fixed = {self.state, self.key, self.version}
        return [name for name in self.column_names if name not in fixed]

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
        return ImmutableState({name: plain(row[name]) for name in self.data_columns})

    def check_columns(self, names: Sequence[str], where: str) -> None:
        known = self.column_names
        for name in names:
            if name not in known:
                raise UnmappedColumn(self.name, name, known, where)


class ModelBinding(Protocol):
    """What `RowMachines` needs from a binding (`RowBinding`, `DjangoBinding`)."""

    @property
    def state(self) -> str: ...

    @property
    def key(self) -> str | None: ...

    @property
    def version(self) -> str | None: ...

    @property
    def states(self) -> Mapping[str, Any] | None: ...

    @property
    def name(self) -> str: ...

    @property
    def data_columns(self) -> list[str]: ...

    def value_of(self, state: str) -> Any: ...

    def state_of(self, row: object, value: Any, known: Sequence[str]) -> str: ...

    def data_of(self, row: Mapping[str, Any]) -> ImmutableState: ...

    def check_columns(self, names: Sequence[str], where: str) -> None: ...

    def normalize_key(self, key: Any, dialect: str, call: str) -> Any:
        """``key`` as the key column holds it, or `InvalidRowKey`."""

    def adapter_for(self, engine: Any) -> ORMAdapter:
        """The adapter of this binding's ORM for ``engine`` (an engine, a
        database alias...)."""


class RowTransaction(Protocol):
    """One database transaction on bound rows.

    A transaction may also have ``after_commit(callback)``: then `RowMachines`
    hands it the after-commit hooks, to run once the transaction (or the
    caller's, which it joined) has committed, instead of running them itself
    when the block ends (the Django binding's ``transaction.on_commit``).
    """

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
        self, binding: Any, *, lock: str | None, lock_timeout: float | None
    ) -> contextlib.AbstractContextManager[RowTransaction]:
        """A transaction that commits when the block ends normally."""

    def busy(self, error: BaseException) -> str | None:
        """Why ``error`` means "locked by another transaction", or None."""

    def create_audit_table(self) -> None:
        """Create the audit table if it does not exist."""

    def audit_entries(self, table: str, key: Any) -> list[dict[str, Any]]:
        """The audit entries of one row, oldest first."""


def joins_caller(adapter: ORMAdapter) -> bool:
    """Whether a transition now should run in the caller's thread, inside the
    caller's own open transaction (an adapter's optional ``joins_caller()``:
    Django's ``transaction.atomic()`` block), rather than in the row's actor."""
    check = getattr(adapter, "joins_caller", None)
    return bool(check()) if check is not None else False


def busy_reason(original: BaseException | None) -> str | None:
    """Why a driver's error means "locked by another transaction", or None:
    PostgreSQL's SQLSTATEs (psycopg 3 ``sqlstate``, psycopg2 ``pgcode``) and
    SQLite's "database is locked"."""
    if original is None:
        return None
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


def is_adapter(engine: object) -> bool:
    """Whether ``engine`` is an `ORMAdapter` already (rather than what a binding
    makes one of: an engine, a database alias)."""
    return all(hasattr(engine, name) for name in ("dialect", "transaction", "busy"))


def audit_entry(
    binding: ModelBinding,
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
