"""The PostgreSQL store: snapshots and a journal of deltas in a schema of a PostgreSQL database.

The same records and recovery as `SQLiteStore` (`_records`), the same group
commit (`_group_commit`) and the same ownership rule: leases, with the fence
checked in every commit's transaction (`_leases`, `_postgres_names`), on one
psycopg 3 connection per store (`_postgres_open`).
"""

from __future__ import annotations

import contextlib
import datetime
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from stateward.core import decode
from stateward.core._persist import KindCodec, RecordUpgrades

from .._errors import RecoveryError, StoreOpenError, StoreWriteError
from ._group_commit import GroupCommit, Pending, group
from ._leases import DEFAULT_LEASE_SECONDS, Leases
from ._postgres_names import PgNames
from ._postgres_open import Link, Problem, Target, check_schema_name, prepare
from ._protocol import RecoveryReport, StoredActor
from ._records import journal_entry, recover_records
from ._requests import applied, prune, record, requested
from ._sqlite_file import listed
from ._timer_index import due_rows, timed, write_index

DURABILITY_MODES = ("strict", "batched")
#: Journal entries a commit writes with its lease check in one statement (4
#: parameters each: far below PostgreSQL's 65,535); a larger batch checks first.
_ROWS_PER_FENCED_INSERT = 1000


