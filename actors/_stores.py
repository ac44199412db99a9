"""Stores: where actors' committed snapshots live, so restarts and reboots find them.

Every store implements the same small protocol (`Store`), checked by one
conformance test suite:

- `claim` an actor name for one runtime (a second live owner is refused) and
  return what is stored under it, recovered;
- `commit` one transaction (old snapshot -> new snapshot), durably per the
  store's mode, before the actor publishes and replies;
- `recover` the last durable snapshot (what a supervisor restart starts from);
- `release` the name when the actor stops for good.

`MemoryStore` (the default) keeps the immutable snapshots themselves: restarts
within one process. `SQLiteStore` keeps a journal of deltas and periodic
snapshots in one SQLite file (WAL mode), safe across ``kill -9``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from stateward.core import DecodeError, SchemaVersionError, decode, encode
from stateward.core._codec import decode_record, encode_checked
from stateward.core._persist import RECORD_SCHEMA, DefinitionMismatch, KindCodec, RecordUpgrades

from ._errors import ActorOwned, RecoveryError, StoreOpenError, StoreWriteError

logger = logging.getLogger("stateward.actors")

#: Table layout of a SQLite store; a file from a newer layout is refused at open.
STORE_SCHEMA = 1
DURABILITY_MODES = ("strict", "batched", "snapshot")

#: Runtimes alive in this process, by id: an owner row naming one of them is live.
_live_runtime_ids: set[str] = set()


def runtime_started(runtime_id: str) -> None:
    _live_runtime_ids.add(runtime_id)


def runtime_ended(runtime_id: str) -> None:
    _live_runtime_ids.discard(runtime_id)


@dataclass(frozen=True, slots=True)
class StoredActor:
    """One actor as `SQLiteStore.actors` lists it."""

    name: str
    kind: str
    version: int
    updated_at: float
    owner: str | None


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What recovering one actor found.

    Attributes:
        actor: its name.
        snapshot_version: the version of the snapshot it started from.
        replayed: how many journal entries it applied after that snapshot.
        skipped: snapshots that were not usable, as ``(version, reason)``.
    """

    actor: str
    snapshot_version: int
    replayed: int
    skipped: tuple[tuple[int, str], ...] = ()


class Store(Protocol):
    """What the runtime needs from a store."""

    durability: str

    def claim(self, name: str, codec: KindCodec, runtime_id: str) -> Any | None:
        """Take ``name`` for ``runtime_id``; return its recovered snapshot, or None if new."""

    def create(self, name: str, codec: KindCodec, snapshot: Any) -> None:
        """Record a new actor and its initial snapshot."""

    def commit(self, name: str, codec: KindCodec, old: Any, new: Any) -> None:
        """Make one commit durable (per the mode); raise `StoreWriteError` if it cannot be."""

    def recover(self, name: str, codec: KindCodec) -> Any:
        """The last durable snapshot of ``name``."""

    def release(self, name: str, runtime_id: str) -> None:
        """Give ``name`` up (the actor stopped for good)."""

    def close(self) -> None:
        """Flush what is pending and let go of files and threads."""


class MemoryStore:
    """Keeps each actor's last committed snapshot in memory, as the value itself.

    A supervisor restart starts from it, and a new handle with the name of a
    stopped actor picks up where that one stopped. Nothing survives the process.
    """

    durability = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, Any] = {}
        self._kinds: dict[str, str] = {}
        self._owners: dict[str, str] = {}

    def claim(self, name: str, codec: KindCodec, runtime_id: str) -> Any | None:
        with self._lock:
            owner = self._owners.get(name)
            if owner is not None and owner != runtime_id and owner in _live_runtime_ids:
                raise ActorOwned(name, f"runtime {owner} in this process")
            kind = self._kinds.get(name)
            if kind is not None and kind != codec.kind:
                raise DefinitionMismatch(name, f"it was stored as a {kind}, not a {codec.kind}")
            self._owners[name] = runtime_id
            stored = self._latest.get(name)
        if stored is None:
            return None
        return codec.from_document(name, codec.document(stored))

    def create(self, name: str, codec: KindCodec, snapshot: Any) -> None:
        with self._lock:
            self._latest[name] = snapshot
            self._kinds[name] = codec.kind

    def commit(self, name: str, codec: KindCodec, old: Any, new: Any) -> None:
        self._latest[name] = new

    def recover(self, name: str, codec: KindCodec) -> Any:
        return self._latest[name]

    def release(self, name: str, runtime_id: str) -> None:
        with self._lock:
            if self._owners.get(name) == runtime_id:
                del self._owners[name]

    def close(self) -> None:
        pass

    def names(self) -> list[str]:
        """The names stored here."""
        with self._lock:
            return sorted(self._latest)


