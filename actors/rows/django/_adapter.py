"""The `ORMAdapter` of the Django binding: transactions on one database alias.

Every transition reads its row inside ``transaction.atomic()``:

- PostgreSQL, pessimistic: ``select_for_update()`` (``nowait``/``skip_locked``
  as asked; ``lock_timeout`` through ``SET LOCAL lock_timeout``);
- optimistic, anywhere: ``UPDATE ... WHERE key AND state [AND version]``;
- SQLite, in both modes: an immediate transaction (Django's
  ``transaction_mode = "IMMEDIATE"``, set for our own transactions even when
  the settings do not), with ``PRAGMA busy_timeout``: one writer at a time,
  no deadlocked lock upgrade, and a lock held past the timeout is `RowBusy`,
  never a raw "database is locked".

Inside the caller's own ``atomic()`` block the move joins it (a savepoint):
it commits with the caller's transaction, and its after-commit hooks run
through ``transaction.on_commit``, only once that commit succeeded.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.utils import ConnectionDoesNotExist

from .._adapter import busy_reason
from ._errors import BindingError

AUDIT_APP = "stateward.actors.rows.django"


class _DjangoTransaction:
    def __init__(self, adapter: DjangoAdapter, binding: Any, lock: str | None) -> None:
        self.adapter = adapter
        self.binding = binding
        self.lock = lock
        self.using = adapter.using
        self.rows = binding.model._base_manager.using(adapter.using)
        self.names = binding.field_names

    def _row(self, key: Any) -> Any:
        return self.rows.filter(**{self.binding.key: key})

    def read(self, key: Any, *, lock: bool) -> dict[str, Any] | None:
        query = self._row(key)
        if lock and self.adapter.dialect == "postgresql":
            query = query.select_for_update(
                nowait=self.lock == "nowait", skip_locked=self.lock == "skip_locked"
            )
        found = list(query.values(*self.binding.column_names)[:1])
        return found[0] if found else None

    def exists(self, key: Any) -> bool:
        return bool(self._row(key).exists())

    def update(
        self, key: Any, values: Mapping[str, Any], *, state_value: Any, version: int | None
    ) -> int:
        query = self._row(key)
        if state_value is not None:
            query = query.filter(**{self.binding.state: state_value})
        if version is not None and self.binding.version is not None:
            query = query.filter(**{self.binding.version: version})
        return int(query.update(**dict(values)))

    def insert(self, values: Mapping[str, Any]) -> Any:
        row = self.binding.model(**dict(values))
        row.save(using=self.using, force_insert=True)
        return getattr(row, str(self.binding.key))

    def audit(self, entry: Mapping[str, Any]) -> None:
        fields = dict(entry)
        if not settings.USE_TZ:  # Django stores naive datetimes then: in UTC
            fields["at"] = fields["at"].astimezone(_dt.UTC).replace(tzinfo=None)
        self.adapter.audit_model()._base_manager.using(self.using).create(**fields)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction commits: at once after our own
        commit, or after the caller's, if the move joined it; never on a rollback."""
        transaction.on_commit(callback, using=self.using)


