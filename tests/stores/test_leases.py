"""Leases and fencing in a database store: a zombie owner commits nothing.

Two runtimes in one process, each with its own store object on one store (a
SQLite file, or a schema of the PostgreSQL server: the ``backend`` parameter),
stand for two processes (the first one paused, say, with SIGSTOP): both stores
read one fake wall clock, so the first runtime's lease expires when the test
says, and each runtime has a `ManualClock` timer, so it renews its lease only
when the test advances that timer. The PostgreSQL runs skip without
``STATEWARD_PG_URL`` (CI always sets it).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_support import drop_pg_schema, pg_url

from stateward.actors import (
    ActorCrashed,
    ActorOwned,
    LeaseLost,
    ManualClock,
    PostgresStore,
    Runtime,
    SQLiteStore,
    StateManager,
    StoreWriteError,
)
from stateward.core import ImmutableState
from stateward.core._persist import ManagerCodec
from stateward.core._store import StoreSnapshot

LEASE = 30.0


class WallClock:
    """A wall clock the test moves (seconds, like ``time.time``)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> WallClock:
    return WallClock()


@pytest.fixture(params=["strict", "batched"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


Store = SQLiteStore | PostgresStore


class Backend:
    """One store location of a test: a SQLite file in its folder, or a fresh
    schema of the PostgreSQL server (dropped when the test ends)."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind = kind
        self.path = folder / "leases.db"
        self.url = pg_url() if kind == "postgres" else ""
        self.schema = f"sw_lease_{uuid.uuid4().hex[:12]}"

    @property
    def where(self) -> str:
        """What `lease_child.py` opens: the file, or ``pg:SCHEMA``."""
        return str(self.path) if self.kind == "sqlite" else f"pg:{self.schema}"

    def open(self, clock: Callable[[], float] | None, mode: str = "strict") -> Store:
        if self.kind == "sqlite":
            return SQLiteStore(
                self.path, durability=mode, lease_seconds=LEASE, lease_clock=clock or time.time
            )
        return PostgresStore(
            self.url,
            durability=mode,
            schema=self.schema,
            lease_seconds=LEASE,
            lease_clock=clock,
        )


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    chosen = Backend(str(request.param), tmp_path)
    try:
        yield chosen
    finally:
        if chosen.kind == "postgres":
            drop_pg_schema(chosen.url, chosen.schema)


def lease_lost(error: BaseException) -> LeaseLost:
    """The `LeaseLost` behind a failed request (the actor crashed on it)."""
    cause = error.__cause__ if isinstance(error, ActorCrashed) else error
    assert isinstance(cause, LeaseLost), repr(error)
    return cause


def test_a_zombie_whose_lease_was_taken_over_commits_nothing(
    backend: Backend, clock: WallClock, mode: str
) -> None:
    zombie = Runtime("zombie", store=backend.open(clock, mode), timer=ManualClock())
    heir = Runtime("heir", store=backend.open(clock, mode), timer=ManualClock())
    try:
        old = StateManager({"n": 0}, name="counter", runtime=zombie)
        old.update_state({"n": 1})
        with pytest.raises(ActorOwned, match=r"lease epoch 1\).* until "):
            StateManager({"n": 0}, name="counter", runtime=heir)

        clock.now += LEASE + 1  # the zombie did not renew: its lease expired
        new = StateManager({"n": 0}, name="counter", runtime=heir)
        assert new.recovered and new.get_state().n == 1
        new.update_state({"n": 100})

        with pytest.raises((ActorCrashed, LeaseLost)) as failed:
            old.update_state({"n": 2})
        lost = lease_lost(failed.value)
        assert isinstance(lost, StoreWriteError)
        assert (lost.actor, lost.held, lost.current) == ("counter", 1, 2)
        assert "shut this runtime down" in str(lost)
        new.update_state({"n": 101})
    finally:
        heir.shutdown()
        zombie.shutdown()
    with Runtime("check", store=backend.open(clock, mode)) as check:
        assert StateManager({"n": 0}, name="counter", runtime=check).get_state().n == 101


def test_renewal_keeps_a_live_holders_names(backend: Backend, clock: WallClock) -> None:
    timer = ManualClock()
    holder = Runtime("holder", store=backend.open(clock), timer=timer)
    other = Runtime("other", store=backend.open(clock), timer=ManualClock())
    try:
        StateManager({"n": 0}, name="counter", runtime=holder).update_state({"n": 1})
        for _ in range(4):  # four renewals, each a third of the lease apart
            clock.now += LEASE / 3
            timer.advance(LEASE / 3)
        # Long past the first lease's expiry, and still held.
        with pytest.raises(ActorOwned, match="'counter' is already open"):
            StateManager({"n": 0}, name="counter", runtime=other)
    finally:
        other.shutdown()
        holder.shutdown()


def test_a_runtime_that_shuts_down_gives_its_names_up_at_once(
    backend: Backend, clock: WallClock
) -> None:
    with Runtime("first", store=backend.open(clock), timer=ManualClock()) as first:
        StateManager({"n": 0}, name="counter", runtime=first).update_state({"n": 5})
    with Runtime("second", store=backend.open(clock), timer=ManualClock()) as second:
        assert StateManager({"n": 0}, name="counter", runtime=second).get_state().n == 5


def test_a_group_commit_writes_the_live_holders_commits_and_fences_the_zombies(
    backend: Backend, clock: WallClock
) -> None:
    """One store object shared by two runtimes: one batch holds a commit of
    each; only the one whose lease was taken over is refused."""
    shared = backend.open(clock, "batched")
    other = backend.open(clock, "batched")
    codec = ManagerCodec()
    start = StoreSnapshot(ImmutableState(n=0), 0)
    # Runtimes (on memory stores) only for their ids: live runtimes of this process.
    zombie, live, heir = Runtime("zombie"), Runtime("live"), Runtime("heir")
    try:
        for name, holder in (("x", zombie), ("y", live)):
            assert shared.claim(name, codec, holder.runtime_id) is None
            shared.create(name, codec, start)
        clock.now += LEASE / 2
        shared.renew_lease(live.runtime_id)
        clock.now += LEASE / 2 + 1  # the zombie's lease expired, the live one's not
        assert other.claim("x", codec, heir.runtime_id) is not None  # takes it over
        with pytest.raises(ActorOwned):
            other.claim("y", codec, heir.runtime_id)

        from stateward.actors.stores._records import journal_entry

        def entry(name: str) -> object:
            return journal_entry(name, codec, start, StoreSnapshot(ImmutableState(n=1), 1), 100)

        queued = entry("y")
        with shared._cond:
            shared._pending.append(queued)  # type: ignore[arg-type]
        with pytest.raises(LeaseLost) as failed:
            shared._write_batched(entry("x"))  # type: ignore[arg-type]
        assert (failed.value.held, failed.value.current) == (1, 3)
        assert queued.done and queued.error is None  # type: ignore[attr-defined]
        assert shared.recover("y", codec).state.n == 1
        assert other.recover("x", codec).state.n == 0
    finally:
        for runtime in (zombie, live, heir):
            runtime.shutdown()
        other.close()
        shared.close()


def test_a_staged_batch_too_large_for_one_statement_is_fenced_whole(
    backend: Backend, clock: WallClock
) -> None:
    """A pooled worker's staged batch of 1,001 commits (more than one fenced
    statement holds) is checked against its lease before its first row: the
    live holder's is written whole, the zombie's not at all."""
    zombie_store, heir_store = backend.open(clock), backend.open(clock)
    codec = ManagerCodec()
    zombie, heir = Runtime("zombie"), Runtime("heir")  # for their ids: live runtimes

    def batch(first: int) -> list[Any]:
        from stateward.actors.stores._records import journal_entry

        return [
            journal_entry(
                "x",
                codec,
                StoreSnapshot(ImmutableState(n=v - 1), v - 1),
                StoreSnapshot(ImmutableState(n=v), v),
                100_000,  # no snapshot due: journal entries only
            )
            for v in range(first, first + 1001)
        ]

    try:
        assert zombie_store.claim("x", codec, zombie.runtime_id) is None
        zombie_store.create("x", codec, StoreSnapshot(ImmutableState(n=0), 0))
        zombie_store.write_staged(batch(1))
        clock.now += LEASE + 1
        assert heir_store.claim("x", codec, heir.runtime_id).state.n == 1001
        with pytest.raises(LeaseLost) as lost:
            zombie_store.write_staged(batch(1002))
        assert (lost.value.actor, lost.value.held, lost.value.current) == ("x", 1, 2)
        assert heir_store.recover("x", codec).state.n == 1001
    finally:
        heir.shutdown()
        zombie.shutdown()
        heir_store.close()
        zombie_store.close()


@pytest.mark.parametrize("seconds", [0, -1.0, True, "15"])
def test_lease_seconds_must_be_a_positive_number(tmp_path: Path, seconds: Any) -> None:
    with pytest.raises(ValueError, match="lease_seconds must be a number of seconds > 0"):
        SQLiteStore(tmp_path / "leases.db", lease_seconds=seconds)
    with pytest.raises(ValueError, match="lease_seconds must be a number of seconds > 0"):
        PostgresStore("postgresql://nobody@localhost/none", lease_seconds=seconds)


class Child:
    """`lease_child.py` in a process of its own; every read has a time limit."""

    def __init__(self, where: str, clock_file: Path) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("lease_child.py")),
                where,
                str(clock_file),
            ],
            stdin=subprocess.PIPE,  # the child exits at its end of file: no orphans
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._buffer = b""

    def line(self, timeout: float = 20.0) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, left))
            assert ready, f"the child said nothing within {timeout} s"
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            assert chunk, "the child exited: " + self.stderr()
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def stderr(self) -> str:
        self.proc.kill()
        return self.proc.communicate(timeout=10)[1].decode()

    def close(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            finally:
                if self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.proc.stdout.close()
        self.proc.stderr.close()


def test_a_paused_process_whose_names_were_taken_over_commits_nothing_when_it_resumes(
    tmp_path: Path, backend: Backend
) -> None:
    """The zombie of issue 16, faithfully: a process paused with SIGSTOP is
    alive (``kill(pid, 0)`` succeeds), so only its lease's expiry frees its names."""
    clock_file = tmp_path / "clock"
    clock_file.write_text(repr(time.time()))

    def clock() -> float:
        return float(clock_file.read_text())

    child = Child(backend.where, clock_file)
    try:
        assert child.line() == "READY"
        os.kill(child.proc.pid, signal.SIGSTOP)
        with Runtime("heir", store=backend.open(clock), timer=ManualClock()) as heir:
            with pytest.raises(ActorOwned, match=rf"process {child.proc.pid} .* until "):
                StateManager({"n": 0}, name="counter", runtime=heir)
            clock_file.write_text(repr(clock() + LEASE + 1))
            counter = StateManager({"n": 0}, name="counter", runtime=heir)
            assert counter.get_state().n == 1
            counter.update_state({"n": 100})
            os.kill(child.proc.pid, signal.SIGCONT)
            child.send("commit 2")
            assert child.line() == "ERR LeaseLost 1 2"
            counter.update_state({"n": 101})
    finally:
        child.close()
    with Runtime("check", store=backend.open(clock)) as check:
        assert StateManager({"n": 0}, name="counter", runtime=check).get_state().n == 101


def test_in_snapshot_mode_a_zombies_snapshots_are_dropped_and_its_commits_refused(
    tmp_path: Path, clock: WallClock
) -> None:
    """Snapshot mode's replies do not wait for a write: a zombie's unsaved
    snapshots are dropped when its writer finds its lease taken over (they
    would overwrite its heir's), and from then on its commits are refused."""
    path = tmp_path / "leases.db"
    codec = ManagerCodec()
    zombie_store = SQLiteStore(
        path, durability="snapshot", snapshot_interval=3600, lease_seconds=LEASE, lease_clock=clock
    )
    zombie = Runtime("zombie", store=zombie_store, timer=ManualClock())
    try:
        old = StateManager({"n": 0}, name="counter", runtime=zombie)
        clock.now += LEASE + 1
        heir_store = SQLiteStore(path, lease_seconds=LEASE, lease_clock=clock)
        with Runtime("heir", store=heir_store, timer=ManualClock()) as heir:
            new = StateManager({"n": 0}, name="counter", runtime=heir)
            old.update_state({"n": 1})  # not written yet: it waits for the writer
            new.update_state({"n": 100})
        with pytest.raises(LeaseLost):
            zombie_store.recover("counter", codec)  # writes what is unsaved first
        with pytest.raises((ActorCrashed, LeaseLost)) as failed:
            old.update_state({"n": 2})
        assert lease_lost(failed.value).held == 1
    finally:
        zombie.shutdown()
    with Runtime("check", store=SQLiteStore(path, lease_clock=clock)) as check:
        assert StateManager({"n": 0}, name="counter", runtime=check).get_state().n == 100