# -- SQLite ---------------------------------------------------------------------------

_SCHEMA_SQL = """
CREATE TABLE stateward_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE actors (
    name TEXT PRIMARY KEY, kind TEXT NOT NULL, definition BLOB NOT NULL,
    created_at REAL NOT NULL);
CREATE TABLE owners (
    name TEXT PRIMARY KEY, runtime_id TEXT NOT NULL, pid INTEGER NOT NULL,
    started TEXT NOT NULL, since REAL NOT NULL);
CREATE TABLE snapshots (
    name TEXT NOT NULL, version INTEGER NOT NULL, at REAL NOT NULL, payload BLOB NOT NULL,
    PRIMARY KEY (name, version)) WITHOUT ROWID;
CREATE TABLE journal (
    name TEXT NOT NULL, version INTEGER NOT NULL, at REAL NOT NULL, payload BLOB NOT NULL,
    PRIMARY KEY (name, version)) WITHOUT ROWID;
"""

_SQLITE_HEADER = b"SQLite format 3\x00"
#: Journal rows per INSERT statement (4 parameters each, far below SQLite's limit).
_ROWS_PER_INSERT = 500


def _insert_journal(rows: int) -> str:
    return "INSERT INTO journal VALUES " + ", ".join(["(?, ?, ?, ?)"] * rows)


def _process_start(pid: int) -> str:
    """An id for a process's life: its start time, so a reused pid is not taken for it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()
    except (OSError, IndexError):
        return ""


def _process_alive(pid: int, started: str) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not started or _process_start(pid) == started


def _stat(path: Path, folder: Path) -> os.stat_result | None:
    """``os.stat(path)``, or None if nothing is there; a `StoreOpenError` if the
    path cannot be looked at (a folder on the way that this user may not enter)."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PermissionError as exc:
        raise StoreOpenError(
            path,
            f"this user may not enter the folder {str(folder)!r} or one above it ({exc.strerror})",
            "give the user that runs stateward search (x) permission on every folder of the "
            "path, or choose another path",
        ) from exc
    except OSError as exc:
        raise StoreOpenError(path, f"it cannot be looked up ({exc.strerror})") from exc


def _identity(path: str) -> tuple[int, int] | None:
    """The file at ``path`` as ``(device, inode)``; None if there is none."""
    try:
        found = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return found.st_dev, found.st_ino


#: What to do once a store's file was removed or replaced under it.
_LOST_FIX = (
    "nothing more can be committed to this store: stop the runtime, put the store file "
    "back at its path (or restore it from a backup), and start again"
)


def _listed(names: Iterable[str]) -> str:
    return ", ".join(sorted(set(names)))


