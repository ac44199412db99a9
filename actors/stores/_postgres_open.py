"""Connecting a PostgreSQL store: its URL, its connection, its tables, and errors in plain words.

A store's URL may hold a password (in the URL or as a ``password=`` query
parameter). It goes to psycopg and nowhere else: the store shows its URL
without it (`Target.shown`), and every error text that comes from psycopg or
the server is scrubbed of it (`Target.scrub`) before it is put in a message,
and raised without psycopg's exception attached (``from None``).

The tables live in a schema of their own (``schema=``, ``"stateward"`` by
default), created with them: stores (or tests) with different schemas share
a database without clashing. The schema records its layout version; one
written by a newer stateward is refused.

psycopg is imported only when a store connects, so ``stateward.actors``
imports without it.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .._errors import StoreOpenError
from ._leases import postgres_table
from ._requests import postgres_table as requests_table
from ._timer_index import postgres_index as timers_index
from ._timer_index import postgres_table as timers_table

if TYPE_CHECKING:
    import psycopg

#: Table layout of a PostgreSQL store; a schema from a newer layout is refused at open.
STORE_SCHEMA = 1
#: The schema names a store accepts: plain lower-case identifiers, written into SQL as they are.
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
URL_FIX = "give a URL like postgresql://user:password@host:5432/database"

_TABLES = """
CREATE TABLE {s}.stateward_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE {s}.actors (
    name TEXT PRIMARY KEY, kind TEXT NOT NULL, definition BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL);
CREATE TABLE {s}.owners (
    name TEXT PRIMARY KEY, runtime_id TEXT NOT NULL, pid INTEGER NOT NULL,
    started TEXT NOT NULL, since DOUBLE PRECISION NOT NULL);
CREATE TABLE {s}.snapshots (
    name TEXT NOT NULL, version BIGINT NOT NULL, at DOUBLE PRECISION NOT NULL,
    payload BYTEA NOT NULL, PRIMARY KEY (name, version));
CREATE TABLE {s}.journal (
    name TEXT NOT NULL, version BIGINT NOT NULL, at DOUBLE PRECISION NOT NULL,
    payload BYTEA NOT NULL, PRIMARY KEY (name, version))
"""


def check_schema_name(schema: object) -> str:
    """``schema`` if it is a name a store accepts; a `ValueError` otherwise."""
    if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError(
            f"schema must be a lower-case SQL name (letters, digits, _; at most 63), got {schema!r}"
        )
    return schema


class Target:
    """Where a store connects, parsed from its URL.

    Attributes:
        shown: the URL without its password or query, for messages and reprs.
        host: the server's host (and port), for messages.
        database: the database's name, for messages.
    """

    __slots__ = ("_conninfo", "_secrets", "database", "host", "shown")

    def __init__(self, url: object) -> None:
        if not isinstance(url, str):
            raise StoreOpenError(
                "(not a URL)", f"the URL must be a str, got {type(url).__name__}", URL_FIX
            )
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise StoreOpenError(
                _redact(url), f"it is not a valid URL ({_scrub_text(str(exc), url)})", URL_FIX
            ) from None
        query = urllib.parse.parse_qs(parts.query)
        secrets = [parts.password or "", *query.get("password", [])]
        self._secrets = [s for s in secrets if s] + [
            urllib.parse.quote(s, safe="") for s in secrets if s
        ]
        user = f"{parts.username}@" if parts.username else ""
        hosts = parts.hostname or ",".join(query.get("host", [])) or "localhost"
        self.host = f"{hosts}:{port}" if port else hosts
        self.database = parts.path.lstrip("/") or ",".join(query.get("dbname", [])) or "(default)"
        self.shown = f"{parts.scheme}://{user}{self.host}/{parts.path.lstrip('/')}"
        if parts.scheme not in _SCHEMES:
            raise StoreOpenError(
                self.shown,
                f"it is not a PostgreSQL URL (its scheme is {parts.scheme!r}, not one of "
                f"{', '.join(_SCHEMES)})",
                URL_FIX,
            )
        self._conninfo = urllib.parse.urlunsplit(("postgresql", *tuple(parts)[1:]))

    def url_to_connect(self) -> str:
        """The URL to connect with, password included: only to hand it to
        another process that opens the same store (a Ray shard), never to show."""
        return self._conninfo

    def scrub(self, text: str) -> str:
        """``text`` with the password taken out, wherever it occurs."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def where(self) -> str:
        return f"the PostgreSQL server at {self.host}, database {self.database!r}"

    def connect(self, schema: str, timeout: float) -> psycopg.Connection[Any]:
        """A new connection in autocommit mode (each write opens its own transaction)."""
        pg = import_psycopg(self)
        try:
            conn: psycopg.Connection[Any] = pg.connect(
                self._conninfo,
                autocommit=True,
                connect_timeout=max(1, round(timeout)),
                application_name=f"stateward:{schema}",
            )
        except pg.Error as exc:
            raise StoreOpenError(
                self.shown,
                f"cannot connect to {self.where()}: {self.scrub(str(exc)).strip()}",
                "check that the server runs and is reachable, and the URL's user, password "
                "and database",
            ) from None
        return conn


def _redact(url: str) -> str:
    """A URL that could not be parsed, with what may be a password cut out."""
    return re.sub(r"^([^:/]*://[^:/@]*):.*@", r"\1:***@", url.split("?", 1)[0])


