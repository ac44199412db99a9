"""Snapshot mode: a snapshot write that fails is tried again, not dropped.

In ``durability="snapshot"`` a reply does not wait for the write: the store
keeps each changed actor's newest snapshot and a writer thread saves it. When
that write fails (a full disk, a lock held too long, here a trigger that
refuses it), the snapshot must stay unsaved and be written once the store can
write again: by the writer's next round, and at the latest when the runtime
shuts down. Before this was fixed the failed snapshots were dropped, so an
acknowledged state was lost even after a clean shutdown.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

from stateward.actors import Runtime, SQLiteStore, StateManager

REFUSE = (
    "CREATE TRIGGER refuse_snapshot BEFORE INSERT ON snapshots "
    "BEGIN SELECT RAISE(ABORT, 'no room for this snapshot'); END"
)


class _Failures(logging.Handler):
    """Sets ``seen`` when the store logs a refused snapshot write."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "no room for this snapshot" in record.getMessage():
            self.seen.set()


def _saved_version(path: Path, name: str) -> int | None:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT max(version) FROM snapshots WHERE name = ?", (name,)).fetchone()[
            0
        ]
    finally:
        db.close()


def _refused_snapshot_write(
    tmp_path: Path,
) -> tuple[Path, Runtime, StateManager, sqlite3.Connection]:
    """A runtime whose last acknowledged update's snapshot write was refused."""
    path = tmp_path / "snap.db"
    store = SQLiteStore(path, durability="snapshot", snapshot_every=1, snapshot_interval=0.05)
    runtime = Runtime("snap", store=store)
    counter = StateManager({"n": 0}, name="counter", runtime=runtime)
    db = sqlite3.connect(path)
    db.execute(REFUSE)
    db.commit()
    failures = _Failures()
    logger = logging.getLogger("stateward")
    logger.addHandler(failures)
    try:
        counter.update_state({"n": 1})  # acknowledged at once; its write is refused
        assert failures.seen.wait(5), "the refused snapshot write was not reported"
    finally:
        logger.removeHandler(failures)
    return path, runtime, counter, db


def test_a_refused_snapshot_is_written_once_the_store_can_write_again(tmp_path: Path) -> None:
    path, runtime, counter, db = _refused_snapshot_write(tmp_path)
    try:
        db.execute("DROP TRIGGER refuse_snapshot")
        db.commit()
        deadline = time.monotonic() + 5
        while _saved_version(path, "counter") != counter.version and time.monotonic() < deadline:
            threading.Event().wait(0.02)  # polling the file: nothing to wait on
        assert _saved_version(path, "counter") == counter.version == 1
    finally:
        db.close()
        runtime.shutdown(5)


def test_a_refused_snapshot_is_saved_by_a_clean_shutdown(tmp_path: Path) -> None:
    path, runtime, _, db = _refused_snapshot_write(tmp_path)
    db.execute("DROP TRIGGER refuse_snapshot")
    db.commit()
    db.close()
    runtime.shutdown(5)
    with Runtime("check", store=SQLiteStore(path, durability="snapshot")) as check:
        recovered = StateManager({"n": 0}, name="counter", runtime=check)
        assert (recovered.get_state().n, recovered.version) == (1, 1)