class PostgresStore(GroupCommit, PgNames):
    """Snapshots and a journal in a PostgreSQL database, for any number of actors.

    Durability modes (PostgreSQL's own ``synchronous_commit`` decides when
    the server counts a transaction as durable; its default, ``on``, waits
    for the write-ahead log to be flushed):

    - ``"strict"`` (default): every commit is its own transaction, committed
      before the actor publishes it and replies.
    - ``"batched"``: group commit. Commits from all actors that wait at the
      same time go in one transaction; each waits for it to be committed.
      Nothing acknowledged is lost either, with far fewer round trips.

    Its tables live in the schema ``schema`` of the database, created with
    them: stores (and tests) with different schemas share a database without
    clashing.

    Args:
        url: ``postgresql://user:password@host:port/database`` (also
            ``postgres://`` and SQLAlchemy's ``postgresql+psycopg://``). The
            password is used to connect and shown nowhere: not in the
            store's repr, its errors or its logs.
        durability: ``"strict"`` or ``"batched"``.
        schema: the schema that holds the tables (a lower-case SQL name).
        snapshot_every: journal entries between snapshots.
        keep_snapshots: snapshots kept per actor (older journal entries are
            compacted away); recovery falls back to an older one if the newest
            is corrupt.
        connect_timeout: seconds to wait for the server when connecting.
        upgrades: `RecordUpgrades` for records written by older code.
        lease_seconds: how long a runtime's lease on this store lasts unless
            renewed (`_leases`): a runtime that stops renewing (a paused or
            cut-off process) loses its names to the next claim that long
            after its last renewal, and its later commits raise `LeaseLost`.
            Its runtime renews it every third of that.
        lease_clock: the wall clock leases are measured by (seconds, like
            ``time.time``), for tests; by default the server's
            (``clock_timestamp()``), so clients whose clocks disagree agree.

    One connection serves the store, one user at a time. When it is lost,
    the commit in flight fails with `StoreWriteError` unless the store can
    tell, on a new connection, that it was committed after all; the next use
    connects again. A commit's journal entry and the snapshot due with it,
    and in batched mode every commit of a group commit, are one transaction:
    all of them are committed or none.

    Raises:
        StoreOpenError: the URL is not a PostgreSQL URL, the server cannot be
            reached or refuses the login, or the schema is not a stateward
            store this code can read (the message names the host and the
            database, never the password). Nothing is written in that case.
    """

    def __init__(
        self,
        url: str,
        *,
        durability: str = "strict",
        schema: str = "stateward",
        snapshot_every: int = 100,
        keep_snapshots: int = 2,
        connect_timeout: float = 10.0,
        upgrades: RecordUpgrades | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        lease_clock: Callable[[], float] | None = None,
    ) -> None:
        if durability not in DURABILITY_MODES:
            raise ValueError(
                f"durability must be one of {', '.join(DURABILITY_MODES)}, got {durability!r}"
                + (" (snapshot mode is SQLiteStore's)" if durability == "snapshot" else "")
            )
        if not isinstance(snapshot_every, int) or snapshot_every < 1:
            raise ValueError(f"snapshot_every must be an int >= 1, got {snapshot_every!r}")
        if not isinstance(keep_snapshots, int) or keep_snapshots < 1:
            raise ValueError(f"keep_snapshots must be an int >= 1, got {keep_snapshots!r}")
        if not 0 < connect_timeout <= threading.TIMEOUT_MAX:
            raise ValueError(f"connect_timeout must be > 0 seconds, got {connect_timeout!r}")
        self.schema = check_schema_name(schema)
        self.target = Target(url)
        # The leases of the runtimes that own names through this store object.
        where = f"{self.target.shown!r} schema {self.schema!r}"
        self._leases = Leases(where, lease_seconds, lease_clock, "postgres", self.schema)
        self.lease_seconds = self._leases.seconds
        self.durability = durability
        self.snapshot_every = snapshot_every
        self.keep_snapshots = keep_snapshots
        self.upgrades = upgrades or RecordUpgrades()
        self._lock = threading.RLock()
        self._closed = False
        self._reports: dict[str, RecoveryReport] = {}
        self._link = Link(self.target, self.schema, connect_timeout, self._lock)
        try:
            prepare(self._link)
        except BaseException:
            self._link.close()
            raise
        GroupCommit.__init__(self)
        PgNames.__init__(self)

    @property
    def url(self) -> str:
        """The store's URL without its password."""
        return self.target.shown

    # -- the protocol ------------------------------------------------------------------------

    def commit(
        self, name: str, codec: KindCodec, old: Any, new: Any, request_id: str | None = None
    ) -> None:
        """Make one commit durable (per the mode) before returning, with the
        id of the request that made it, if given."""
        item = journal_entry(name, codec, old, new, self.snapshot_every, request_id)
        if self.durability == "strict":
            self._write_observed([item])
        else:
            self._write_batched(item)

    def stage_entry(
        self, name: str, codec: KindCodec, old: Any, new: Any, request_id: str | None = None
    ) -> Pending | None:
        """The journal entry of one commit, for a pooled worker's commit batch
        to write with others (`write_staged`) before it publishes or answers
        any of them."""
        return journal_entry(name, codec, old, new, self.snapshot_every, request_id)

    def write_staged(self, items: list[Pending]) -> None:
        """Write the entries of several staged commits in one transaction,
        durably per the mode: all of them, or (raising `StoreWriteError`) none."""
        if self.durability == "strict":
            self._write_observed(items)
        else:
            self._write_batched(group(items))

    def _write(self, items: list[Pending]) -> None:
        """Write journal entries, and the snapshots due with them, in one
        transaction: all of them, or (a `StoreWriteError`) none."""
        names = [item.name for item in items]
        self._check_open(names)
        s = self.schema
        now = time.time()
        try:
            with self._link.transaction() as conn, conn.cursor() as cursor:
                rows = [(item.name, item.version, now, item.payload) for item in items]
                # The fence: every lease these commits were claimed under still
                # holds, its row locked until the commit (a takeover waits).
                epochs = self._leases.epochs_of(names)
                if epochs and len(rows) <= _ROWS_PER_FENCED_INSERT:
                    # Checked by the statement that writes the entries: no
                    # round trip of its own.
                    values = ", ".join(["(%s, %s, %s, %s)"] * len(rows))
                    flat = [value for row in rows for value in row]
                    table = f"{s}.journal"
                    self._leases.fenced_insert(cursor.execute, table, values, flat, names, epochs)
                else:
                    if self._leases.lost_epochs(cursor.execute, epochs):
                        raise self._leases.lost_error(cursor.execute, names, epochs)
                    cursor.executemany(f"INSERT INTO {s}.journal VALUES (%s, %s, %s, %s)", rows)
                record(cursor.executemany, requested(items), f"{s}.requests", "%s")
                write_index(cursor.execute, f"{s}.timers", "%s", timed(items))
                for item in items:
                    if item.snapshot is not None:
                        cursor.execute(
                            f"INSERT INTO {s}.snapshots VALUES (%s, %s, %s, %s) "
                            "ON CONFLICT (name, version) DO UPDATE SET at = EXCLUDED.at, "
                            "payload = EXCLUDED.payload",
                            (item.name, item.version, now, item.snapshot),
                        )
                        self._compact(cursor, item.name)
                        prune(cursor.execute, item.name, item.version, f"{s}.requests", "%s")
        except Problem as exc:
            if exc.lost and self._landed(items[0]):
                return  # the connection went after the server committed it
            raise StoreWriteError(listed(names), exc.text) from None

    def _fenced_out(self, names: list[str]) -> set[str]:
        try:
            with self._link.transaction() as conn:
                return self._leases.fenced(conn.execute, names)
        except Problem as exc:
            raise StoreWriteError(listed(names), exc.text) from None

    def _landed(self, item: Pending) -> bool:
        """After a lost connection: whether the transaction that held ``item``
        was committed (all of a transaction is, or none). Its server process
        is ended first, so that it cannot commit after the look. If that
        cannot be done, the commit counts as failed."""
        if not self._link.settle():
            return False
        try:
            with self._link.transaction() as conn:
                row = conn.execute(
                    f"SELECT payload FROM {self.schema}.journal WHERE name = %s AND version = %s",
                    (item.name, item.version),
                ).fetchone()
        except Problem:
            return False
        return row is not None and bytes(row[0]) == item.payload

    def _compact(self, cursor: Any, name: str) -> None:
        s = self.schema
        cursor.execute(
            f"SELECT version FROM {s}.snapshots WHERE name = %s ORDER BY version DESC LIMIT %s",
            (name, self.keep_snapshots),
        )
        kept = [row[0] for row in cursor.fetchall()]
        if len(kept) < self.keep_snapshots:
            return
        oldest = kept[-1]
        cursor.execute(
            f"DELETE FROM {s}.snapshots WHERE name = %s AND version < %s", (name, oldest)
        )
        cursor.execute(f"DELETE FROM {s}.journal WHERE name = %s AND version <= %s", (name, oldest))

    # -- recovery -------------------------------------------------------------------------

    def recover(self, name: str, codec: KindCodec) -> Any:
        """The newest valid snapshot of ``name`` plus the journal after it.

        A snapshot that fails its checksum (or does not belong where it is) is
        skipped for an older one, and the skip is reported (`recovery_report`,
        and the log). A damaged or missing journal entry after the chosen
        snapshot is a `RecoveryError`: it held an acknowledged commit.
        """
        s = self.schema
        if self._closed:
            raise RecoveryError(name, f"the store {self.url!r} is closed")
        with self._link.lock:
            held = self._leases.lost_epoch(name)
        if held is not None:  # a restart of a fenced actor: it is another's now
            try:
                with self._link.transaction() as conn:
                    lost = self._leases.lost_error(conn.execute, [name], {held})
            except Problem as exc:
                raise RecoveryError(name, f"its lease was taken over ({exc.text})") from None
            raise lost

        def read(sql: str, params: tuple[Any, ...], what: str) -> list[tuple[int, bytes]]:
            try:
                with self._link.transaction() as conn:
                    rows = conn.execute(sql, params).fetchall()
            except Problem as exc:
                raise RecoveryError(name, f"cannot read its {what}: {exc.text}") from None
            return [(int(version), bytes(payload)) for version, payload in rows]

        snapshots = read(
            f"SELECT version, payload FROM {s}.snapshots WHERE name = %s ORDER BY version DESC",
            (name,),
            "snapshots",
        )
        snapshot, report = recover_records(
            name,
            codec,
            self.upgrades,
            snapshots,
            lambda version: read(
                f"SELECT version, payload FROM {s}.journal WHERE name = %s AND version > %s "
                "ORDER BY version",
                (name, version),
                "journal",
            ),
        )
        self._reports[name] = report
        return snapshot

    def applied(self, name: str, request_ids: list[str]) -> dict[str, int]:
        """Which of ``request_ids`` made a commit of ``name``: ``{id: version}``."""
        with self._reading(f"the applied requests of {name!r}") as conn:
            return applied(conn.execute, name, request_ids, f"{self.schema}.requests", "%s")

    def recovery_report(self, name: str) -> RecoveryReport | None:
        """What the last recovery of ``name`` found, if it was recovered."""
        return self._reports.get(name)

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
        self._link.close()

    def _check_open(self, names: Iterable[str] = ("(any)",)) -> None:
        if self._closed:
            raise StoreWriteError(listed(names), f"the store {self.url!r} is closed")

    def ping(self) -> None:
        """Raise unless the store is open and its database answers a read
        (`Runtime.health`)."""
        self._check_open()
        with self._reading("a health check") as conn:
            conn.execute(f"SELECT 1 FROM {self.schema}.actors LIMIT 1").fetchall()

    # -- reading for tools ---------------------------------------------------------------

    def actors(self) -> list[StoredActor]:
        """Every actor stored here, by name."""
        s = self.schema
        with self._reading("its actors") as conn:
            rows = conn.execute(
                "SELECT a.name, a.kind, a.created_at, o.runtime_id, o.pid, "
                f" (SELECT max(version) FROM {s}.snapshots x WHERE x.name = a.name), "
                f" (SELECT max(at) FROM {s}.snapshots x WHERE x.name = a.name), "
                f" (SELECT max(version) FROM {s}.journal j WHERE j.name = a.name), "
                f" (SELECT max(at) FROM {s}.journal j WHERE j.name = a.name) "
                f"FROM {s}.actors a LEFT JOIN {s}.owners o ON o.name = a.name ORDER BY a.name"
            ).fetchall()
        found = []
        for name, kind, created, runtime_id, pid, s_ver, s_at, j_ver, j_at in rows:
            version = max(v for v in (s_ver, j_ver, 0) if v is not None)
            updated = max(t for t in (s_at, j_at, created) if t is not None)
            owner = None if runtime_id is None else f"pid {pid} runtime {runtime_id}"
            found.append(StoredActor(name, kind, int(version), updated, owner))
        return found

    def due_timers(self, before: datetime.datetime) -> list[tuple[str, datetime.datetime]]:
        """The machines with a timer due at or before ``before`` (a UTC
        datetime), as ``(name, earliest due time)``, soonest first: read from
        the index each commit keeps in its own transaction (`_timer_index`)."""
        with self._reading("the timers due") as conn:
            rows = conn.execute(
                f"SELECT name, due FROM {self.schema}.timers WHERE due <= %s",
                (before.timestamp(),),
            ).fetchall()
        return due_rows(rows)

    def definition(self, name: str) -> Any:
        """The definition stored with ``name`` (for a machine: its states and moves).

        Raises:
            KeyError: no such actor.
        """
        with self._reading(f"the definition of {name!r}") as conn:
            row = conn.execute(
                f"SELECT definition FROM {self.schema}.actors WHERE name = %s", (name,)
            ).fetchone()
        if row is None:
            raise KeyError(name)
        return decode(bytes(row[0]))

    @contextlib.contextmanager
    def _reading(self, what: str) -> Iterator[Any]:
        try:
            with self._link.transaction() as conn:
                yield conn
        except Problem as exc:
            raise StoreOpenError(self.url, f"cannot read {what}: {exc.text}") from None

    def __repr__(self) -> str:
        return f"<PostgresStore {self.url!r} schema {self.schema!r} {self.durability}>"