def _scrub_text(text: str, url: str) -> str:
    found = re.match(r"^[^:/]*://[^:/@]*:(.*)@", url)
    return text.replace(found.group(1), "***") if found and found.group(1) else text


def import_psycopg(target: Target) -> Any:
    try:
        import psycopg
    except ImportError:
        raise StoreOpenError(
            target.shown,
            "PostgresStore needs psycopg 3, which is not installed",
            "pip install 'stateward[postgresql]'",
        ) from None
    return psycopg


class Problem(Exception):
    """A database operation that failed, in plain words already scrubbed of the password.

    Attributes:
        text: what went wrong.
        lost: whether the connection was lost (the next use reconnects).
    """

    def __init__(self, text: str, *, lost: bool) -> None:
        super().__init__(text)
        self.text = text
        self.lost = lost


class Link:
    """The one connection of a store, used under the store's lock.

    A connection found lost is closed and dropped; the next use connects
    again. Every failure comes out as a `Problem`, never as psycopg's error.
    """

    def __init__(self, target: Target, schema: str, timeout: float, lock: threading.RLock) -> None:
        self.target = target
        self.schema = schema
        self.timeout = timeout
        self.lock = lock
        self._conn: psycopg.Connection[Any] | None = None
        #: The server process of the last connection lost (see `settle`).
        self.lost_backend: int | None = None

    def connection(self) -> psycopg.Connection[Any]:
        """The open connection, made afresh if there is none (call under the lock)."""
        if self._conn is None or self._conn.closed:
            self._conn = self.target.connect(self.schema, self.timeout)
        return self._conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction on the connection: committed when the block ends,
        rolled back if it raises."""
        pg = import_psycopg(self.target)
        with self.lock:
            try:
                conn = self.connection()
            except StoreOpenError as exc:
                raise Problem(exc.problem, lost=True) from None
            try:
                with conn.transaction():
                    yield conn
            except pg.Error as exc:
                lost = isinstance(exc, pg.OperationalError) and (conn.closed or conn.broken)
                if lost:
                    self.drop()
                text = self.target.scrub(str(exc)).strip()
                what = "the connection to the server was lost" if lost else "PostgreSQL refused"
                raise Problem(f"{what} ({text})", lost=lost) from None

    def drop(self) -> None:
        """Let a lost connection go, remembering its server process."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                self.lost_backend = conn.info.backend_pid
            with contextlib.suppress(Exception):
                conn.close()

    def settle(self) -> bool:
        """After a lost connection: end its server process, if it still runs
        (a transaction it holds can then never commit), and wait for it to
        go. Whether it is known to be gone."""
        pid = self.lost_backend
        if pid is None:
            return True
        try:
            with self.transaction() as conn:
                conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline:
                with self.transaction() as conn:
                    row = conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)
                    ).fetchone()
                if row is not None and row[0] == 0:
                    self.lost_backend = None
                    return True
                time.sleep(0.01)
        except Problem:
            return False
        return False

    def close(self) -> None:
        with self.lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()


def prepare(link: Link) -> None:
    """Create the schema and its tables if they are missing, or check them;
    nothing is written to a schema that is refused."""
    s, target = link.schema, link.target
    with link.lock:
        link.connection()  # a StoreOpenError of its own if the server cannot be reached
    try:
        with link.transaction() as conn:
            # Stores opening the same new schema at once: one creates it, the others wait.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"stateward:{s}",))
            tables = {
                row[0]
                for row in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    (s,),
                )
            }
            if not tables:
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
                for statement in _TABLES.format(s=s).split(";"):
                    conn.execute(statement)
                conn.execute(postgres_table(s))
                conn.execute(requests_table(s))
                conn.execute(timers_table(s))
                conn.execute(timers_index(s))
                conn.execute(
                    f"INSERT INTO {s}.stateward_meta VALUES ('schema', %s), ('created_at', %s)",
                    (str(STORE_SCHEMA), repr(time.time())),
                )
                return
            problem = _check(conn, s, tables)
            if problem is None and "leases" not in tables:  # a store from before leases
                conn.execute(postgres_table(s))
            if problem is None and "requests" not in tables:  # from before request ids
                conn.execute(requests_table(s))
            if problem is None and "timers" not in tables:  # from before durable timers
                conn.execute(timers_table(s))
                conn.execute(timers_index(s))
    except Problem as exc:
        raise StoreOpenError(
            target.shown, f"{target.where()} could not set up schema {s!r}: {exc.text}", "try again"
        ) from None
    if problem is not None:
        raise StoreOpenError(target.shown, problem[0], problem[1])


def _check(conn: psycopg.Connection[Any], s: str, tables: set[str]) -> tuple[str, str] | None:
    """Why schema ``s`` is not a stateward store this code can read, and the fix; or None."""
    if "stateward_meta" not in tables:
        return (
            f"schema {s!r} holds tables that are not a stateward store "
            f"({', '.join(sorted(tables))})",
            "give the store a schema of its own (PostgresStore(url, schema=...))",
        )
    row = conn.execute(f"SELECT value FROM {s}.stateward_meta WHERE key = 'schema'").fetchone()
    text = "" if row is None else str(row[0])
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        return (
            f"schema {s!r} has no valid store schema version ({text!r}): the store is damaged",
            "restore it from a backup",
        )
    if int(text) > STORE_SCHEMA:
        return (
            f"schema {s!r} was written by a newer stateward (store schema {text}; this one "
            f"reads up to {STORE_SCHEMA})",
            "upgrade stateward",
        )
    return None