def _on_read_only_file_system(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _create_private_file(path: Path) -> None:
    """Create a new store file that only its owner may read and write (0600),
    whatever the umask. SQLite gives its -wal and -shm files the same mode."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process made it meanwhile; the tables are made under SQLite's lock
    except OSError as exc:
        raise StoreOpenError(path, f"it cannot be created ({exc.strerror})") from exc
    try:
        os.fchmod(fd, 0o600)  # the umask may have taken away the owner's bits too
    finally:
        os.close(fd)


_MY_PID = os.getpid()
_MY_START = _process_start(_MY_PID)


class _Pending:
    """One commit waiting for a batched write.

    ``wake`` is held until its committer may go on: either its entry was
    written (``done``), or it is handed the lead of the next write.
    """

    __slots__ = ("done", "error", "name", "payload", "snapshot", "version", "wake")

    def __init__(self, name: str, version: int, payload: bytes, snapshot: bytes | None) -> None:
        self.name = name
        self.version = version
        self.payload = payload
        self.snapshot = snapshot
        self.error: BaseException | None = None
        self.done = False
        self.wake = threading.Lock()
        self.wake.acquire()


class SQLiteStore:
    """Snapshots and a journal in one SQLite file (WAL mode), for any number of actors.

    Durability modes and their loss windows (what a ``kill -9`` or a power cut
    can take away):

    - ``"strict"`` (default): every commit is written and fsynced before the
      actor publishes it and replies. Loss window: nothing acknowledged.
    - ``"batched"``: group commit. Commits from all actors are gathered by one
      writer thread and written in one transaction; each waits for its batch
      to be fsynced before its actor publishes and replies. Loss window:
      nothing acknowledged, as in strict, with far fewer fsyncs.
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
    ) -> None:
        if durability not in DURABILITY_MODES:
            raise ValueError(
                f"durability must be one of {', '.join(DURABILITY_MODES)}, got {durability!r}"
            )
        if not isinstance(snapshot_every, int) or snapshot_every < 1:
            raise ValueError(f"snapshot_every must be an int >= 1, got {snapshot_every!r}")
        if not snapshot_interval > 0:
            raise ValueError(f"snapshot_interval must be > 0 seconds, got {snapshot_interval!r}")
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
        # Why this store can no longer commit (its file was removed or replaced).
        self._lost: str | None = None
        self._reports: dict[str, RecoveryReport] = {}
        self._db = self._open(busy_timeout)
        self._file, self._identity = self._identify()
        self._wal_file = os.path.realpath(self.path) + "-wal"
        self._wal_identity = _identity(self._wal_file)
        # Batched mode: commits waiting for the writer thread.
        self._pending: list[_Pending] = []
        # Snapshot mode: the newest unsaved snapshot of each actor.
        self._dirty: dict[str, tuple[KindCodec, Any, int]] = {}
        self._cond = threading.Condition(threading.Lock())
        self._leading = False
        self._writer: threading.Thread | None = None

    # -- opening ---------------------------------------------------------------------

    def _open(self, busy_timeout: float) -> sqlite3.Connection:
        """Check the path, create the file if it is new, connect, and check or
        create the tables; nothing is written to a file that is refused."""
        path = self.path
        folder = path.parent if str(path.parent) else Path(".")
        found = _stat(path, folder)
        if found is not None and stat.S_ISDIR(found.st_mode):
            raise StoreOpenError(path, "it is a directory", "give the path of a file")
        if found is None:
            parent = _stat(folder, folder)
            if parent is None or not stat.S_ISDIR(parent.st_mode):
                raise StoreOpenError(
                    path, f"the folder {str(folder)!r} does not exist", "create it first"
                )
        size = found.st_size if found is not None else 0
        # A store that was never checkpointed can have it all in its -wal file.
        wal = _stat(Path(f"{os.path.realpath(path)}-wal"), folder)
        exists = size > 0 or (wal is not None and wal.st_size > 0)
        if self.readonly and not exists:
            raise StoreOpenError(path, "there is no such store (the file is missing or empty)")
        if size > 0:
            try:
                with open(path, "rb") as f:
                    header = f.read(16)
            except OSError as exc:
                raise StoreOpenError(path, f"it cannot be read ({exc.strerror})") from exc
            if header != _SQLITE_HEADER:
                raise StoreOpenError(
                    path,
                    "it is not a SQLite database",
                    "point SQLiteStore at a stateward store or a new file",
                )
        if self.readonly:
            target = self._readonly_uri(path, folder, wal)
        else:
            writable = os.access(folder, os.W_OK) and (found is None or os.access(path, os.W_OK))
            if not writable:
                if _on_read_only_file_system(folder):
                    raise StoreOpenError(
                        path,
                        "it is on a read-only file system",
                        "open it with SQLiteStore(path, readonly=True) to read it, or copy it "
                        "to a writable place",
                    )
                raise StoreOpenError(
                    path, "it is not writable", "check the file's and folder's permissions"
                )
            if found is None:
                _create_private_file(path)
            target = str(path)
        try:
            db = sqlite3.connect(
                target,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                uri=self.readonly,
            )
        except sqlite3.Error as exc:
            raise StoreOpenError(path, f"SQLite cannot open it ({exc})") from exc
        try:
            self._check_or_create(db, busy_timeout)
        except BaseException:
            db.close()
            raise
        return db

    @staticmethod
    def _readonly_uri(path: Path, folder: Path, wal: os.stat_result | None) -> str:
        real = path.resolve()  # SQLite keeps the -wal and -shm files next to the real file
        uri = f"file:{urllib.parse.quote(str(real))}?mode=ro"
        if _stat(Path(f"{real}-shm"), folder) is not None or os.access(real.parent, os.W_OK):
            return uri
        # SQLite reads a WAL-mode database through its -shm file, and creates it
        # if it is missing: here it cannot.
        if not _on_read_only_file_system(real.parent):
            raise StoreOpenError(
                path,
                "SQLite reads it through a -shm file next to it, which this user may not "
                "create in its folder",
                "open it as a user that may write to the folder, or copy the store to a "
                "folder of your own",
            )
        # On a read-only file system no writer can have the store open (a writer
        # keeps a -wal and a -shm file): without a -wal, the file holds
        # everything, and SQLite may read it as an immutable file, with no -shm.
        if wal is not None and wal.st_size > 0:
            raise StoreOpenError(
                path,
                "its write-ahead log (the -wal file) holds commits that SQLite can read only "
                "through a -shm file, and none can be created on this read-only file system",
                "copy the store file with its -wal file to a writable place and open the copy",
            )
        return uri + "&immutable=1"

    def _check_or_create(self, db: sqlite3.Connection, busy_timeout: float) -> None:
        path = self.path
        tables = self._tables(db)
        if tables:
            self._check_store(db, tables)
        elif self.readonly:
            raise StoreOpenError(path, "it is an empty SQLite database, not a stateward store")
        if self.readonly:
            return
        # Nothing was written before this point.
        try:
            self._use_wal(db, busy_timeout)
            db.execute(
                "PRAGMA synchronous = " + ("NORMAL" if self.durability == "snapshot" else "FULL")
            )
            if tables:
                return
            # Another process may be creating the tables right now: look again
            # under the write lock, and create them only if they are still missing.
            with self._transaction(db):
                tables = self._tables(db)
                if not tables:
                    for statement in _SCHEMA_SQL.strip().split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute(
                        "INSERT INTO stateward_meta VALUES ('schema', ?)", (str(STORE_SCHEMA),)
                    )
                    db.execute(
                        "INSERT INTO stateward_meta VALUES ('created_at', ?)", (repr(time.time()),)
                    )
        except sqlite3.Error as exc:
            raise StoreOpenError(
                path, f"SQLite could not set it up: {self._explain(exc)}", "try again"
            ) from exc
        if tables:  # made by another process meanwhile
            self._check_store(db, tables)

    def _tables(self, db: sqlite3.Connection) -> set[str]:
        try:
            return {
                row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        except sqlite3.DatabaseError as exc:
            raise StoreOpenError(
                self.path,
                f"the database is damaged or unreadable ({exc})",
                "restore it from a backup",
            ) from exc

    def _check_store(self, db: sqlite3.Connection, tables: set[str]) -> None:
        """Refuse a file that is not a stateward store this code can read."""
        path = self.path
        if "stateward_meta" not in tables:
            raise StoreOpenError(
                path,
                f"it is a SQLite database but not a stateward store (tables: "
                f"{', '.join(sorted(tables))})",
                "use a separate file for stateward",
            )
        try:
            row = db.execute("SELECT value FROM stateward_meta WHERE key = 'schema'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreOpenError(
                path,
                f"the database is damaged or unreadable ({exc})",
                "restore it from a backup",
            ) from exc
        if row is None:
            raise StoreOpenError(
                path,
                "its stateward_meta table has no 'schema' row: the store is damaged",
                "restore it from a backup",
            )
        text = str(row[0])
        if not (text.isascii() and text.isdigit()) or int(text) < 1:
            raise StoreOpenError(
                path,
                f"its store schema version {text!r} is not valid (it must be a whole number "
                "from 1 up): the store is damaged",
                "restore it from a backup",
            )
        found = int(text)
        if found > STORE_SCHEMA:
            raise StoreOpenError(
                path,
                f"it was written by a newer stateward (store schema {found}; this "
                f"one reads up to {STORE_SCHEMA})",
                "upgrade stateward",
            )
        if self.check:
            try:
                problems = [row[0] for row in db.execute("PRAGMA quick_check(5)")]
            except sqlite3.DatabaseError as exc:
                problems = [str(exc)]
            if problems != ["ok"]:
                raise StoreOpenError(
                    path,
                    "SQLite's integrity check found damage: " + "; ".join(problems),
                    "restore it from a backup (SQLiteStore(check=False) opens it anyway)",
                )

    def _use_wal(self, db: sqlite3.Connection, busy_timeout: float) -> None:
        """Switch the file to WAL mode (kept in the file: a no-op once done).

        When other processes open the same new file at the same moment, SQLite
        answers "database is locked" at once, without waiting its busy timeout:
        wait here instead, up to that timeout.
        """
        deadline = time.monotonic() + busy_timeout
        pause = 0.001
        while True:
            try:
                mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(2 * pause, 0.05)
        if mode != "wal":
            raise StoreOpenError(
                self.path,
                f"SQLite cannot keep a write-ahead log for it (its journal mode stays {mode!r})",
                "put the store on a local file system",
            )

    @contextlib.contextmanager
    def _transaction(self, db: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        conn = db if db is not None else self._db
        with self._lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                # SQLite rolls back by itself after some errors (a full disk):
                # roll back only what is still open, and keep the first error.
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- records ---------------------------------------------------------------------------

    @staticmethod
    def _record(name: str, kind: str, version: int, body: Any) -> bytes:
        return encode_checked((name, kind, version, RECORD_SCHEMA, body))

    def _read(self, name: str, kind: str, version: int, what: str, payload: bytes) -> Any:
        """Decode a record and check it belongs where it was found; upgrade it."""
        record = decode_record(payload)
        if type(record) is not tuple or len(record) != 5:
            raise DecodeError(f"the {what} record is not a stateward record")
        r_name, r_kind, r_version, schema, body = record
        if (r_name, r_kind, r_version) != (name, kind, version):
            raise DecodeError(
                f"the {what} record belongs to {r_kind} {r_name!r} version "
                f"{r_version}, not {kind} {name!r} version {version}"
            )
        return self.upgrades.upgrade(kind, what, schema, body)

    # -- the protocol ------------------------------------------------------------------------

    def claim(self, name: str, codec: KindCodec, runtime_id: str) -> Any | None:
        self._check_open((name,))
        self._check_wal((name,))
        try:
            with self._transaction() as db:
                owner = db.execute(
                    "SELECT runtime_id, pid, started, since FROM owners WHERE name = ?", (name,)
                ).fetchone()
                if owner is not None:
                    o_runtime, o_pid, o_started, o_since = owner
                    if o_pid == _MY_PID and o_started == _MY_START:
                        live = o_runtime in _live_runtime_ids and o_runtime != runtime_id
                    else:
                        live = _process_alive(o_pid, o_started)
                    if live:
                        raise ActorOwned(
                            name,
                            f"process {o_pid} (runtime {o_runtime}) since "
                            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(o_since))}",
                        )
                row = db.execute("SELECT kind FROM actors WHERE name = ?", (name,)).fetchone()
                if row is not None and row[0] != codec.kind:
                    raise DefinitionMismatch(
                        name, f"it was stored as a {row[0]}, not a {codec.kind}"
                    )
                if row is None and self._has_records(db, name):
                    # Records without their actor: a damaged index hid the actor.
                    # Starting it afresh would silently drop what was acknowledged.
                    raise RecoveryError(
                        name,
                        "its snapshots or journal are stored but the actor itself is "
                        "not found: the store is damaged",
                    )
                db.execute(
                    "INSERT OR REPLACE INTO owners VALUES (?, ?, ?, ?, ?)",
                    (name, runtime_id, _MY_PID, _MY_START, time.time()),
                )
        except sqlite3.OperationalError as exc:
            raise StoreWriteError(name, f"SQLite refused to record the owner ({exc})", exc) from exc
        except sqlite3.DatabaseError as exc:
            raise RecoveryError(name, f"the store is damaged ({exc})") from exc
        self._check_file((name,))
        if row is None:
            return None
        return self.recover(name, codec)

    @staticmethod
    def _has_records(db: sqlite3.Connection, name: str) -> bool:
        for table in ("snapshots", "journal"):
            found = db.execute(f"SELECT 1 FROM {table} WHERE name = ? LIMIT 1", (name,))
            if found.fetchone() is not None:
                return True
        return False

    def create(self, name: str, codec: KindCodec, snapshot: Any) -> None:
        self._check_open((name,))
        version = codec.version(snapshot)
        payload = self._record(name, codec.kind, version, codec.document(snapshot))
        definition = encode(codec.definition())
        now = time.time()
        self._check_wal((name,))
        try:
            with self._transaction() as db:
                db.execute(
                    "INSERT INTO actors VALUES (?, ?, ?, ?)", (name, codec.kind, definition, now)
                )
                db.execute(
                    "INSERT INTO snapshots VALUES (?, ?, ?, ?)", (name, version, now, payload)
                )
        except sqlite3.Error as exc:
            raise StoreWriteError(name, f"SQLite refused the new actor ({exc})", exc) from exc
        self._check_file((name,))

    def commit(self, name: str, codec: KindCodec, old: Any, new: Any) -> None:
        version = codec.version(new)
        if self.durability == "snapshot":
            self._mark_dirty(name, codec, new)
            return
        payload = self._record(name, codec.kind, version, codec.delta(old, new))
        snapshot = None
        if version % self.snapshot_every == 0:
            snapshot = self._record(name, codec.kind, version, codec.document(new))
        if self.durability == "strict":
            self._write([_Pending(name, version, payload, snapshot)])
            return
        self._write_batched(_Pending(name, version, payload, snapshot))

    def _write(self, items: list[_Pending]) -> None:
        """Write journal entries, and the snapshots due with them, atomically.

        Either all of them are written, or (a `StoreWriteError`) none: a
        commit reported as failed is never found by recovery. Without a
        snapshot due, the entries go in one statement, which SQLite runs as a
        transaction of its own: one trip out of Python (with many busy
        threads, every extra trip can wait a whole GIL switch interval to
        come back). Otherwise entries and snapshots share one transaction.
        The store's files are checked before and after the write
        (`_check_wal`, `_check_file`).
        """
        self._check_open(item.name for item in items)
        now = time.time()
        rows: list[Any] = []
        for item in items:
            rows += (item.name, item.version, now, item.payload)
        due = [item for item in items if item.snapshot is not None]
        self._check_wal(item.name for item in items)
        try:
            if not due and len(items) <= _ROWS_PER_INSERT:
                with self._lock:
                    self._db.execute(_insert_journal(len(items)), rows)
            else:
                with self._transaction() as db:
                    for start in range(0, len(items), _ROWS_PER_INSERT):
                        count = min(_ROWS_PER_INSERT, len(items) - start)
                        db.execute(_insert_journal(count), rows[start * 4 : (start + count) * 4])
                    for item in due:
                        db.execute(
                            "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?)",
                            (item.name, item.version, now, item.snapshot),
                        )
                        self._compact(db, item.name)
        except sqlite3.Error as exc:
            names = _listed(item.name for item in items)
            raise StoreWriteError(names, self._explain(exc), exc) from exc
        self._check_file(item.name for item in items)

    # -- the file under the store --------------------------------------------------------

    def _identify(self) -> tuple[str, tuple[int, int] | None]:
        """The file's absolute path (a later chdir changes nothing) and identity."""
        file = os.path.abspath(self.path)
        return file, _identity(file)

    def _check_wal(self, names: Iterable[str]) -> None:
        """Before a write: refuse it if the -wal was removed or replaced.

        SQLite copies a -wal removed on its own into the database file when
        the store closes: a write into it would be reported failed and found
        all the same. One ``stat``, and the full check if it finds a change.
        """
        if self._wal_identity is not None:
            try:
                unchanged = _identity(self._wal_file) == self._wal_identity
            except OSError:
                unchanged = False
            if not unchanged:
                self._check_file(names)

    def _check_file(self, names: Iterable[str]) -> None:
        """After a write: fail it if its file is no longer at the store's path.

        Removing the file (and its -wal) or renaming another file over it
        while the store is open does not stop SQLite: it writes on into the
        old file through its open descriptors, and that file is gone at the
        next open. So after each write (each group commit in batched mode),
        before anyone is told it succeeded, the path must still lead to the
        file opened and to its write-ahead log: two ``stat`` calls, next to an
        fsync (and one before the write, `_check_wal`). Once a check fails,
        the store refuses every commit and every recovery: what it holds is
        no longer what a restart would find.

        What is left at the path then is beyond the store's reach: SQLite
        reads a -wal left behind with whatever database file is put at the
        path, which mixes two stores. Stop the runtime before moving,
        replacing or removing its files.
        """
        problem = None
        try:
            found = _identity(self._file)
            wal = _identity(self._wal_file)
        except OSError as exc:
            problem = f"its file {self._file!r} can no longer be looked up ({exc.strerror})"
        else:
            if found != self._identity:
                change = "removed" if found is None else "replaced by another file"
                problem = f"its file {self._file!r} was {change} while the store was open"
            elif self._wal_identity is None:
                self._wal_identity = wal  # SQLite makes it at the first write
            elif wal != self._wal_identity:
                change = "removed" if wal is None else "replaced by another file"
                problem = (
                    f"its write-ahead log {self._wal_file!r} was {change} while the store was open"
                )
        if problem is not None:
            self._lost = problem
            raise StoreWriteError(_listed(names), problem, fix=_LOST_FIX)

    @staticmethod
    def _explain(exc: sqlite3.Error) -> str:
        text = str(exc)
        if "locked" in text:
            return (
                f"the database stayed locked by another connection past the busy timeout ({text})"
            )
        if "readonly" in text or "read-only" in text:
            return f"the database file is read-only ({text})"
        if "full" in text:
            return f"the disk is full ({text})"
        if "disk I/O error" in text:
            return (
                f"the file system refused a read or write ({text}: a full disk, a file size "
                "limit or a failing device)"
            )
        return f"SQLite error: {text}"

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

    # -- batched mode --------------------------------------------------------------------

    def _write_batched(self, item: _Pending) -> None:
        """Group commit: one committer at a time writes everyone's entries.

        The first committer to find no write under way leads: it takes every
        pending entry, writes them in one statement (one fsync), wakes each of
        their committers, and hands the lead to the committer of the oldest
        entry that arrived meanwhile. Every committer is woken exactly once,
        by its own lock: no crowd wakes up to find it has nothing to do.
        """
        cond = self._cond
        with cond:
            self._check_open((item.name,))
            self._pending.append(item)
            lead = not self._leading
            self._leading = True
        if not lead:
            try:
                item.wake.acquire()
            except BaseException:  # KeyboardInterrupt: this committer goes away
                self._withdraw(item)
                raise
            if item.done:
                if item.error is not None:
                    raise item.error
                return
        # Leading: this entry is still pending, so it is in the batch taken here.
        with cond:
            batch, self._pending = self._pending, []
        try:
            self._write(batch)
        except BaseException as exc:
            for pending in batch:
                pending.error = exc
        for pending in batch:
            pending.done = True
        # Hand the lead on first, so the next write starts while the committers
        # of this one wake up and go on.
        with cond:
            if self._pending:
                self._pending[0].wake.release()  # not done: its committer leads next
            else:
                self._leading = False
        for pending in batch:
            if pending is not item:
                pending.wake.release()
        if item.error is not None:
            raise item.error

    def _withdraw(self, item: _Pending) -> None:
        """Take back the entry of a committer whose wait was interrupted (a
        KeyboardInterrupt in the main thread, committing inline), so that no
        lead is ever handed to a committer that is gone: every later commit
        would wait for it. An entry that a write has taken is left to it."""
        with self._cond:  # the lead is handed on under it: no race with that
            if not item.wake.acquire(False):
                if any(p is item for p in self._pending):
                    self._pending.remove(item)  # still queued: it is never written
                return  # else a write under way has it (and will wake no one)
            if item.done:
                return
            # It was handed the lead: its entry heads the queue. Pass the lead on.
            self._pending.remove(item)
            if self._pending:
                self._pending[0].wake.release()
            else:
                self._leading = False

    def _ensure_writer(self) -> None:
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._snapshot_loop, daemon=True, name=f"stateward:store:{self.path.name}"
            )
            self._writer.start()

    # -- snapshot mode ---------------------------------------------------------------------

    def _mark_dirty(self, name: str, codec: KindCodec, snapshot: Any) -> None:
        with self._cond:
            self._check_open((name,))
            _, _, unsaved = self._dirty.get(name, (codec, None, 0))
            self._dirty[name] = (codec, snapshot, unsaved + 1)
            self._ensure_writer()
            if unsaved + 1 >= self.snapshot_every:
                self._cond.notify()

    def _snapshot_loop(self) -> None:
        while True:
            with self._cond:
                due = time.monotonic() + self.snapshot_interval
                while not self._closed:
                    if any(n >= self.snapshot_every for _, _, n in self._dirty.values()):
                        break
                    remaining = due - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                dirty, self._dirty = self._dirty, {}
                closing = self._closed
            if dirty:
                try:
                    self._write_snapshots(dirty)
                except StoreWriteError as exc:
                    logger.error("%s", exc)
            if closing:
                return

    def _write_snapshots(self, dirty: dict[str, tuple[KindCodec, Any, int]]) -> None:
        now = time.time()
        rows = []
        for name, (codec, snapshot, _) in dirty.items():
            version = codec.version(snapshot)
            rows.append(
                (name, version, self._record(name, codec.kind, version, codec.document(snapshot)))
            )
        self._check_wal(dirty)
        try:
            with self._transaction() as db:
                for name, version, payload in rows:
                    db.execute(
                        "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?)",
                        (name, version, now, payload),
                    )
                    self._compact(db, name)
        except sqlite3.Error as exc:
            raise StoreWriteError(", ".join(sorted(dirty)), self._explain(exc), exc) from exc
        self._check_file(dirty)

    # -- recovery -------------------------------------------------------------------------

    def recover(self, name: str, codec: KindCodec) -> Any:
        """The newest valid snapshot of ``name`` plus the journal after it.

        A snapshot that fails its checksum (or does not belong where it is) is
        skipped for an older one, and the skip is reported (`recovery_report`,
        and the log). A damaged or missing journal entry after the chosen
        snapshot is a `RecoveryError`: it held an acknowledged commit.
        """
        self._flush_dirty(name)
        if self._lost is not None:
            raise RecoveryError(name, self._lost)
        try:
            with self._lock:
                snapshots = self._db.execute(
                    "SELECT version, payload FROM snapshots WHERE name = ? ORDER BY version DESC",
                    (name,),
                ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise RecoveryError(name, f"SQLite cannot read its snapshots ({exc})") from exc
        skipped: list[tuple[int, str]] = []
        base = None
        base_version = -1
        for version, payload in snapshots:
            try:
                document = self._read(name, codec.kind, version, "document", payload)
                base = codec.from_document(name, document)
                base_version = version
                break
            except SchemaVersionError as exc:
                raise RecoveryError(name, f"snapshot {version}: {exc}") from exc
            except LookupError as exc:
                raise RecoveryError(name, f"snapshot {version}: {exc}") from exc
            except DecodeError as exc:
                skipped.append((version, exc.reason))
        if base is None:
            problem = (
                "no snapshot is stored for it (every actor has at least one: the store is "
                "damaged, or its records were removed)"
                if not snapshots
                else "every stored snapshot is damaged: "
                + "; ".join(f"version {v}: {r}" for v, r in skipped)
            )
            raise RecoveryError(name, problem)
        try:
            with self._lock:
                entries = self._db.execute(
                    "SELECT version, payload FROM journal WHERE name = ? AND version > ? "
                    "ORDER BY version",
                    (name, base_version),
                ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise RecoveryError(name, f"SQLite cannot read its journal ({exc})") from exc
        snapshot = base
        expected = base_version + 1
        for version, payload in entries:
            if version != expected:
                raise RecoveryError(
                    name, f"journal entry {expected} is missing (the next one is {version})"
                )
            try:
                delta = self._read(name, codec.kind, version, "delta", payload)
            except (SchemaVersionError, LookupError) as exc:
                raise RecoveryError(name, f"journal entry {version}: {exc}") from exc
            except DecodeError as exc:
                raise RecoveryError(
                    name, f"journal entry {version} is damaged: {exc.reason}"
                ) from exc
            try:
                snapshot = codec.apply(snapshot, delta)
            except DefinitionMismatch as exc:
                raise DefinitionMismatch(name, exc.problem) from None
            expected += 1
        report = RecoveryReport(name, base_version, len(entries), tuple(skipped))
        self._reports[name] = report
        if skipped:
            logger.warning(
                "actor %r recovered from snapshot %d after skipping damaged snapshots: %s",
                name,
                base_version,
                "; ".join(f"version {v}: {r}" for v, r in skipped),
            )
        return snapshot

    def _flush_dirty(self, name: str) -> None:
        with self._cond:
            entry = self._dirty.pop(name, None)
        if entry is not None:
            self._write_snapshots({name: entry})

    def recovery_report(self, name: str) -> RecoveryReport | None:
        """What the last recovery of ``name`` found, if it was recovered."""
        return self._reports.get(name)

    def release(self, name: str, runtime_id: str) -> None:
        if self._closed:
            return
        self._flush_dirty(name)
        with contextlib.suppress(sqlite3.Error), self._transaction() as db:
            db.execute("DELETE FROM owners WHERE name = ? AND runtime_id = ?", (name, runtime_id))

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            writer = self._writer
        if writer is not None:
            writer.join(30)
        with self._lock:
            self._db.close()

    def _check_open(self, names: Iterable[str] = ("(any)",)) -> None:
        if self._closed:
            raise StoreWriteError(_listed(names), f"the store {str(self.path)!r} is closed")
        if self._lost is not None:
            raise StoreWriteError(_listed(names), self._lost, fix=_LOST_FIX)

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


def new_runtime_id() -> str:
    return uuid.uuid4().hex
