"""Opening a SQLite store file: check the path, create or check the tables, and say what is wrong.

Nothing is written to a file that is refused: the path, the file's header, its
tables and its schema version are all checked before the first write, and each
refusal is a `StoreOpenError` that says what to do. Also here: the transaction
every write of a SQLite store runs in, and plain words for SQLite's errors.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from .._errors import StoreOpenError
from ._leases import SQLITE_TABLE
from ._requests import SQLITE_TABLE as REQUESTS_TABLE
from ._timer_index import SQLITE_INDEX as TIMERS_INDEX
from ._timer_index import SQLITE_TABLE as TIMERS_TABLE

#: Table layout of a SQLite store; a file from a newer layout is refused at open.
STORE_SCHEMA = 1

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


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, lock: threading.RLock) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` on ``conn`` under ``lock``; rolled back
    if the block raises."""
    with lock:
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


def explain(exc: sqlite3.Error) -> str:
    """What a SQLite error means for the store, in plain words."""
    text = str(exc)
    if "locked" in text:
        return f"the database stayed locked by another connection past the busy timeout ({text})"
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


def open_store(
    path: Path,
    *,
    durability: str,
    readonly: bool,
    check: bool,
    busy_timeout: float,
    lock: threading.RLock,
) -> sqlite3.Connection:
    """Check the path, create the file if it is new, connect, and check or
    create the tables; nothing is written to a file that is refused."""
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
    if readonly and not exists:
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
                # Opened read-only, it can only be a store that exists already.
                "give the path of a store that stateward wrote"
                if readonly
                else "point SQLiteStore at a stateward store or a new file",
            )
    if readonly:
        target = _readonly_uri(path, folder, wal)
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
            uri=readonly,
        )
    except sqlite3.Error as exc:
        raise StoreOpenError(path, f"SQLite cannot open it ({exc})") from exc
    try:
        _check_or_create(
            db,
            path,
            durability=durability,
            readonly=readonly,
            check=check,
            busy_timeout=busy_timeout,
            lock=lock,
        )
    except BaseException:
        db.close()
        raise
    return db


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


def _check_or_create(
    db: sqlite3.Connection,
    path: Path,
    *,
    durability: str,
    readonly: bool,
    check: bool,
    busy_timeout: float,
    lock: threading.RLock,
) -> None:
    tables = _tables(db, path)
    if tables:
        _check_store(db, path, tables, check=check)
    elif readonly:
        raise StoreOpenError(path, "it is an empty SQLite database, not a stateward store")
    if readonly:
        return
    # Nothing was written before this point.
    try:
        _use_wal(db, path, busy_timeout)
        db.execute("PRAGMA synchronous = " + ("NORMAL" if durability == "snapshot" else "FULL"))
        if tables:
            if "leases" not in tables:  # a file from before leases: add their table
                db.execute(SQLITE_TABLE)
            if "requests" not in tables:  # from before request ids: add their table
                db.execute(REQUESTS_TABLE)
            if "timers" not in tables:  # from before durable timers: add their index
                db.execute(TIMERS_TABLE)
                db.execute(TIMERS_INDEX)
            return
        # Another process may be creating the tables right now: look again
        # under the write lock, and create them only if they are still missing.
        with transaction(db, lock):
            tables = _tables(db, path)
            if not tables:
                for statement in _SCHEMA_SQL.strip().split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(SQLITE_TABLE)
                db.execute(REQUESTS_TABLE)
                db.execute(TIMERS_TABLE)
                db.execute(TIMERS_INDEX)
                db.execute("INSERT INTO stateward_meta VALUES ('schema', ?)", (str(STORE_SCHEMA),))
                db.execute(
                    "INSERT INTO stateward_meta VALUES ('created_at', ?)", (repr(time.time()),)
                )
    except sqlite3.Error as exc:
        raise StoreOpenError(
            path, f"SQLite could not set it up: {explain(exc)}", "try again"
        ) from exc
    if tables:  # made by another process meanwhile
        _check_store(db, path, tables, check=check)


def _tables(db: sqlite3.Connection, path: Path) -> set[str]:
    try:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:  # garbage over the schema page
        raise StoreOpenError(
            path,
            f"the database is damaged or unreadable ({exc})",
            "restore it from a backup",
        ) from exc


def _check_store(db: sqlite3.Connection, path: Path, tables: set[str], *, check: bool) -> None:
    """Refuse a file that is not a stateward store this code can read."""
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
    if check:
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


def _use_wal(db: sqlite3.Connection, path: Path, busy_timeout: float) -> None:
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
            path,
            f"SQLite cannot keep a write-ahead log for it (its journal mode stays {mode!r})",
            "put the store on a local file system",
        )