class DjangoAdapter:
    """The `ORMAdapter` for Django (PostgreSQL and SQLite tested).

    Args:
        using: the database alias (``settings.DATABASES``).
        busy_timeout: SQLite only: seconds to wait for the database lock before
            giving up with `RowBusy` (never a raw "database is locked").
        audit_model: the audit model (by default the ``AuditEntry`` of the app
            ``stateward.actors.rows.django``).

    Raises:
        BindingError: ``using`` is not a configured database.
    """

    def __init__(
        self, using: str = "default", *, busy_timeout: float = 5.0, audit_model: Any = None
    ) -> None:
        try:
            connection = connections[using]
        except ConnectionDoesNotExist:
            raise BindingError(
                f"no database {using!r} in settings.DATABASES (configured: "
                f"{', '.join(map(repr, settings.DATABASES))})"
            ) from None
        self.using = using
        self.dialect = str(connection.vendor)
        self.busy_timeout = busy_timeout
        self._audit_model = audit_model
        # The connections our transactions left open, by thread (Django's are
        # per thread): close() closes them, the row actors' threads' included.
        self._open: dict[int, Any] = {}
        self._open_lock = threading.Lock()

    def audit_model(self) -> Any:
        """The audit model (the default one is looked up once the apps are loaded)."""
        if self._audit_model is not None:
            return self._audit_model
        try:
            return apps.get_model("stateward_rows", "AuditEntry")
        except LookupError:
            raise BindingError(
                f"the audit needs the app {AUDIT_APP!r} in INSTALLED_APPS (then run "
                "manage.py migrate), an audit_model= of your own, or audit=False"
            ) from None

    def joins_caller(self) -> bool:
        """Whether the calling thread is inside an ``atomic()`` block on this
        database: a move then joins that transaction, in this thread."""
        return bool(connections[self.using].in_atomic_block)

    @contextlib.contextmanager
    def transaction(
        self, binding: Any, *, lock: str | None, lock_timeout: float | None
    ) -> Iterator[_DjangoTransaction]:
        connection = connections[self.using]
        joined = connection.in_atomic_block
        swapped, mode = False, None
        if not joined:
            connection.ensure_connection()
            if self.dialect == "sqlite":
                with connection.cursor() as cursor:
                    cursor.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
                # Take the write lock up front, in both modes, so that two writers
                # never both read and then fail to upgrade (SQLite refuses such a
                # deadlock at once, busy timeout or not): BEGIN IMMEDIATE.
                mode, connection.transaction_mode = connection.transaction_mode, "IMMEDIATE"
                swapped = True
        try:
            with transaction.atomic(using=self.using):
                restore = self._lock_timeout(connection, lock_timeout, joined)
                yield _DjangoTransaction(self, binding, lock)
                if restore is not None:
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [restore])
        finally:
            if swapped:
                connection.transaction_mode = mode
            if not joined:
                # As at the end of a request: honours CONN_MAX_AGE, drops a broken connection.
                connection.close_if_unusable_or_obsolete()
                with self._open_lock:
                    self._open[threading.get_ident()] = connection

    def close(self) -> None:
        """Close the connections this adapter's transactions left open, in
        every thread (`RowMachines.close` calls it once its actors stopped)."""
        with self._open_lock:
            opened, self._open = list(self._open.values()), {}
        for connection in opened:
            connection.inc_thread_sharing()
            try:
                connection.close()
            finally:
                connection.dec_thread_sharing()

    def _lock_timeout(self, connection: Any, seconds: float | None, joined: bool) -> str | None:
        """PostgreSQL: wait at most ``seconds`` for row locks in this transaction;
        in a joined transaction, return the setting to restore afterwards."""
        if self.dialect != "postgresql" or seconds is None:
            return None
        with connection.cursor() as cursor:
            previous = None
            if joined:
                cursor.execute("SHOW lock_timeout")
                previous = cursor.fetchone()[0]
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, true)", [f"{int(seconds * 1000)}ms"]
            )
        return previous

    def busy(self, error: BaseException) -> str | None:
        if not isinstance(error, DatabaseError):
            return None
        return busy_reason(error.__cause__ or error)

    def create_audit_table(self) -> None:
        """Check that the audit table exists: Django creates it by migration."""
        model = self.audit_model()
        table = model._meta.db_table
        with connections[self.using].cursor() as cursor:
            tables = connections[self.using].introspection.table_names(cursor)
        if table not in tables:
            raise BindingError(
                f"the audit table {table!r} does not exist in database {self.using!r}: run "
                f"manage.py migrate (the app {model._meta.app_config.name!r} ships its "
                "migration), or pass audit=False"
            )

    def audit_entries(self, table: str, key: Any) -> list[dict[str, Any]]:
        query = (
            self.audit_model()
            ._base_manager.using(self.using)
            .filter(table_name=table, row_key=str(key))
            .order_by("id")
        )
        entries = []
        for entry in query.values():
            entry["payload"] = bytes(entry["payload"])
            entries.append(entry)
        return entries
