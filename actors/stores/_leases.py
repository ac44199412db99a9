"""Leases: which runtime may write a store's actors, until when, and the fence on every commit.

A runtime (a host: later a Ray shard) takes one **lease** on a store when it
first owns a name there: a row of the ``leases`` table with

- ``epoch``: a number the store never gives twice (monotonic per store: an
  autoincrement key in SQLite, a sequence in PostgreSQL);
- ``holder``: the runtime's id; ``host``, ``pid``, ``started``: its process;
- ``expires``: the wall-clock time (seconds) until which it holds. The live
  holder renews it (`Leases.renew`, from its runtime's timer, every third of
  the lease's duration). Whose wall clock: the ``clock`` given (SQLite:
  ``time.time`` of each process sharing the file, one host), or with
  ``clock=None`` in PostgreSQL the **server's** (``clock_timestamp()``), so
  that clients on hosts whose clocks disagree still agree on every expiry.

An owner row (``owners``: name -> runtime id) is held while its runtime's lease
is: the lease exists, has not expired and, if its process is on this host,
that process still runs (so after a ``kill -9`` the next claim takes over at
once instead of waiting for the expiry). A runtime of this process that ended
holds nothing either. A claim against a held name is refused with `ActorOwned`
(saying until when); otherwise the claim deletes the old lease (**revokes**
it: all of its runtime's names are free from then on) in the same transaction
as it writes the new owner, under the claimant's own lease and epoch.

**The fence.** Every write of commits (a strict commit, a group commit, a
pooled worker's staged batch) carries the epochs its names were claimed
under and checks, in the same transaction (`fenced_insert`, `lost_epochs`),
that those leases still exist. A revoked lease's holder (a paused process that
resumes) writes nothing: its write raises `LeaseLost`. The check is one
indexed look-up per write, not per commit.

This module holds the SQL and the logic; a store supplies ``execute`` (a
function running one statement with parameters and returning a cursor, inside
the store's transaction) and its dialect (``Leases(..., dialect="postgres")``:
``%s`` parameters, and row locks on the leases a write checks; ``schema=``
names the schema of its ``leases`` and ``owners`` tables). What a
`PostgresStore` calls, with its cursor's ``execute``:

- at open: `postgres_table` (`POSTGRES_TABLE` in the connection's search path);
- in a claim's or new actor's transaction, before writing the owner row:
  `Leases.holder_live` for the current owner's runtime (raise `ActorOwned`
  with `Leases.describe` if live), `Leases.revoke` if not, then
  `Leases.acquire` (returns the claimant's epoch) and `Leases.claimed`;
- in every commit transaction: ``epochs = leases.epochs_of(names)``, then
  either `Leases.fenced_insert` for the journal rows (one statement), or
  `Leases.lost_epochs` first and `Leases.lost_error` if it finds any (both
  lock the lease rows ``FOR SHARE`` in PostgreSQL, so a takeover's delete
  waits for the commit: an unlocked check could race it under READ
  COMMITTED); `Leases.refuse` before accepting an unsaved commit, and
  `Leases.fenced` to drop a group's fenced names;
- `Leases.released` when a name is released; `Leases.renew` from the runtime
  (`renew_lease`), `Leases.end` when the runtime ends (`end_lease`).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .._errors import LeaseLost
from ._ownership import MY_PID, MY_START, process_alive, runtime_is_live

#: How long a lease lasts unless renewed, by default (seconds).
DEFAULT_LEASE_SECONDS = 15.0

#: This host, as a lease row records it: a pid means something only here.
HOST = socket.gethostname()

SQLITE_TABLE = (
    "CREATE TABLE IF NOT EXISTS leases (epoch INTEGER PRIMARY KEY AUTOINCREMENT, "
    "holder TEXT NOT NULL UNIQUE, host TEXT NOT NULL, pid INTEGER NOT NULL, "
    "started TEXT NOT NULL, expires REAL NOT NULL)"
)


def postgres_table(schema: str = "") -> str:
    """The leases table of a PostgreSQL store in ``schema`` (or the search
    path's first schema): its epochs come from the sequence of a BIGSERIAL."""
    prefix = f"{schema}." if schema else ""
    return (
        f"CREATE TABLE IF NOT EXISTS {prefix}leases (epoch BIGSERIAL PRIMARY KEY, "
        "holder TEXT NOT NULL UNIQUE, host TEXT NOT NULL, pid INTEGER NOT NULL, "
        "started TEXT NOT NULL, expires DOUBLE PRECISION NOT NULL)"
    )


POSTGRES_TABLE = postgres_table()

#: The PostgreSQL server's wall clock, in seconds since the epoch (like ``time.time``).
SERVER_NOW = "CAST(extract(epoch FROM clock_timestamp()) AS DOUBLE PRECISION)"

#: Runs one statement with its parameters in the store's transaction; returns a cursor.
Execute = Callable[[str, Sequence[Any]], Any]


def check_lease_seconds(value: Any) -> float:
    """``lease_seconds`` as a float, or a `ValueError` that says what to pass."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e9:
        raise ValueError(
            f"lease_seconds must be a number of seconds > 0, got {value!r}; pass "
            f"lease_seconds={DEFAULT_LEASE_SECONDS:g}, say"
        )
    return float(value)


class Leases:
    """The leases of one store object: the epoch each runtime holds here and
    the epoch each name was claimed under. Callers hold the store's lock.

    ``clock`` measures expiries (seconds, like ``time.time``); None, in
    PostgreSQL only, means the server's clock (`SERVER_NOW`).
    """

    def __init__(
        self,
        store: str,
        seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], float] | None = time.time,
        dialect: str = "sqlite",
        schema: str = "",
    ) -> None:
        if dialect not in ("sqlite", "postgres"):
            raise ValueError(f"dialect must be 'sqlite' or 'postgres', got {dialect!r}")
        if clock is None and dialect != "postgres":
            raise ValueError(
                "a SQLite store's leases need a clock (a database server's is used "
                "only by PostgreSQL): pass clock=time.time"
            )
        self.store = store
        self.seconds = check_lease_seconds(seconds)
        self.clock = clock
        self._marker = "?" if dialect == "sqlite" else "%s"
        #: Where the tables are: ``schema.`` or nothing (the search path's).
        self._t = f"{schema}." if schema else ""
        # PostgreSQL (READ COMMITTED) checks a lease with a row lock, so that a
        # takeover that deletes it waits for the commit that checked it, or the
        # commit sees it gone; SQLite runs one write transaction at a time.
        self._lock_rows = "" if dialect == "sqlite" else " FOR SHARE"
        #: The epoch of each runtime's lease taken through this store object.
        self._held: dict[str, int] = {}
        #: The epoch each name was claimed under (its commits are fenced by it).
        self._epochs: dict[str, int] = {}
        #: Epochs found taken over: their names are neither written nor recovered.
        self._lost: set[int] = set()

    def _sql(self, text: str) -> str:
        return text if self._marker == "?" else text.replace("?", self._marker)

    # -- claims ------------------------------------------------------------------------------

    def holder_live(self, execute: Execute, claimant: str, holder: str) -> tuple[Any, ...] | None:
        """The lease row ``(epoch, host, pid, started, expires)`` of ``holder``
        if it holds its names against ``claimant``, else None (a runtime may
        claim again what it owns)."""
        if holder == claimant:
            return None
        now, at = self._now()
        found = execute(
            self._sql(
                f"SELECT epoch, host, pid, started, expires, expires <= {now} "
                f"FROM {self._t}leases WHERE holder = ?"
            ),
            (*at, holder),
        ).fetchone()
        if found is None:
            return None
        row = tuple(found[:5])
        _, host, pid, started, _ = row
        if found[5]:  # expired
            return None
        if host == HOST:
            if pid == MY_PID and started == MY_START:
                return row if runtime_is_live(holder) else None
            if not process_alive(pid, started):
                return None  # killed: no need to wait for the expiry
        return row

    def _now(self) -> tuple[str, tuple[float, ...]]:
        """Now, as SQL and its parameters: the clock's reading, or the server's clock."""
        if self.clock is None:
            return SERVER_NOW, ()
        return "?", (self.clock(),)

    def revoke(self, execute: Execute, holder: str) -> None:
        """Take away ``holder``'s lease (found not live): from now on its
        writes are refused and its names are free."""
        execute(self._sql(f"DELETE FROM {self._t}leases WHERE holder = ?"), (holder,))

    def describe(self, holder: str, lease: tuple[Any, ...]) -> str:
        """Who holds a name and until when, for `ActorOwned`."""
        epoch, host, pid, _, expires = lease
        until = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(expires))
        return (
            f"process {pid} on {host} (runtime {holder}, lease epoch {epoch}) until {until} "
            "unless it renews its lease"
        )

    def acquire(self, execute: Execute, holder: str, names: Iterable[str] = ()) -> int:
        """The epoch of ``holder``'s lease here, taken now if it has none; renewed.

        Raises:
            LeaseLost: ``holder`` had a lease here and it was taken over.
        """
        now, at = self._now()
        expires = f"{now} + ?"
        lasts = (*at, self.seconds)
        t = self._t
        epoch = self._held.get(holder)
        if epoch is not None:
            renewed = execute(
                self._sql(f"UPDATE {t}leases SET expires = {expires} WHERE epoch = ?"),
                (*lasts, epoch),
            )
            if renewed.rowcount != 1:
                raise self.lost_error(execute, list(names) or ["(any)"], {epoch})
            return epoch
        # Held through another store object on the same store: the same lease.
        row = execute(
            self._sql(f"UPDATE {t}leases SET expires = {expires} WHERE holder = ? RETURNING epoch"),
            (*lasts, holder),
        ).fetchone()
        if row is None:
            row = execute(
                self._sql(
                    f"INSERT INTO {t}leases (holder, host, pid, started, expires) "
                    f"VALUES (?, ?, ?, ?, {expires}) RETURNING epoch"
                ),
                (holder, HOST, MY_PID, MY_START, *lasts),
            ).fetchone()
        epoch = row[0]
        self._held[holder] = epoch
        return int(epoch)

    def claimed(self, name: str, epoch: int) -> None:
        """``name`` was claimed under ``epoch``: its commits are fenced by it."""
        self._epochs[name] = epoch

    def released(self, name: str) -> None:
        self._epochs.pop(name, None)

    # -- the fence ---------------------------------------------------------------------------

    def epochs_of(self, names: Iterable[str]) -> set[int]:
        """The epochs the commits of ``names`` are fenced by (names claimed here)."""
        epochs = self._epochs
        return {epochs[name] for name in names if name in epochs}

    def epoch_of(self, name: str) -> int | None:
        return self._epochs.get(name)

    def lost_epoch(self, name: str) -> int | None:
        """The epoch ``name`` was claimed under, if that lease was found taken
        over: its runtime may neither write nor recover it any more."""
        epoch = self._epochs.get(name)
        return epoch if epoch in self._lost else None

    def lost_epochs(self, execute: Execute, epochs: set[int]) -> set[int]:
        """Which of ``epochs`` no longer exist (their leases were taken over)."""
        if not epochs:
            return set()
        marks = ", ".join("?" * len(epochs))
        found = execute(
            self._sql(
                f"SELECT epoch FROM {self._t}leases WHERE epoch IN ({marks}){self._lock_rows}"
            ),
            tuple(epochs),
        ).fetchall()
        return epochs - {row[0] for row in found}

    def guard(self, epochs: set[int]) -> tuple[str, tuple[int, ...]]:
        """A SQL condition, true while every lease of ``epochs`` exists, and its parameters."""
        marks = ", ".join("?" * len(epochs))
        held = f"SELECT epoch FROM {self._t}leases WHERE epoch IN ({marks}){self._lock_rows}"
        return (
            self._sql(f"(SELECT count(*) FROM ({held}) AS held) = {len(epochs)}"),
            tuple(epochs),
        )

    def fenced_insert(
        self,
        execute: Execute,
        table: str,
        values: str,
        params: Sequence[Any],
        names: Sequence[str],
        epochs: set[int],
    ) -> None:
        """``INSERT INTO table VALUES values`` in one statement that writes
        the rows only while every lease of ``epochs`` exists; `LeaseLost` if not."""
        condition, guard = self.guard(epochs)
        sql = f"INSERT INTO {table} SELECT * FROM (VALUES {values}) AS v WHERE {condition}"
        written = execute(sql, [*params, *guard]).rowcount
        if written == 0:  # all of the rows or none: the condition holds for all of them
            raise self.lost_error(execute, names, epochs)

    def lost_error(self, execute: Execute, names: Sequence[str], epochs: set[int]) -> LeaseLost:
        """The `LeaseLost` of a write of ``names`` refused because a lease of
        ``epochs`` is gone: which epoch was held and which holds the first name now."""
        lost = self.lost_epochs(execute, epochs) or epochs
        self._lost |= lost
        held = min(lost)
        fenced = sorted({name for name in names if self._epochs.get(name) == held}) or list(names)
        row = execute(
            self._sql(
                f"SELECT l.epoch FROM {self._t}owners o JOIN {self._t}leases l "
                "ON l.holder = o.runtime_id WHERE o.name = ?"
            ),
            (fenced[0],),
        ).fetchone()
        return LeaseLost(", ".join(fenced), self.store, held, None if row is None else row[0])

    def fenced(self, execute: Execute, names: Sequence[str]) -> set[str]:
        """Which of ``names`` were claimed under a lease that was taken over."""
        lost = self.lost_epochs(execute, self.epochs_of(names))
        self._lost |= lost
        return {name for name in names if self._epochs.get(name) in lost}

    def refusal(self, execute: Execute, names: Iterable[str]) -> LeaseLost:
        """The `LeaseLost` of ``names``, whose leases are known to be taken over."""
        names = sorted(names)
        return self.lost_error(execute, names, self.epochs_of(names))

    def refuse(self, execute: Execute, name: str) -> None:
        """Raise `LeaseLost` if ``name``'s lease is known to be taken over."""
        if self.lost_epoch(name) is not None:
            raise self.refusal(execute, [name])

    # -- the holder's side -------------------------------------------------------------------

    def renew(self, execute: Execute, holder: str) -> bool:
        """Extend ``holder``'s lease by its duration from now; False if it holds
        none here. Raises `LeaseLost` if it was taken over."""
        if holder not in self._held:
            return False
        self.acquire(execute, holder)
        return True

    def end(self, execute: Execute, holder: str) -> None:
        """``holder`` ends: give its lease up, so its names are free at once."""
        epoch = self._held.pop(holder, None)
        if epoch is not None:
            execute(self._sql(f"DELETE FROM {self._t}leases WHERE epoch = ?"), (epoch,))
            for name in [n for n, e in self._epochs.items() if e == epoch]:
                del self._epochs[name]
