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
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from stateward.actors import Runtime, ShutdownIncomplete, SQLiteStore, StateManager

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


def test_final_snapshots_that_cannot_be_written_make_the_shutdown_unclean(
    tmp_path: Path,
) -> None:
    _, runtime, _, db = _refused_snapshot_write(tmp_path)
    db.close()  # the trigger stays: the final write is refused too
    report = runtime.shutdown(5)
    assert not report.clean
    assert "could not save what it held" in report.describe()
    assert "'counter'" in report.store_error and "no room for this snapshot" in report.store_error
    assert "changes since its last saved snapshot are lost" in report.store_error
    with pytest.raises(ShutdownIncomplete):
        report.check()


def test_final_snapshots_that_cannot_be_written_make_the_daemon_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, runtime, _, db = _refused_snapshot_write(tmp_path)
    db.close()

    def stop_now() -> None:  # the daemon is told to stop as soon as it is ready
        signal.raise_signal(signal.SIGTERM)

    code = runtime.run_until_signal(budget=5, on_ready=stop_now)
    assert code == 1
    err = capsys.readouterr().err
    assert "stopping on SIGTERM" in err and "could not save what it held" in err
    assert "'counter'" in err
