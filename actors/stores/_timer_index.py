"""The index of due timers a database store keeps: each machine's earliest due time.

A machine's pending timers live in its snapshot; the index holds, per actor
name, the earliest of their due times (seconds since the epoch, UTC), so a
runtime can find the machines whose timers fall due without reading every
snapshot: after a reboot, before any handle exists (`due_timers`). Each
commit that changes a machine's timers carries the new earliest due time
(`Pending.timers_due`, set by `journal_entry` through `mark`), and the store
writes it in the same transaction as the commit's journal entry: the index
never disagrees with a durable commit. A machine with no timer left has no row.

Tables made by stores from before timers are added when such a store is opened.
"""

from __future__ import annotations

import datetime as _dt
import sqlite3
import threading
from collections.abc import Callable, Iterable
from typing import Any

from ._group_commit import KEEP, Pending

__all__ = [
    "SQLITE_TABLE",
    "SQLiteDueTimers",
    "due_rows",
    "earliest",
    "mark",
    "postgres_table",
    "timed",
    "write_index",
]

SQLITE_TABLE = (
    "CREATE TABLE IF NOT EXISTS timers (name TEXT PRIMARY KEY, due REAL NOT NULL) WITHOUT ROWID"
)
SQLITE_INDEX = "CREATE INDEX IF NOT EXISTS timers_by_due ON timers (due)"


def postgres_table(schema: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {schema}.timers (name TEXT PRIMARY KEY, "
        "due DOUBLE PRECISION NOT NULL)"
    )


def postgres_index(schema: str) -> str:
    return f"CREATE INDEX IF NOT EXISTS timers_by_due ON {schema}.timers (due)"


def earliest(snapshot: Any) -> float | None:
    """The earliest due time of ``snapshot``'s timers (epoch seconds), or None."""
    timers = getattr(snapshot, "timers", ())
    if not timers:
        return None
    soonest: _dt.datetime = min(t.due for t in timers)
    return soonest.timestamp()


def mark(entry: Pending, kind: str, old: Any, new: Any) -> None:
    """Note on ``entry`` the index change of the commit ``old -> new`` (a
    machine's timers changed: its new earliest due time, None for none)."""
    if kind == "machine" and new.timers is not old.timers:
        entry.timers_due = earliest(new)


def timed(items: Iterable[Pending]) -> list[Pending]:
    """The entries that change the index."""
    return [item for item in items if item.timers_due is not KEEP]


def write_index(execute: Callable[..., Any], table: str, mark_: str, items: list[Pending]) -> None:
    """Write the index changes of ``items`` (from `timed`), oldest first, in
    the caller's transaction (``mark_``: the driver's parameter mark)."""
    for item in items:
        due = item.timers_due
        if due is None:
            execute(f"DELETE FROM {table} WHERE name = {mark_}", (item.name,))
        else:
            execute(
                f"INSERT INTO {table} VALUES ({mark_}, {mark_}) "
                "ON CONFLICT (name) DO UPDATE SET due = EXCLUDED.due",
                (item.name, due),
            )


def due_rows(rows: Iterable[tuple[str, float]]) -> list[tuple[str, _dt.datetime]]:
    """Index rows as ``(name, due)`` with a UTC datetime, soonest first."""
    return [
        (name, _dt.datetime.fromtimestamp(due, _dt.UTC))
        for name, due in sorted(rows, key=lambda row: (row[1], row[0]))
    ]


class SQLiteDueTimers:
    """`SQLiteStore.due_timers`, read from its index."""

    _db: sqlite3.Connection
    _lock: threading.RLock

    def _check_open(self, names: Iterable[str] = ("(any)",)) -> None: ...

    def due_timers(self, before: _dt.datetime) -> list[tuple[str, _dt.datetime]]:
        """The machines with a timer due at or before ``before`` (a UTC
        datetime), as ``(name, earliest due time)``, soonest first: read from
        the index each commit keeps in its own transaction."""
        self._check_open()
        try:
            with self._lock:
                rows = self._db.execute(
                    "SELECT name, due FROM timers WHERE due <= ?", (before.timestamp(),)
                ).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # a read-only store from before timers
                return []
            raise
        return due_rows(rows)
