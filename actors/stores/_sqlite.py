"""The SQLite store: snapshots and a journal of deltas in one SQLite file, safe across ``kill -9``.

Its three durability modes share one file layout (`_sqlite_open`): ``"strict"``
writes each commit alone, ``"batched"`` writes commits from all actors
together (`_group_commit`), ``"snapshot"`` writes no journal, only periodic
snapshots from a writer thread. Records and recovery are those of every
database store (`_records`); owners hold their names under a lease that
every write checks in its own transaction (`_leases`); claims, new actors and
releases are written without an fsync of their own (`_sqlite_names`). On a
pool, the commits of the turns a worker runs in a row are written together
(`commit`, `write_staged`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from stateward.core import decode
from stateward.core._persist import KindCodec, RecordUpgrades

from .._errors import RecoveryError, StoreWriteError
from ._group_commit import GroupCommit, Pending, group
from ._leases import DEFAULT_LEASE_SECONDS, Leases
from ._protocol import RecoveryReport, StoredActor
from ._records import encode_record, journal_entry, recover_records
from ._requests import applied, prune, record, requested
from ._snapshot_writer import SnapshotWriter
from ._sqlite_file import LOST_FIX, StoreFile, listed
from ._sqlite_names import Names
from ._sqlite_open import explain, open_store, transaction
from ._timer_index import SQLiteDueTimers, earliest, timed, write_index

logger = logging.getLogger("stateward.actors")

DURABILITY_MODES = ("strict", "batched", "snapshot")
#: Journal rows per INSERT statement (4 parameters each, far below SQLite's limit).
_ROWS_PER_INSERT = 500


def _insert_journal(rows: int) -> str:
    return "INSERT INTO journal VALUES " + _values(rows)


def _values(rows: int) -> str:
    return ", ".join(["(?, ?, ?, ?)"] * rows)


class SQLiteStore(GroupCommit, SnapshotWriter, Names, SQLiteDueTimers):
    """Snapshots and a journal in one SQLite file (WAL mode), for any number of actors.

    Durability modes and their loss windows (what a ``kill -9`` or a power cut
    can take away):

    - ``"strict"`` (default): every commit is written and fsynced before the
      actor publishes it and replies. Loss window: nothing acknowledged.
    - ``"batched"``: group commit. Commits from all actors that wait at the
      same time are written in one transaction, by one of their committers;
      each waits for its batch to be fsynced before its actor publishes and
      replies. Loss window: nothing acknowledged, as in strict, with far
      fewer fsyncs.
    - ``"snapshot"``: no journal. Replies do not wait; a snapshot of each
      changed actor is written every ``snapshot_interval`` seconds (and as soon
      as one has ``snapshot_every`` unsaved commits). Loss window: the commits
      of the last ``snapshot_interval`` seconds (at most ``snapshot_every`` per
      actor), plus those made while a snapshot is being written.

    Args:
        path: the database file; created (with its tables) if it does not exist.
        durability: ``"strict"``, ``"batched"`` or ``"snapshot"``.
        snapshot_every: journal entries between snapshots (strict, batched), or
            unsaved commits that trigger an early snapshot (snapshot mode).
        snapshot_interval: seconds between snapshot writes in snapshot mode.
        keep_snapshots: snapshots kept per actor (older journal entries are
            compacted away); recovery falls back to an older one if the newest
            is corrupt.
        busy_timeout: seconds to wait for a lock held by another connection.
        upgrades: `RecordUpgrades` for records written by older code.
        readonly: open for reading only (``stateward inspect``); nothing is
            written, not even the tables of a new file.
        check: run SQLite's ``quick_check`` at open and refuse a damaged file.
            A damaged page can otherwise hide records instead of failing.
        lease_seconds: how long a runtime's lease on this store lasts unless
            renewed (`_leases`): a runtime that stops renewing (a paused or
            cut-off process) loses its names to the next claim that long
            after its last renewal, and its later commits raise `LeaseLost`.
            Its runtime renews it every third of that.
        lease_clock: the wall clock leases are measured by (seconds, like
            ``time.time``); every process sharing the file must agree on it.

    A commit's journal entry and the snapshot due with it, and in batched
    mode every commit of a group commit, are one transaction: a commit that
    fails with `StoreWriteError` is not found by recovery either. A new file
    is created with mode 0600 (SQLite gives its -wal and -shm the same). If
    the file is removed or replaced while the store is open, commits fail
    with `StoreWriteError` from then on.

    Raises:
        StoreOpenError: the path cannot be reached or written, is not a
            stateward store, or was written by a newer stateward. Nothing is
            written in that case.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: str = "strict",
        snapshot_every: int = 100,
        snapshot_interval: float = 1.0,
        keep_snapshots: int = 2,
        busy_timeout: float = 5.0,
        upgrades: RecordUpgrades | None = None,
        readonly: bool = False,
        check: bool = True,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        lease_clock: Callable[[], float] = time.time,
    ) -> None:
        if durability not in DURABILITY_MODES:
            raise ValueError(
                f"durability must be one of {', '.join(DURABILITY_MODES)}, got {durability!r}"
            )
        if not isinstance(snapshot_every, int) or snapshot_every < 1:
            raise ValueError(f"snapshot_every must be an int >= 1, got {snapshot_every!r}")
        if not 0 < snapshot_interval <= threading.TIMEOUT_MAX:
            raise ValueError(
                f"snapshot_interval must be > 0 and at most {threading.TIMEOUT_MAX:g} seconds, "
                f"got {snapshot_interval!r}"
            )
        if not busy_timeout >= 0:
            raise ValueError(f"busy_timeout must be >= 0 seconds, got {busy_timeout!r}")
        if not isinstance(keep_snapshots, int) or keep_snapshots < 1:
            raise ValueError(f"keep_snapshots must be an int >= 1, got {keep_snapshots!r}")
        self.path = Path(path)
        self.durability = durability
        self.snapshot_every = snapshot_every
        self.snapshot_interval = float(snapshot_interval)
        self.keep_snapshots = keep_snapshots
        self.upgrades = upgrades or RecordUpgrades()
        self.readonly = readonly
        self.check = check
        self._lock = threading.RLock()
        self._closed = False
        self._reports: dict[str, RecoveryReport] = {}
        self._db = open_store(
            self.path,
            durability=durability,
            readonly=readonly,
            check=check,
            busy_timeout=busy_timeout,
            lock=self._lock,
        )
        # The file opened; it knows why the store can no longer commit, if it was
        # removed or replaced.
        self._file = StoreFile(self.path)
        # Batched mode: the commits waiting for a group commit, and its lead.
        GroupCommit.__init__(self)
        # Snapshot mode: the newest unsaved snapshot of each actor, and its writer.
        SnapshotWriter.__init__(self)
        # Names claimed and not yet created (claim, create and release: `Names`).
        Names.__init__(self)
        # The leases of the runtimes that own names through this store object.
        self._leases = Leases(repr(str(self.path)), lease_seconds, lease_clock)
        self.lease_seconds = self._leases.seconds

    # -- the protocol ------------------------------------------------------------------------

    def commit(
        self, name: str, codec: KindCodec, old: Any, new: Any, request_id: str | None = None
    ) -> None:
        """Make one commit durable (per the mode) before returning, with the
        id of the request that made it, if given (not in snapshot mode)."""
        if self.durability == "snapshot":
            if self._leases.lost_epoch(name) is not None:  # fenced: refuse it now
                with self._lock:
                    self._leases.refuse(self._db.execute, name)
            self._mark_dirty(name, codec, new)
            return
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
        any of them; None when this store does not stage (snapshot mode: call
        `commit`). A store without this method is always committed with
        `commit`: its commits are durable when it returns."""
        if self.durability == "snapshot":
            return None
        return journal_entry(name, codec, old, new, self.snapshot_every, request_id)

    def write_staged(self, items: list[Pending]) -> None:
        """Write the entries of several staged commits in one transaction,
        durably per the mode: all of them, or (raising `StoreWriteError`) none."""
        if self.durability == "strict":
            self._write_observed(items)
        else:
            self._write_batched(group(items))

    def _write(self, items: list[Pending]) -> None:
        """Write journal entries, and the snapshots due with them, atomically.

        Either all of them are written, or (a `StoreWriteError`) none: a
        commit reported as failed is never found by recovery. Without a
        snapshot due, the entries go in one statement, which SQLite runs as a
        transaction of its own: one trip out of Python (with many busy
        threads, every extra trip can wait a whole GIL switch interval to
        come back). Otherwise entries and snapshots share one transaction.
        The store's files are checked before and after the write
        (`StoreFile.check_before_write`, `StoreFile.check_after_write`).
        """
        self._check_open(item.name for item in items)
        now = time.time()
        rows: list[Any] = []
        for item in items:
            rows += (item.name, item.version, now, item.payload)
        due = [item for item in items if item.snapshot is not None]
        ids = requested(items)
        indexed = timed(items)  # commits that change the index of due timers
        self._file.check_before_write(item.name for item in items)
        try:
            if not due and not ids and not indexed and len(items) <= _ROWS_PER_INSERT:
                with self._lock:
                    epochs = self._leases.epochs_of(item.name for item in items)
                    if not epochs:
                        self._db.execute(_insert_journal(len(items)), rows)
                    else:  # fenced: written only while the leases hold, in one statement
                        fenced = [item.name for item in items]
                        self._leases.fenced_insert(
                            self._db.execute, "journal", _values(len(items)), rows, fenced, epochs
                        )
            else:
                with transaction(self._db, self._lock) as db:
                    epochs = self._leases.epochs_of(item.name for item in items)
                    if self._leases.lost_epochs(db.execute, epochs):
                        fenced = [item.name for item in items]
                        raise self._leases.lost_error(db.execute, fenced, epochs)
                    for start in range(0, len(items), _ROWS_PER_INSERT):
                        count = min(_ROWS_PER_INSERT, len(items) - start)
                        db.execute(_insert_journal(count), rows[start * 4 : (start + count) * 4])
                    record(db.executemany, ids, "requests", "?")
                    write_index(db.execute, "timers", "?", indexed)
                    for item in due:
                        db.execute(
                            "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?)",
                            (item.name, item.version, now, item.snapshot),
                        )
                        self._compact(db, item.name)
                        prune(db.execute, item.name, item.version, "requests", "?")
        except sqlite3.Error as exc:
            names = listed(item.name for item in items)
            raise StoreWriteError(names, explain(exc), exc) from exc
        self._file.check_after_write(item.name for item in items)

    def _fenced_out(self, names: list[str]) -> set[str]:
        with self._lock:
            return self._leases.fenced(self._db.execute, names)

    def _compact(self, db: sqlite3.Connection, name: str) -> None:
        kept = [
            row[0]
            for row in db.execute(
                "SELECT version FROM snapshots WHERE name = ? ORDER BY version DESC LIMIT ?",
                (name, self.keep_snapshots),
            )
        ]
        if len(kept) < self.keep_snapshots:
            return
        oldest = kept[-1]
        db.execute("DELETE FROM snapshots WHERE name = ? AND version < ?", (name, oldest))
        db.execute("DELETE FROM journal WHERE name = ? AND version <= ?", (name, oldest))

    # -- snapshot mode ---------------------------------------------------------------------

    def _write_snapshots(self, dirty: dict[str, tuple[KindCodec, Any, int]]) -> None:
        """Write the snapshots of ``dirty`` in one transaction, but those of a
        runtime whose lease was taken over: they are dropped (and logged), so
        that a zombie's snapshots neither overwrite its heir's nor block the
        other actors' snapshots."""
        now = time.time()
        rows = []
        for name, (codec, snapshot, _) in dirty.items():
            version = codec.version(snapshot)
            rows.append(
                (name, version, encode_record(name, codec.kind, version, codec.document(snapshot)))
            )
        self._file.check_before_write(dirty)
        try:
            with transaction(self._db, self._lock) as db:
                fenced = self._leases.fenced(db.execute, list(dirty))
                if fenced:
                    logger.error("snapshots dropped: %s", self._leases.refusal(db.execute, fenced))
                    rows = [row for row in rows if row[0] not in fenced]
                for name, version, payload in rows:
                    db.execute(
                        "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?)",
                        (name, version, now, payload),
                    )
                    self._compact(db, name)
                    codec, snapshot, _ = dirty[name]
                    if codec.kind == "machine":  # the index of due timers, as of this snapshot
                        soonest = earliest(snapshot)
                        if soonest is None:
                            db.execute("DELETE FROM timers WHERE name = ?", (name,))
                        else:
                            db.execute(
                                "INSERT OR REPLACE INTO timers VALUES (?, ?)", (name, soonest)
                            )
        except sqlite3.Error as exc:
            raise StoreWriteError(", ".join(sorted(dirty)), explain(exc), exc) from exc
        self._file.check_after_write(dirty)

    # -- recovery -------------------------------------------------------------------------

    def recover(self, name: str, codec: KindCodec) -> Any:
        """The newest valid snapshot of ``name`` plus the journal after it.

        A snapshot that fails its checksum (or does not belong where it is) is
        skipped for an older one, and the skip is reported (`recovery_report`,
        and the log). A damaged or missing journal entry after the chosen
        snapshot is a `RecoveryError`: it held an acknowledged commit.
        """
        self._flush_dirty(name)
        if self._file.lost is not None:
            raise RecoveryError(name, self._file.lost)
        with self._lock:
            held = self._leases.lost_epoch(name)
            if held is not None:  # a restart of a fenced actor: it is another's now
                raise self._leases.lost_error(self._db.execute, [name], {held})
        try:
            with self._lock:
                snapshots = self._db.execute(
                    "SELECT version, payload FROM snapshots WHERE name = ? ORDER BY version DESC",
                    (name,),
                ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise RecoveryError(name, f"SQLite cannot read its snapshots ({exc})") from exc

        def journal_after(version: int) -> list[tuple[int, bytes]]:
            try:
                with self._lock:
                    return self._db.execute(
                        "SELECT version, payload FROM journal WHERE name = ? AND version > ? "
                        "ORDER BY version",
                        (name, version),
                    ).fetchall()
            except sqlite3.DatabaseError as exc:
                raise RecoveryError(name, f"SQLite cannot read its journal ({exc})") from exc

        snapshot, report = recover_records(name, codec, self.upgrades, snapshots, journal_after)
        self._reports[name] = report
        return snapshot

    def applied(self, name: str, request_ids: list[str]) -> dict[str, int]:
        """Which of ``request_ids`` made a commit of ``name``: ``{id: version}``."""
        with self._lock:
            return applied(self._db.execute, name, request_ids, "requests", "?")

    def recovery_report(self, name: str) -> RecoveryReport | None:
        """What the last recovery of ``name`` found, if it was recovered."""
        return self._reports.get(name)

    def close(self) -> None:
        """Write what is pending and close the database. In snapshot mode,
        raise `StoreWriteError` if the unsaved snapshots could not be written
        (naming the actors: their latest changes are lost)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        error = self.closing_error(30)
        with self._lock:
            self._db.close()
        if error is not None:
            raise error

    def _check_open(self, names: Iterable[str] = ("(any)",)) -> None:
        if self._closed:
            raise StoreWriteError(listed(names), f"the store {str(self.path)!r} is closed")
        if self._file.lost is not None:
            raise StoreWriteError(listed(names), self._file.lost, fix=LOST_FIX)

    def ping(self) -> None:
        """Raise `StoreWriteError` unless the store is open and its database
        answers a read (`Runtime.health`)."""
        self._check_open()
        with self._lock:
            self._db.execute("SELECT 1 FROM actors LIMIT 1").fetchall()

    # -- reading for tools ---------------------------------------------------------------

    def actors(self) -> list[StoredActor]:
        """Every actor stored here, by name."""
        # The newest version and time of each actor are its newest journal entry
        # or snapshot, whichever is newer.
        with self._lock:
            rows = self._db.execute(
                "SELECT a.name, a.kind, a.created_at, o.runtime_id, o.pid, "
                " (SELECT max(version) FROM snapshots s WHERE s.name = a.name), "
                " (SELECT max(at) FROM snapshots s WHERE s.name = a.name), "
                " (SELECT max(version) FROM journal j WHERE j.name = a.name), "
                " (SELECT max(at) FROM journal j WHERE j.name = a.name) "
                "FROM actors a LEFT JOIN owners o ON o.name = a.name ORDER BY a.name"
            ).fetchall()
        listed = []
        for name, kind, created, runtime_id, pid, s_ver, s_at, j_ver, j_at in rows:
            version = max(v for v in (s_ver, j_ver, 0) if v is not None)
            updated = max(t for t in (s_at, j_at, created) if t is not None)
            owner = None if runtime_id is None else f"pid {pid} runtime {runtime_id}"
            listed.append(StoredActor(name, kind, version, updated, owner))
        return listed

    def definition(self, name: str) -> Any:
        """The definition stored with ``name`` (for a machine: its states and moves).

        Raises:
            KeyError: no such actor.
        """
        with self._lock:
            row = self._db.execute(
                "SELECT definition FROM actors WHERE name = ?", (name,)
            ).fetchone()
        if row is None:
            raise KeyError(name)
        return decode(row[0])

    def __repr__(self) -> str:
        return f"<SQLiteStore {str(self.path)!r} {self.durability}>"
