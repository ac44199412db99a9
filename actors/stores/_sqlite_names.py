"""Names in a SQLite store: claiming one, recording a new actor, releasing it.

Creating an actor took two transactions (its claim, then its actor row and
first snapshot) and stopping it a third, each with its own fsync: about 1,300
new actors a second. Now a claim of a new name only reads (`Names.claim`:
a live owner is refused with `ActorOwned` at once; a stored actor is claimed
and recovered in a transaction, as before) and reserves it; `Names.create`
then writes its owner row, actor row and first snapshot in one transaction,
checking the owner again under SQLite's write lock, so a name another store
took meanwhile is still refused with `ActorOwned`.

These transactions skip the fsync (``synchronous = NORMAL``; SQLite still
syncs before each checkpoint): what they write is in the file when the call
returns, so it survives a ``kill -9``, and nothing acknowledged depends on
them reaching the disk sooner. A new actor's first snapshot is the initial
state its creator gave, an owner row only tells a live owner apart, and the
first commit of the actor (or of any other) syncs the write-ahead log they are
in before it is acknowledged. A power cut before that can take a new actor
back (it is created afresh next time, as it was) or leave a stale owner row
(an owner that is gone holds nothing).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from stateward.core import encode
from stateward.core._persist import DefinitionMismatch, KindCodec

from .._errors import ActorOwned, RecoveryError, StoreWriteError
from ._leases import Leases
from ._ownership import MY_PID, MY_START, describe_owner, owner_is_live
from ._records import encode_record
from ._sqlite_file import StoreFile
from ._sqlite_open import transaction
from ._timer_index import earliest

logger = logging.getLogger("stateward.actors")

#: A name's owner, the kind of the actor stored under it, and whether any
#: record of it is stored: what a claim needs to know, in one statement.
_LOOK_UP = (
    "SELECT o.runtime_id, "
    "(SELECT kind FROM actors WHERE name = n.name), "
    "EXISTS (SELECT 1 FROM snapshots WHERE name = n.name) "
    "OR EXISTS (SELECT 1 FROM journal WHERE name = n.name) "
    "FROM (SELECT ? AS name) AS n LEFT JOIN owners AS o ON o.name = n.name"
)

#: How many codecs' encoded definitions a store keeps.
_DEFINITIONS_KEPT = 64

_OWNER = "SELECT runtime_id, pid, started, since FROM owners WHERE name = ?"


class Names(ABC):
    """Claims, new actors and releases of a `SQLiteStore`."""

    # Provided by the store.
    path: Path
    durability: str
    _db: sqlite3.Connection
    _lock: threading.RLock
    _closed: bool
    _file: StoreFile
    _leases: Leases

    @abstractmethod
    def _check_open(self, names: Iterable[str] = ("(any)",)) -> None:
        """Raise `StoreWriteError` if the store can no longer commit."""

    @abstractmethod
    def recover(self, name: str, codec: KindCodec) -> Any:
        """The last durable snapshot of ``name``."""

    @abstractmethod
    def _flush_dirty(self, name: str) -> None:
        """Snapshot mode: write ``name``'s unsaved snapshot now."""

    def __init__(self) -> None:
        #: New names claimed here and not yet created: the runtime of each.
        self._reserved: dict[str, str] = {}
        #: Encoded definitions by codec (see `_definition`).
        self._definitions: dict[Any, bytes] = {}

    def claim(self, name: str, codec: KindCodec, runtime_id: str) -> Any | None:
        """Take ``name`` for ``runtime_id``; its recovered snapshot, or None if new.

        A new name is only looked up and reserved here: `create` records it.
        """
        self._check_open((name,))
        try:
            with self._lock:
                holder = self._reserved.get(name)
                if holder is not None and owner_is_live(runtime_id, holder, MY_PID, MY_START):
                    raise ActorOwned(name, describe_owner(holder, MY_PID, time.time()))
                o_runtime, kind, recorded = self._db.execute(_LOOK_UP, (name,)).fetchone()
                if o_runtime is not None:
                    lease = self._leases.holder_live(self._db.execute, runtime_id, o_runtime)
                    if lease is not None:
                        raise ActorOwned(name, self._leases.describe(o_runtime, lease))
                if kind is None and not recorded:
                    self._reserved[name] = runtime_id
                    return None
        except sqlite3.DatabaseError as exc:
            raise RecoveryError(name, f"the store is damaged ({exc})") from exc
        self._claim_stored(name, codec, runtime_id)
        return self.recover(name, codec)

    def _claim_stored(self, name: str, codec: KindCodec, runtime_id: str) -> None:
        """Record ``runtime_id`` as the owner of the stored actor ``name``."""
        self._file.check_before_write((name,))
        try:
            with self._unsynced() as db:
                self._take_over(db, name, runtime_id)
                row = db.execute("SELECT kind FROM actors WHERE name = ?", (name,)).fetchone()
                if row is not None and row[0] != codec.kind:
                    raise DefinitionMismatch(
                        name, f"it was stored as a {row[0]}, not a {codec.kind}"
                    )
                if row is None:
                    # Records without their actor: a damaged index hid the actor.
                    # Starting it afresh would silently drop what was acknowledged.
                    raise RecoveryError(
                        name,
                        "its snapshots or journal are stored but the actor itself is "
                        "not found: the store is damaged",
                    )
                epoch = self._own(db, name, runtime_id)
            self._leases.claimed(name, epoch)
        except sqlite3.OperationalError as exc:
            raise StoreWriteError(name, f"SQLite refused to record the owner ({exc})", exc) from exc
        except sqlite3.DatabaseError as exc:
            raise RecoveryError(name, f"the store is damaged ({exc})") from exc
        self._file.check_after_write((name,))

    def create(self, name: str, codec: KindCodec, snapshot: Any) -> None:
        """Record a new actor: its owner (if `claim` reserved the name), its
        actor row and first snapshot, in one transaction."""
        self._check_open((name,))
        version = codec.version(snapshot)
        payload = encode_record(name, codec.kind, version, codec.document(snapshot))
        definition = self._definition(codec)
        now = time.time()
        self._file.check_before_write((name,))
        with self._lock:
            runtime_id = self._reserved.pop(name, None)
            try:
                with self._unsynced() as db:
                    epoch = None
                    if runtime_id is not None:
                        # Taken since the claim looked (another store)?
                        self._take_over(db, name, runtime_id)
                        epoch = self._own(db, name, runtime_id)
                    db.execute(
                        "INSERT INTO actors VALUES (?, ?, ?, ?)",
                        (name, codec.kind, definition, now),
                    )
                    db.execute(
                        "INSERT INTO snapshots VALUES (?, ?, ?, ?)", (name, version, now, payload)
                    )
                    due = earliest(snapshot)
                    if due is not None:  # a machine created with a pending timer
                        db.execute("INSERT OR REPLACE INTO timers VALUES (?, ?)", (name, due))
            except sqlite3.Error as exc:
                raise StoreWriteError(name, f"SQLite refused the new actor ({exc})", exc) from exc
            if epoch is not None:
                self._leases.claimed(name, epoch)
        self._file.check_after_write((name,))

    def _definition(self, codec: KindCodec) -> bytes:
        """The encoded definition of ``codec``'s actors. Actors made from one
        spec share their codec's value, so it is encoded once for all of them
        (a few recent ones are kept)."""
        try:
            found = self._definitions.get(codec)
        except TypeError:  # a codec that cannot be a key
            return encode(codec.definition())
        if found is None:
            found = encode(codec.definition())
            if len(self._definitions) >= _DEFINITIONS_KEPT:
                self._definitions.clear()
            self._definitions[codec] = found
        return found

    def _take_over(self, db: sqlite3.Connection, name: str, runtime_id: str) -> None:
        """In a claim's transaction: refuse ``name`` with `ActorOwned` if
        another runtime's lease holds it; else revoke that runtime's lease
        (expired, or its process is gone), which fences off its writes."""
        owner = db.execute(_OWNER, (name,)).fetchone()
        if owner is None or owner[0] == runtime_id:
            return
        lease = self._leases.holder_live(db.execute, runtime_id, owner[0])
        if lease is not None:
            raise ActorOwned(name, self._leases.describe(owner[0], lease))
        self._leases.revoke(db.execute, owner[0])

    def _own(self, db: sqlite3.Connection, name: str, runtime_id: str) -> int:
        """Record ``runtime_id`` as ``name``'s owner, under its lease (taken now
        if it has none here, renewed if it has); the lease's epoch."""
        epoch = self._leases.acquire(db.execute, runtime_id, [name])
        db.execute(
            "INSERT OR REPLACE INTO owners VALUES (?, ?, ?, ?, ?)",
            (name, runtime_id, MY_PID, MY_START, time.time()),
        )
        return epoch

    def release(self, name: str, runtime_id: str) -> None:
        """Give ``name`` up (the actor stopped for good)."""
        if self._closed:
            return
        with self._lock:
            if self._reserved.get(name) == runtime_id:
                del self._reserved[name]  # claimed, never created
        self._flush_dirty(name)
        with contextlib.suppress(sqlite3.Error), self._unsynced() as db:
            db.execute("DELETE FROM owners WHERE name = ? AND runtime_id = ?", (name, runtime_id))
        with self._lock:
            self._leases.released(name)

    def renew_lease(self, runtime_id: str) -> None:
        """Extend ``runtime_id``'s lease on this store (its runtime's timer
        calls this every third of the lease's duration).

        Raises:
            LeaseLost: the lease was taken over; nothing more is committed for it.
        """
        if self._closed:
            return
        with self._unsynced() as db:
            self._leases.renew(db.execute, runtime_id)

    def end_lease(self, runtime_id: str) -> None:
        """``runtime_id``'s runtime ends: give its lease up, so that its names
        can be claimed at once."""
        if self._closed:
            return
        with contextlib.suppress(sqlite3.Error), self._unsynced() as db:
            self._leases.end(db.execute, runtime_id)

    @contextlib.contextmanager
    def _unsynced(self) -> Iterator[sqlite3.Connection]:
        """A transaction whose commit SQLite does not fsync (see the module's
        docstring), under the store's lock, so that no commit of an actor's
        runs meanwhile with the fsync left out."""
        with self._lock:
            lazy = self.durability != "snapshot"  # snapshot mode never fsyncs a commit
            if lazy:
                self._db.execute("PRAGMA synchronous = NORMAL")
            try:
                with transaction(self._db, self._lock) as db:
                    yield db
            finally:
                if lazy:
                    self._resync()

    def _resync(self) -> None:
        """Back to an fsync per commit. If SQLite refuses, the connection is
        closed: every later write fails, rather than go out unsynced."""
        try:
            self._db.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error:
            logger.exception("store %s: could not set synchronous back to FULL", self.path)
            self._db.close()
            raise
