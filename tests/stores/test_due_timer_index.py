"""The SQLite store's index of due timers on files made before it, and a
schema page whose names are garbage."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from stateward.actors import ManualClock, Runtime, SQLiteStore, StateMachine, StoreOpenError
from stateward.core import MachineSpec

SPEC = MachineSpec(
    "pending", events={"expire": "pending -> expired"}, timeouts={"pending": (60, "expire")}
)


def test_a_store_from_before_timers_gets_its_index_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE timers")  # as a file written before durable timers
    db.commit()
    db.close()
    readonly = SQLiteStore(path, readonly=True)
    try:
        assert readonly.due_timers(dt.datetime.now(dt.UTC)) == []
    finally:
        readonly.close()
    clock = ManualClock()
    with Runtime("old", store=SQLiteStore(path), timer=clock, clock=clock.wall_clock) as rt:
        StateMachine(SPEC, name="late", runtime=rt)
    store = SQLiteStore(path)
    try:
        due = clock.wall_clock() + dt.timedelta(seconds=60)
        assert store.due_timers(due) == [("late", due)]
    finally:
        store.close()


def test_a_table_name_that_is_not_utf8_is_refused_as_damage(tmp_path: Path) -> None:
    """Garbage over the schema page can leave a name SQLite returns but Python
    cannot decode: refused as damage (`StoreOpenError`), not a raw UnicodeDecodeError."""
    path = tmp_path / "garbled.db"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA writable_schema = ON")
    db.execute(
        "UPDATE sqlite_master SET name = CAST(X'9b6a6f75726e616c' AS TEXT) WHERE name = 'journal'"
    )
    db.commit()
    db.close()
    with pytest.raises(StoreOpenError, match="damaged or unreadable"):
        SQLiteStore(path)
