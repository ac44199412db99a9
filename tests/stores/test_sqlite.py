"""SQLiteStore: bad paths at open, failed writes, damaged records, schema upgrades."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import bump

from stateward.actors import (
    ActorCrashed,
    RecoveryError,
    Runtime,
    SQLiteStore,
    StateManager,
    StoreOpenError,
    StoreWriteError,
    Supervisor,
)
from stateward.core import ImmutableState, RecordUpgrades, encode
from stateward.core._persist import ManagerCodec


def fill(path: Path, commits: int, *, snapshot_every: int = 5) -> None:
    with Runtime("fill", store=SQLiteStore(path, snapshot_every=snapshot_every)) as runtime:
        counter = StateManager({"n": 0}, name="counter", runtime=runtime)
        for _ in range(commits):
            counter.modify(bump)


def recover(path: Path, **options: object) -> tuple[ImmutableState, int, SQLiteStore]:
    store = SQLiteStore(path, **options)  # type: ignore[arg-type]
    with Runtime("check", store=store) as runtime:
        counter = StateManager({"n": 0}, name="counter", runtime=runtime)
        return counter.get_state(), counter.version, store


# -- opening ---------------------------------------------------------------------------


def test_a_new_file_gets_the_tables_and_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"stateward_meta", "actors", "owners", "snapshots", "journal"} <= tables
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def _directory(tmp: Path) -> Path:
    (tmp / "x.db").mkdir()
    return tmp / "x.db"


def _missing_folder(tmp: Path) -> Path:
    return tmp / "missing" / "x.db"


def _text_file(tmp: Path) -> Path:
    (tmp / "x.db").write_text("just some notes\n")
    return tmp / "x.db"


def _foreign_sqlite(tmp: Path) -> Path:
    db = sqlite3.connect(tmp / "x.db")
    db.execute("CREATE TABLE orders (id INTEGER)")
    db.commit()
    db.close()
    return tmp / "x.db"


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (_directory, "it is a directory"),
        (_missing_folder, "the folder .* does not exist"),
        (_text_file, "it is not a SQLite database"),
        (_foreign_sqlite, r"not a stateward store \(tables: orders\)"),
    ],
)
def test_a_path_that_is_not_a_store_is_refused_before_anything_is_written(
    tmp_path: Path, make: Callable[[Path], Path], problem: str
) -> None:
    path = make(tmp_path)
    before = path.read_bytes() if path.is_file() else None
    with pytest.raises(StoreOpenError, match=problem):
        SQLiteStore(path)
    assert (path.read_bytes() if path.is_file() else None) == before
    assert not path.with_name(path.name + "-wal").exists()


def test_a_store_from_a_newer_stateward_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE stateward_meta SET value = '99' WHERE key = 'schema'")
    db.commit()
    db.close()
    with pytest.raises(StoreOpenError, match="written by a newer stateward \\(store schema 99"):
        SQLiteStore(path)


def test_an_unopenable_path_gives_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreOpenError, match="cannot open stateward store"):
        SQLiteStore("/proc/self/stateward-test.db")


@pytest.mark.parametrize("schema", ["abc", "", "1.5", "0", "-1", " 1"])
def test_a_schema_row_that_is_not_a_version_is_refused_as_damage(
    tmp_path: Path, schema: str
) -> None:
    path = tmp_path / "odd.db"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE stateward_meta SET value = ? WHERE key = 'schema'", (schema,))
    db.commit()
    db.close()
    said = f"its store schema version {schema!r} is not valid .*the store is damaged"
    for readonly in (False, True):
        with pytest.raises(StoreOpenError, match=said):
            SQLiteStore(path, readonly=readonly)


def test_a_store_without_a_schema_row_is_refused_as_damage(tmp_path: Path) -> None:
    path = tmp_path / "odd.db"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    db.execute("DELETE FROM stateward_meta WHERE key = 'schema'")
    db.commit()
    db.close()
    with pytest.raises(StoreOpenError, match="has no 'schema' row: the store is damaged"):
        SQLiteStore(path)


def test_a_new_store_file_and_its_wal_and_shm_are_private_to_their_owner(
    tmp_path: Path,
) -> None:
    old_umask = os.umask(0o022)  # what would make them world-readable
    try:
        store = SQLiteStore(tmp_path / "private.db")
        with Runtime("private", store=store) as runtime:
            StateManager({"n": 0}, name="counter", runtime=runtime).update_state({"n": 1})
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in sorted(tmp_path.iterdir())}
    finally:
        os.umask(old_umask)
    assert modes == {"private.db": 0o600, "private.db-shm": 0o600, "private.db-wal": 0o600}


def test_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="durability must be one of strict, batched, snapshot"):
        SQLiteStore(tmp_path / "x.db", durability="sometimes")
    with pytest.raises(ValueError, match="snapshot_every must be an int >= 1"):
        SQLiteStore(tmp_path / "x.db", snapshot_every=0)


# -- failed writes ------------------------------------------------------------------------


@pytest.fixture
def runtime_and_store(tmp_path: Path) -> Iterator[tuple[Runtime, SQLiteStore]]:
    store = SQLiteStore(tmp_path / "w.db", busy_timeout=0.2)
    runtime = Runtime("writes", store=store)
    yield runtime, store
    runtime.shutdown()


def _break(store: SQLiteStore, how: str) -> sqlite3.Connection | None:
    if how == "read-only":
        store._db.execute("PRAGMA query_only = ON")
    elif how == "disk-full":
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count = {pages}")
    else:  # another connection holds the write lock
        other = sqlite3.connect(store.path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        return other
    return None


def _mend(store: SQLiteStore, how: str, other: sqlite3.Connection | None) -> None:
    if how == "read-only":
        store._db.execute("PRAGMA query_only = OFF")
    elif how == "disk-full":
        store._db.execute("PRAGMA max_page_count = 1073741823")
    else:
        assert other is not None
        other.execute("ROLLBACK")
        other.close()


@pytest.mark.parametrize(
    ("how", "said"),
    [("read-only", "read-only"), ("disk-full", "disk is full"), ("locked", "stayed locked")],
)
def test_a_failed_write_fails_the_request_crashes_the_actor_and_publishes_nothing(
    runtime_and_store: tuple[Runtime, SQLiteStore], how: str, said: str
) -> None:
    runtime, store = runtime_and_store
    sup = Supervisor("s", runtime=runtime, max_restarts=5)
    # Values big enough that a full disk cannot take even one more page.
    counter = StateManager({"n": 0, "pad": ""}, name="counter", runtime=runtime, supervisor=sup)
    counter.modify(bump)
    other = _break(store, how)
    try:
        with pytest.raises(ActorCrashed) as caught:
            counter.modify(lambda s: s.update(n=s.n + 1, pad="x" * 20_000))
        cause = caught.value.cause
        assert isinstance(cause, StoreWriteError)
        assert said in str(cause) and "was not committed" in str(cause)
        assert counter.get_state().n == 1  # never published
    finally:
        _mend(store, how, other)
    assert counter.modify(bump).n == 2  # restarted from the last durable state
    assert counter.restarts == 1
    state, version, _ = recover_from(runtime, store)
    assert state.n == 2 and version == 2


def test_a_snapshot_that_cannot_be_written_takes_its_journal_entry_with_it(
    tmp_path: Path,
) -> None:
    """A commit with a snapshot due is written whole or not at all: the reply
    says failed, and recovery agrees."""
    store = SQLiteStore(tmp_path / "s.db", snapshot_every=2)
    with Runtime("snap", store=store) as runtime:
        sup = Supervisor("s", runtime=runtime, max_restarts=5)
        counter = StateManager({"n": 0}, name="counter", runtime=runtime, supervisor=sup)
        counter.modify(bump)
        db = sqlite3.connect(store.path)
        db.execute(
            "CREATE TRIGGER refuse_snapshot BEFORE INSERT ON snapshots WHEN NEW.version > 0 "
            "BEGIN SELECT RAISE(ABORT, 'no room for this snapshot'); END"
        )
        db.commit()
        with pytest.raises(ActorCrashed, match="no room for this snapshot"):
            counter.modify(bump)  # version 2: a snapshot is due
        assert recover_from(runtime, store)[:2] == (ImmutableState(n=1), 1)
        journal = db.execute("SELECT version FROM journal WHERE name = 'counter'").fetchall()
        assert journal == [(1,)]
        db.execute("DROP TRIGGER refuse_snapshot")
        db.commit()
        db.close()
        assert counter.modify(bump).n == 2  # restarted from version 1
    assert recover(tmp_path / "s.db")[:2] == (ImmutableState(n=2), 2)


def recover_from(runtime: Runtime, store: SQLiteStore) -> tuple[ImmutableState, int, None]:
    snapshot = store.recover("counter", ManagerCodec())
    return snapshot.state, snapshot.version, None


# -- damaged records -----------------------------------------------------------------------


def _flip(path: Path, table: str, version: int | None = None) -> int:
    db = sqlite3.connect(path)
    if version is None:
        version = db.execute(f"SELECT max(version) FROM {table}").fetchone()[0]
    (payload,) = db.execute(f"SELECT payload FROM {table} WHERE version = ?", (version,)).fetchone()
    damaged = bytearray(payload)
    damaged[len(damaged) // 2] ^= 0x10
    db.execute(f"UPDATE {table} SET payload = ? WHERE version = ?", (bytes(damaged), version))
    db.commit()
    db.close()
    return version


def test_a_damaged_newest_snapshot_falls_back_to_an_older_one_and_says_so(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "s.db"
    fill(path, 13, snapshot_every=5)  # snapshots 5 and 10, journal 6..13
    damaged = _flip(path, "snapshots")
    state, version, store = recover(path)
    assert (state.n, version) == (13, 13)
    report = store.recovery_report("counter")
    assert report is not None and report.snapshot_version == 5 and report.replayed == 8
    assert report.skipped and report.skipped[0][0] == damaged == 10
    assert "checksum" in report.skipped[0][1]
    assert "skipping damaged snapshots" in caplog.text


def test_a_damaged_journal_entry_fails_recovery_clearly(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    fill(path, 13)
    damaged = _flip(path, "journal")
    with pytest.raises(RecoveryError, match=f"journal entry {damaged} is damaged"):
        recover(path)


def test_every_snapshot_damaged_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "all.db"
    fill(path, 12)
    db = sqlite3.connect(path)
    versions = [row[0] for row in db.execute("SELECT version FROM snapshots")]
    db.close()
    for version in versions:
        _flip(path, "snapshots", version)
    with pytest.raises(RecoveryError, match="every stored snapshot is damaged"):
        recover(path)


def test_old_journal_entries_are_compacted_away(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    fill(path, 23, snapshot_every=5)
    db = sqlite3.connect(path)
    snapshots = [r[0] for r in db.execute("SELECT version FROM snapshots ORDER BY version")]
    journal = [r[0] for r in db.execute("SELECT version FROM journal ORDER BY version")]
    db.close()
    assert snapshots == [15, 20]  # keep_snapshots=2
    assert journal == list(range(16, 24))
    assert recover(path)[:2] == (ImmutableState(n=23), 23)


# -- schema evolution -------------------------------------------------------------------------


def _rewrite_snapshot(path: Path, version: int, schema: int, body: object) -> None:
    db = sqlite3.connect(path)
    payload = encode(("counter", "manager", version, schema, body))
    db.execute("DELETE FROM journal")
    db.execute("DELETE FROM snapshots")
    db.execute("INSERT INTO snapshots VALUES ('counter', ?, 0, ?)", (version, payload))
    db.commit()
    db.close()


def test_an_old_record_is_upgraded_by_its_registered_step(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    fill(path, 1)
    # Schema 0 stored the value as {"value": {...}, "v": n}.
    _rewrite_snapshot(path, 4, 0, ImmutableState(value={"n": 4}, v=4))
    upgrades = RecordUpgrades()
    upgrades.register(
        "manager", "document", 0, lambda old: ImmutableState(state=old["value"], version=old["v"])
    )
    state, version, _ = recover(path, upgrades=upgrades)
    assert (state, version) == ({"n": 4}, 4)
    with pytest.raises(RecoveryError, match="no upgrade from schema 0 to 1 is registered"):
        recover(path)


def test_a_record_from_a_newer_schema_is_refused_never_misread(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    fill(path, 1)
    _rewrite_snapshot(path, 3, 7, ImmutableState(state={"n": 3}, version=3))
    with pytest.raises(RecoveryError, match="schema version 7, but this stateward reads up to"):
        recover(path)


def test_records_whose_actor_row_is_gone_are_never_started_afresh(tmp_path: Path) -> None:
    path = tmp_path / "hidden.db"
    fill(path, 7)
    db = sqlite3.connect(path)
    db.execute("DELETE FROM actors WHERE name = 'counter'")  # as a damaged index would
    db.commit()
    db.close()
    with pytest.raises(RecoveryError, match="the store is damaged"):
        recover(path)


def test_a_damaged_page_is_refused_at_open(tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    fill(path, 30)
    db = sqlite3.connect(path)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'journal'").fetchone()[0]
    db.close()
    with open(path, "r+b") as f:  # scribble over the journal's root page header
        f.seek((root - 1) * page_size)
        f.write(b"\xff" * 16)
    with pytest.raises(StoreOpenError, match="integrity check found damage"):
        SQLiteStore(path)
    # check=False opens it anyway, for whoever wants to try their luck.
    SQLiteStore(path, check=False).close()
