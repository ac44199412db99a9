"""Names in a PostgreSQL store: claiming one, recording a new actor, releasing it.

The ownership rule is `SQLiteStore`'s: an owner row names a runtime, which
holds its names under its lease (`_leases`, its epoch from the ``leases``
table's sequence, its expiry by the server's clock). A claim while another
runtime's lease holds the name is refused with `ActorOwned` (saying until
when); otherwise the claim revokes that lease, which fences off every later
commit of its holder, in the same transaction as it records the new owner
under the claimant's lease. Every ownership check of the store is in this
module, run in the same transaction as the write it guards, under a row lock
on the owner row (two claims of one name take turns).

As in `SQLiteStore`, a claim of a new name only reads and reserves it;
`create` then writes the owner row, the actor row and the first snapshot in
one transaction, checking the owner again under a row lock.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from stateward.core import encode
from stateward.core._persist import DefinitionMismatch, KindCodec

from .._errors import ActorOwned, RecoveryError, StoreWriteError
from ._leases import Leases
from ._ownership import MY_PID, MY_START, describe_owner, owner_is_live
from ._postgres_open import Link, Problem
from ._records import encode_record
from ._timer_index import earliest

if TYPE_CHECKING:
    import psycopg


class PgNames(ABC):
    """Claims, new actors and releases of a `PostgresStore`."""

    # Provided by the store.
    schema: str
    _link: Link
    _closed: bool
    _leases: Leases

    @abstractmethod
    def _check_open(self, names: Iterable[str] = ("(any)",)) -> None:
        """Raise `StoreWriteError` if the store can no longer commit."""

    @abstractmethod
    def recover(self, name: str, codec: KindCodec) -> Any:
        """The last durable snapshot of ``name``."""

    def __init__(self) -> None:
        #: New names claimed here and not yet created: the runtime of each.
        self._reserved: dict[str, str] = {}

    def _take_over(self, conn: psycopg.Connection[Any], name: str, runtime_id: str) -> None:
        """In a claim's transaction: refuse ``name`` with `ActorOwned` if
        another runtime's lease holds it; else revoke that runtime's lease
        (expired, or its process is gone), which fences off its writes. The
        owner row stays locked until the transaction ends."""
        row = conn.execute(
            f"SELECT runtime_id FROM {self.schema}.owners WHERE name = %s FOR UPDATE", (name,)
        ).fetchone()
        if row is None or row[0] == runtime_id:
            return
        lease = self._leases.holder_live(conn.execute, runtime_id, row[0])
        if lease is not None:
            raise ActorOwned(name, self._leases.describe(row[0], lease))
        self._leases.revoke(conn.execute, row[0])

    def _own(self, conn: psycopg.Connection[Any], name: str, runtime_id: str) -> int:
        """Record ``runtime_id`` as ``name``'s owner, under its lease (taken now
        if it has none here, renewed if it has); the lease's epoch."""
        epoch = self._leases.acquire(conn.execute, runtime_id, [name])
        conn.execute(
            f"INSERT INTO {self.schema}.owners VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (name) DO UPDATE SET runtime_id = EXCLUDED.runtime_id, "
            "pid = EXCLUDED.pid, started = EXCLUDED.started, since = EXCLUDED.since",
            (name, runtime_id, MY_PID, MY_START, time.time()),
        )
        return epoch

    def claim(self, name: str, codec: KindCodec, runtime_id: str) -> Any | None:
        """Take ``name`` for ``runtime_id``; its recovered snapshot, or None if new.

        A new name is only looked up and reserved here: `create` records it.
        """
        self._check_open((name,))
        s = self.schema
        try:
            with self._link.transaction() as conn:  # under the store's lock: so is _reserved
                holder = self._reserved.get(name)
                if holder is not None and owner_is_live(runtime_id, holder, MY_PID, MY_START):
                    raise ActorOwned(name, describe_owner(holder, MY_PID, time.time()))
                self._take_over(conn, name, runtime_id)
                kind = conn.execute(f"SELECT kind FROM {s}.actors WHERE name = %s", (name,))
                found = kind.fetchone()
                recorded = conn.execute(
                    f"SELECT EXISTS (SELECT 1 FROM {s}.snapshots WHERE name = %s) "
                    f"OR EXISTS (SELECT 1 FROM {s}.journal WHERE name = %s)",
                    (name, name),
                ).fetchone()
                if found is None and not (recorded and recorded[0]):
                    self._reserved[name] = runtime_id
                    return None
                if found is None:
                    raise RecoveryError(
                        name,
                        "its snapshots or journal are stored but the actor itself is "
                        "not found: the store is damaged",
                    )
                if found[0] != codec.kind:
                    raise DefinitionMismatch(
                        name, f"it was stored as a {found[0]}, not a {codec.kind}"
                    )
                epoch = self._own(conn, name, runtime_id)
            with self._link.lock:
                self._leases.claimed(name, epoch)
        except Problem as exc:
            raise StoreWriteError(name, f"could not record the owner: {exc.text}") from None
        return self.recover(name, codec)

    def create(self, name: str, codec: KindCodec, snapshot: Any) -> None:
        """Record a new actor: its owner (if `claim` reserved the name), its
        actor row and first snapshot, in one transaction."""
        self._check_open((name,))
        s = self.schema
        version = codec.version(snapshot)
        payload = encode_record(name, codec.kind, version, codec.document(snapshot))
        definition = encode(codec.definition())
        now = time.time()
        try:
            with self._link.transaction() as conn:
                epoch = None
                runtime_id = self._reserved.pop(name, None)
                if runtime_id is not None:
                    self._take_over(conn, name, runtime_id)  # taken since the claim looked?
                    epoch = self._own(conn, name, runtime_id)
                conn.execute(
                    f"INSERT INTO {s}.actors VALUES (%s, %s, %s, %s)",
                    (name, codec.kind, definition, now),
                )
                conn.execute(
                    f"INSERT INTO {s}.snapshots VALUES (%s, %s, %s, %s)",
                    (name, version, now, payload),
                )
                due = earliest(snapshot)
                if due is not None:  # a machine created with a pending timer
                    conn.execute(
                        f"INSERT INTO {s}.timers VALUES (%s, %s) "
                        "ON CONFLICT (name) DO UPDATE SET due = EXCLUDED.due",
                        (name, due),
                    )
            if epoch is not None:
                with self._link.lock:
                    self._leases.claimed(name, epoch)
        except Problem as exc:
            raise StoreWriteError(name, f"PostgreSQL refused the new actor: {exc.text}") from None

    def release(self, name: str, runtime_id: str) -> None:
        """Give ``name`` up (the actor stopped for good)."""
        if self._closed:
            return
        with self._link.lock:
            if self._reserved.get(name) == runtime_id:
                del self._reserved[name]  # claimed, never created
        try:
            with self._link.transaction() as conn:
                conn.execute(
                    f"DELETE FROM {self.schema}.owners WHERE name = %s AND runtime_id = %s",
                    (name, runtime_id),
                )
        except Problem:
            # As in SQLiteStore: the row left holds the name only while this
            # runtime's lease does, and the next claim after that takes it.
            pass
        with self._link.lock:
            self._leases.released(name)

    def renew_lease(self, runtime_id: str) -> None:
        """Extend ``runtime_id``'s lease on this store (its runtime's timer
        calls this every third of the lease's duration).

        Raises:
            LeaseLost: the lease was taken over; nothing more is committed for it.
            StoreWriteError: the server could not be reached (the next renewal tries again).
        """
        if self._closed:
            return
        try:
            with self._link.transaction() as conn:
                self._leases.renew(conn.execute, runtime_id)
        except Problem as exc:
            raise StoreWriteError("(any)", f"could not renew the lease: {exc.text}") from None

    def end_lease(self, runtime_id: str) -> None:
        """``runtime_id``'s runtime ends: give its lease up, so that its names
        can be claimed at once."""
        if self._closed:
            return
        with contextlib.suppress(Problem), self._link.transaction() as conn:
            self._leases.end(conn.execute, runtime_id)
