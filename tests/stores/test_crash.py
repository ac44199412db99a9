"""Durable state across ``kill -9``: what was acknowledged survives, nothing wrong is loaded.

A child process (``crash_child.py``) commits as fast as it can and prints a
line for every acknowledged commit; the test kills it with SIGKILL at a
seeded point, reopens the store with the same definitions and checks the
recovered actors against what the child acknowledged and against the model
of what it does (a counter's ``n`` equals its version; the door's state,
data and history follow from its version).

In the pipelined layout one thread keeps a request in flight on every actor
at once, so the pool's workers write several actors' commits in one
transaction (a quarter as many kills per mode as ``STATEWARD_CRASH_TRIALS``).

Then the store file itself is damaged (truncated, bits flipped in stored
records): recovery either falls back to an older snapshot plus the journal or
fails with a clear `StatewardError`; it never loads wrong data.

With many actors at once, the child drives 60 actors (state managers,
machines and configs) from 8 threads, and snapshots and compaction happen all
through the run (the test reads the killed store to check that they did).
Every update carries its thread and number, recorded in the actor's state and
history, and the test replays the child's seeded plan of what each thread sent:
acknowledged ⊆ recovered ⊆ sent, update by update.

Every wait is bounded, every child is killed and reaped in a ``finally``, and
every random choice comes from a seed (``STATEWARD_CRASH_SEED``, printed in
failure messages). ``STATEWARD_CRASH_TRIALS`` sets the kills per mode (100 by
default, as in CI). ``STATEWARD_CRASH_MANY_TRIALS`` sets the kills per mode
with many actors: that many on new stores, and twice as many in a row on one
store; 3 by default (CI). For a soak run, e.g.::

    STATEWARD_CRASH_MANY_TRIALS=100 python -m pytest tests/stores/test_crash.py -k many -rP

(``-rP`` shows what each test checked: kills, acknowledged updates, snapshots
and compactions before the kills.)
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import queue
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest
from pg_support import drop_pg_schema, pg_url

from stateward.actors import RecoveryReport, Runtime, StoreError
from stateward.core import StatewardError

HERE = Path(__file__).resolve().parent
CHILD = HERE / "crash_child.py"
DAEMON = HERE.parent.parent / "examples" / "daemon.py"

TRIALS = int(os.environ.get("STATEWARD_CRASH_TRIALS", "100"))
#: Kills per mode of the pipelined layout (group commit across actors).
PIPELINED_TRIALS = max(1, TRIALS // 4)
SEED = int(os.environ.get("STATEWARD_CRASH_SEED", "20240501"))
#: Children run side by side: interpreter start-up dominates a trial, and it is CPU-bound.
PARALLEL = max(2, min(4, os.cpu_count() or 2))

#: Seconds a child may take to start and print READY (interpreter start-up included).
READY_TIMEOUT = 60.0
#: Seconds a child may take to print the acknowledgements a trial waits for.
ACK_TIMEOUT = 30.0
#: Seconds to reap a killed child and to see the end of its output.
REAP_TIMEOUT = 10.0

ACK = re.compile(r"ACK (\S+) (\d+)")
#: The many-actors layout's acknowledgement: thread, its update's number, actor, version.
UPD = re.compile(r"UPD (\d+) (\d+) (\S+) (\d+)")


def _load_child() -> ModuleType:
    """``crash_child.py`` as a module: the test recovers with the child's own definitions."""
    spec = importlib.util.spec_from_file_location("stateward_crash_child", CHILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


child_program = _load_child()


class Backend:
    """Where a test's stores live: SQLite files in its folder, or (``postgres``)
    schemas of the PostgreSQL server, each named after the file it stands for
    and dropped when the test ends (`crash_child.open_store`)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.prefix = f"sw_crash_{uuid.uuid4().hex[:8]}_"
        self.schemas: list[str] = []

    def path(self, folder: Path, name: str) -> Path:
        if self.kind == "sqlite":
            return folder / name
        schema = self.prefix + re.sub(r"[^a-z0-9]", "_", name.lower())
        self.schemas.append(schema)
        return folder / f"pg:{schema}"

    def drop(self) -> None:
        for schema in self.schemas:
            drop_pg_schema(pg_url(), schema)


SQLITE = Backend("sqlite")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Run the test on SQLite files, and on PostgreSQL (where the server
    survives the kill and only the client process dies)."""
    if request.param == "postgres":
        pg_url()  # skips without a server (fails in CI)
    chosen = Backend(request.param)
    try:
        yield chosen
    finally:
        chosen.drop()


# -- running a child -------------------------------------------------------------------------


@dataclass
class Output:
    """What a killed child printed."""

    ready: dict[str, int] = field(default_factory=dict)
    #: (arrival time in the parent, actor, version), in arrival order.
    acks: list[tuple[float, str, int]] = field(default_factory=list)
    #: The many-actors layout's (thread, seq, actor, version), in arrival order.
    updates: list[tuple[int, int, str, int]] = field(default_factory=list)
    #: The last line, if the kill cut it before its newline: never an acknowledgement.
    torn: str | None = None
    other: list[str] = field(default_factory=list)
    killed_at: float | None = None
    stderr: str = ""

    def last_acked(self) -> dict[str, int]:
        """The newest acknowledged version of each actor (READY's version if none)."""
        last = dict(self.ready)
        for _, actor, version in self.acks:
            last[actor] = max(last.get(actor, 0), version)
        return last

    def ack_problems(self) -> list[str]:
        """Acknowledgements out of order: each actor's must count up by one from READY."""
        problems = []
        expected = {actor: version + 1 for actor, version in self.ready.items()}
        for _, actor, version in self.acks:
            if expected.get(actor) != version:
                problems.append(f"{actor}: ACK {version}, expected {expected.get(actor)}")
            expected[actor] = version + 1
        return problems

    def describe(self) -> str:
        tail = [f"ACK {a} {v}" for _, a, v in self.acks[-5:]]
        tail += [f"UPD {t} {s} {a} {v}" for t, s, a, v in self.updates[-5:]]
        return (
            f"READY {self.ready}, {len(self.acks) + len(self.updates)} acknowledgements "
            f"(last: {tail}), torn line: {self.torn!r}, other lines: {self.other[-5:]}, "
            f"stderr: {self.stderr[-2000:]!r}"
        )


class Child:
    """One child process; its stdout read line by line on a thread, timed on arrival.

    Use it as a context manager: leaving the block kills and reaps the process
    (if it still runs), closes its pipes and joins the reader thread.
    """

    def __init__(self, args: list[str], stderr_path: Path) -> None:
        self.output = Output()
        self._lines: queue.Queue[tuple[float, str] | None] = queue.Queue()
        self._eof = False
        self._stderr_path = stderr_path
        self._stderr = open(stderr_path, "wb")  # noqa: SIM115 - closed in close()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, *args],
                stdin=subprocess.PIPE,  # the child exits at its end of file: no orphans
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                text=True,
                bufsize=1,
            )
        except BaseException:
            self._stderr.close()
            raise
        self._reader = threading.Thread(target=self._read, name="crash-child-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            for line in self.proc.stdout:  # with its newline: a torn last line has none
                self._lines.put((time.monotonic(), line))
        except ValueError:  # the pipe was closed under us: the child is gone anyway
            pass
        finally:
            self._lines.put(None)

    def _take(self, item: tuple[float, str] | None) -> None:
        if item is None:
            self._eof = True
            return
        at, line = item
        out = self.output
        assert out.torn is None, f"a line after the torn line {out.torn!r}: {line!r}"
        if not line.endswith("\n"):
            # Cut by the kill (the child writes each line at once, but never trust
            # that): "ACK counter 12" may be the start of "ACK counter 123".
            out.torn = line
            return
        line = line[:-1]
        if line.startswith("UPD "):
            match = UPD.fullmatch(line)
            assert match, f"malformed line {line!r}"
            out.updates.append((int(match[1]), int(match[2]), match[3], int(match[4])))
        elif line.startswith("ACK "):
            match = ACK.fullmatch(line)
            assert match, f"malformed line {line!r}"
            out.acks.append((at, match[1], int(match[2])))
        elif line.startswith("READY"):
            out.ready = {k: int(v) for k, v in (p.split("=") for p in line.split()[1:])}
        else:
            out.other.append(line)

    def next_line(self, deadline: float, waiting_for: str) -> None:
        """Take one line, or fail if none comes before ``deadline`` or the child ended."""
        if self._eof:
            self._fail(f"the child ended while the test waited for {waiting_for}")
        try:
            item = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            self._fail(f"no output for {waiting_for} in time")
        self._take(item)
        if self.output.other and self.output.other[-1].startswith("ERROR"):
            self._fail(f"the child failed while the test waited for {waiting_for}")

    def _fail(self, problem: str) -> None:
        self.kill()
        self._stderr.flush()
        self.output.stderr = self._stderr_path.read_text(errors="replace")
        pytest.fail(f"{problem}: {self.output.describe()}")

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while not self.output.ready:
            self.next_line(deadline, "READY")
        return self.output.ready

    def wait_acks(self, count: int, timeout: float = ACK_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while len(self.output.acks) < count:
            self.next_line(deadline, f"{count} ACK lines")

    def wait_line(self, text: str, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output.other:
            self.next_line(deadline, repr(text))

    def wait_updates(self, count: int, timeout: float = ACK_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while len(self.output.updates) < count:
            self.next_line(deadline, f"{count} UPD lines")

    def watch(self, seconds: float) -> None:
        """Take lines for ``seconds``: a kill point in time, not a wait for an event."""
        until = time.monotonic() + seconds
        while not self._eof:
            try:
                item = self._lines.get(timeout=max(0.0, until - time.monotonic()))
            except queue.Empty:
                return
            self._take(item)
            if time.monotonic() >= until:
                return

    def kill(self) -> Output:
        """SIGKILL the child, reap it, and take all it printed before it died."""
        if self.proc.poll() is None:
            self.output.killed_at = time.monotonic()
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(REAP_TIMEOUT)
        # The pipe ends when the process is gone: what it wrote before is still there.
        deadline = time.monotonic() + REAP_TIMEOUT
        while not self._eof:
            try:
                item = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            self._take(item)
        assert self._eof, "the child's output did not end after it was killed"
        return self.output

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(REAP_TIMEOUT)
        finally:
            self._reader.join(REAP_TIMEOUT)
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
            self._stderr.close()
            self.output.stderr = self._stderr_path.read_text(errors="replace")
        assert not self._reader.is_alive(), "the output reader thread did not end"

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_child(
    folder: Path, path: Path, mode: str, seed: int, layout: str = "few", first_thread: int = 0
) -> Child:
    return Child(
        [str(CHILD), str(path), mode, str(seed), layout, str(first_thread)],
        folder / f"{path.name}.stderr",
    )


# -- recovering and checking -------------------------------------------------------------------


@dataclass
class Recovered:
    versions: dict[str, int]
    problems: list[str]


def recover(path: Path, mode: str, *, found: bool = True) -> Recovered:
    """Reopen the store in this process, with a fresh runtime and the child's definitions.

    ``found``: every actor must be in the store (a damaged store may have lost some).
    """
    with Runtime("recover", store=child_program.open_store(str(path), mode)) as runtime:
        counters, door = child_program.open_actors(runtime, mode)
        handles = [*counters.values(), door]
        if found:
            assert all(h.recovered for h in handles), "an actor was not found in the store"
        return Recovered(
            {h.name: h.version for h in handles}, child_program.model_problems(counters, door)
        )


def check_against_acks(
    mode: str,
    out: Output,
    recovered: Recovered,
    before: dict[str, int] | None = None,
    layout: str = "few",
) -> list[str]:
    """Every acknowledged version is there, and nothing beyond the one request in flight.

    ``before``: the versions the store held when the child started (none: a new store).
    """
    problems = list(recovered.problems) + out.ack_problems()
    if out.ready and before is not None and out.ready != before:
        problems.append(f"the child recovered {out.ready}, the store held {before}")
    acked = {**(before or {}), **out.last_acked()}
    for actor, version in recovered.versions.items():
        last = acked.get(actor, 0)
        if version < last:
            problems.append(f"{actor}: acknowledged version {last} lost, recovered {version}")
        # Each actor has at most one request in flight (its one driver thread waits for
        # each reply), and the child may die between a commit and printing its ACK.
        if version > last + 1:
            problems.append(
                f"{actor}: recovered version {version}, but only {last} was acknowledged "
                "and one request was in flight"
            )
    if mode == "strict" and layout == "few":
        # One thread drives every actor: one request in flight in the whole process.
        ahead = sum(max(0, v - acked.get(a, 0)) for a, v in recovered.versions.items())
        if ahead > 1:
            problems.append(f"{ahead} unacknowledged commits recovered, at most 1 was in flight")
    return problems


def kill_at_a_seeded_point(child: Child, rng: random.Random) -> Output:
    choice = rng.random()
    if choice < 0.05:
        # Maybe while it starts, opens the store, creates or recovers its actors.
        child.watch(rng.uniform(0.0, 1.0))
        return child.kill()
    child.wait_ready()
    if choice < 0.6:
        child.wait_acks(rng.randint(0, 60))  # around the first snapshots
    elif choice < 0.8:
        child.wait_acks(rng.randint(60, 300))  # past the compaction of old snapshots
    else:
        child.watch(rng.uniform(0.0, 0.1))  # a point in time, maybe before any commit
    return child.kill()


def crash_and_check(
    mode: str, path: Path, rng: random.Random, before: dict[str, int] | None, layout: str = "few"
) -> tuple[list[str], Recovered | None, Output]:
    """Start the child on ``path``, kill it at a seeded point, recover, and check."""
    with start_child(path.parent, path, mode, rng.randrange(2**31), layout) as child:
        out = kill_at_a_seeded_point(child, rng)
    try:
        # Killed before READY, the child may not have stored its actors yet.
        recovered = recover(path, mode, found=bool(out.ready) or before is not None)
    except StatewardError as exc:
        return [f"recovery failed: {exc!r}"], None, out
    return check_against_acks(mode, out, recovered, before, layout), recovered, out


def crash_trial(
    mode: str, trial: int, folder: Path, layout: str = "few", backend: Backend = SQLITE
) -> str | None:
    """One kill at a seeded point on a fresh store; the problems found, or None."""
    rng = random.Random(f"{SEED}:{mode}:{layout}:{trial}")
    path = backend.path(folder, f"{mode}-{layout}-{trial}.db")
    problems, recovered, out = crash_and_check(mode, path, rng, None, layout)
    if problems:
        versions = recovered.versions if recovered else None
        return f"trial {trial}: {problems}; recovered {versions}; {out.describe()}"
    return None


def run_trials(
    mode: str,
    folder: Path,
    layout: str = "few",
    trials: int = TRIALS,
    backend: Backend = SQLITE,
) -> list[str]:
    with ThreadPoolExecutor(PARALLEL, thread_name_prefix=f"crash-{mode}") as pool:
        results = list(
            pool.map(lambda t: crash_trial(mode, t, folder, layout, backend), range(trials))
        )
    return [r for r in results if r is not None]


# -- kill -9 while committing ---------------------------------------------------------------------


@pytest.mark.usefixtures("child_host")
@pytest.mark.slow
@pytest.mark.timeout(max(120, 30 + 3 * TRIALS))
@pytest.mark.parametrize("mode", ["strict", "batched"])
def test_kill_9_loses_no_acknowledged_commit_and_loads_no_wrong_data(
    mode: str, tmp_path: Path, backend: Backend
) -> None:
    failures = run_trials(mode, tmp_path, backend=backend)
    assert not failures, (
        f"{len(failures)} of {TRIALS} kill -9 trials in {mode} mode failed (seed {SEED}); "
        f"first ones:\n" + "\n".join(failures[:5])
    )


@pytest.mark.usefixtures("child_host")
@pytest.mark.slow
@pytest.mark.timeout(max(120, 30 + 3 * PIPELINED_TRIALS))
@pytest.mark.parametrize("mode", ["strict", "batched"])
def test_kill_9_while_workers_write_several_actors_commits_together_loses_none(
    mode: str, tmp_path: Path, backend: Backend
) -> None:
    """One thread keeps a request in flight on every actor at once, so the
    pool's workers write several actors' commits in one transaction: each
    acknowledged one must be there after a ``kill -9``."""
    failures = run_trials(mode, tmp_path, "pipelined", PIPELINED_TRIALS, backend)
    assert not failures, (
        f"{len(failures)} of {PIPELINED_TRIALS} pipelined kill -9 trials in {mode} mode "
        f"failed (seed {SEED}); first ones:\n" + "\n".join(failures[:5])
    )


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["strict", "batched"])
def test_kill_9_again_and_again_on_one_store(mode: str, tmp_path: Path, backend: Backend) -> None:
    """Each run recovers what the last one acknowledged and carries on, through snapshots,
    compaction and kills during recovery itself."""
    rng = random.Random(f"{SEED}:{mode}:again")
    path = backend.path(tmp_path, "store.db")
    before: dict[str, int] | None = None
    for run in range(6):
        problems, recovered, out = crash_and_check(mode, path, rng, before)
        assert not problems, f"run {run} (seed {SEED}): {problems}; {out.describe()}"
        assert recovered is not None
        before = recovered.versions


@pytest.mark.slow
def test_kill_9_in_snapshot_mode_loses_at_most_the_last_interval(tmp_path: Path) -> None:
    """Snapshot mode loses recent commits by design, but only those of the last interval,
    and what it recovers is a state the child committed, never wrong data."""
    interval = child_program.SNAPSHOT_INTERVAL
    slack = 1.5  # scheduling on a loaded CI machine, and the snapshot write itself

    def trial(index: int) -> str | None:
        rng = random.Random(f"{SEED}:snapshot:{index}")
        path = tmp_path / f"snapshot-{index}.db"
        with start_child(tmp_path, path, "snapshot", rng.randrange(2**31)) as child:
            child.wait_ready()
            child.watch(rng.uniform(2.0, 2.6))  # long enough for the bound to matter
            out = child.kill()
        assert out.killed_at is not None
        recovered = recover(path, "snapshot")
        problems = list(recovered.problems) + out.ack_problems()
        acked = out.last_acked()
        old_enough = out.killed_at - interval - slack
        for actor, version in recovered.versions.items():
            if version > acked.get(actor, 0) + 1:  # +1: a commit written before its ACK
                problems.append(f"{actor}: recovered {version}, acknowledged {acked.get(actor)}")
            durable = [v for at, a, v in out.acks if a == actor and at <= old_enough]
            if durable and version < max(durable):
                problems.append(
                    f"{actor}: version {max(durable)}, acknowledged more than "
                    f"{interval + slack:.2f} s before the kill, was lost (recovered {version})"
                )
        if not any(at <= old_enough for at, _, _ in out.acks):
            problems.append("no ACK was old enough to check the bound: the run was too short")
        if problems:
            return f"trial {index}: {problems}; recovered {recovered.versions}; {out.describe()}"
        return None

    with ThreadPoolExecutor(PARALLEL, thread_name_prefix="crash-snapshot") as pool:
        failures = [r for r in pool.map(trial, range(4)) if r is not None]
    assert not failures, f"seed {SEED}:\n" + "\n".join(failures)


# -- kill -9 with many actors and threads at once ------------------------------------------------

#: Kills per mode with many actors; 3 in CI, more for a local soak (see the module docstring).
MANY_TRIALS = int(os.environ.get("STATEWARD_CRASH_MANY_TRIALS", "3"))
#: Acknowledged updates before a kill: past the first snapshots and compactions of
#: the busiest actors, and up to where every actor has been compacted several times.
MANY_PROGRESS = (200, 1500)
#: What a new many-actors store holds.
NEW_STORE = dict.fromkeys(child_program.MANY_ACTORS, 0)


@dataclass
class ManyTrial:
    """What one many-actors trial checked, and the problems it found."""

    problems: list[str]
    acknowledged: int = 0
    #: Updates applied and recovered whose acknowledgement the kill cut off.
    in_flight_recovered: int = 0
    #: Snapshots the child wrote before the kill, and actors it had compacted.
    snapshots: int = 0
    compacted: int = 0


def copy_store(path: Path, copy: Path) -> None:
    """Copy a store file with its write-ahead log, as a kill left them."""
    shutil.copyfile(path, copy)
    if Path(f"{path}-wal").exists():
        shutil.copyfile(f"{path}-wal", f"{copy}-wal")


def store_activity(path: Path, folder: Path) -> tuple[int, int]:
    """How many snapshots the killed child wrote, and how many actors it compacted.

    Read from a copy of the files, so the store under test is recovered as the
    kill left it. Snapshots are written at every `MANY_SNAPSHOT_EVERY`-th version,
    so an actor's newest one tells how many it took; an actor whose oldest kept
    snapshot is not its first (version 0) was compacted.
    """
    query = "SELECT name, min(version), max(version) FROM {}snapshots GROUP BY name"
    if path.name.startswith("pg:"):  # the server keeps it as the kill left it
        conninfo = pg_url().replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(conninfo) as conn:
            rows = conn.execute(query.format(path.name[3:] + ".")).fetchall()
    else:
        copy = folder / f"inspect-{path.name}"
        copy_store(path, copy)
        db = sqlite3.connect(copy)
        try:
            rows = db.execute(query.format("")).fetchall()
        finally:
            db.close()
    every = child_program.MANY_SNAPSHOT_EVERY
    snapshots = sum(newest // every for _, _, newest in rows)
    compacted = sum(1 for _, oldest, _ in rows if oldest > 0)
    return snapshots, compacted


@dataclass
class ManyRun:
    """One run of the many-actors child, killed: its seed, its threads, what it printed."""

    seed: int
    first_thread: int
    out: Output
    #: The versions the store held when it started (all 0: a new store).
    before: dict[str, int]

    @property
    def threads(self) -> range:
        return range(self.first_thread, self.first_thread + child_program.MANY_THREADS)


def check_many(runs: list[ManyRun], model: Any) -> ManyTrial:
    """Acknowledged ⊆ recovered ⊆ sent, update by update, for every actor and thread.

    The child's threads send their planned updates one after the other, each
    after the last one's acknowledgement: thread ``t`` sent updates ``0..a+1``
    where ``a`` is its last acknowledged one (``a+1`` maybe not, or maybe in
    flight). Each actor holds, per thread, how many of its updates it took and
    the last one's number: that must be a prefix of what the thread sent it,
    at least as long as what was acknowledged. ``runs``: every run on the
    store, each with threads of its own.
    """
    planned = child_program.planned
    trial = ManyTrial(list(model.problems))
    problems = trial.problems
    seed_of: dict[int, int] = {}
    last_seq: dict[int, int] = {}
    acked_at: dict[str, dict[int, tuple[int, int]]] = {}
    for run in runs:
        if run.out.ready and run.out.ready != run.before:
            problems.append(f"the child recovered {run.out.ready}, the store held {run.before}")
        trial.acknowledged += len(run.out.updates)
        for thread in run.threads:
            seed_of[thread], last_seq[thread] = run.seed, -1
        for thread, seq, name, version in run.out.updates:
            if seq != last_seq.get(thread, -2) + 1:
                problems.append(f"thread {thread}: UPD {seq} after {last_seq.get(thread)}")
            last_seq[thread] = seq
            if planned(run.seed, thread, seq)[0] != name:
                problems.append(f"thread {thread}: update {seq} went to {name}, not as planned")
            first = acked_at.setdefault(name, {}).setdefault(version, (thread, seq))
            if first != (thread, seq):
                problems.append(
                    f"{name}: version {version} acknowledged to {first} and {thread, seq}"
                )
    unknown = {t for held in model.applied.values() for t in held} - set(seed_of)
    if unknown:
        problems.append(f"updates of threads {sorted(unknown)}, which never ran")

    def planned_update(thread: int, seq: int) -> tuple[str, str]:
        return planned(seed_of[thread], thread, seq)

    for thread, seed in seed_of.items():
        sent: dict[str, list[int]] = {}
        for seq in range(last_seq[thread] + 2):
            sent.setdefault(planned(seed, thread, seq)[0], []).append(seq)
        for name in child_program.MANY_ACTORS:
            seqs = sent.get(name, [])
            acked = [seq for seq in seqs if seq <= last_seq[thread]]
            held, last = model.applied[name].get(thread, (0, None))
            if held < len(acked):
                problems.append(
                    f"{name}: thread {thread}'s acknowledged updates {acked[held:]} are lost "
                    f"(it holds {held} of the thread's updates, up to number {last})"
                )
            elif held > len(seqs):
                problems.append(
                    f"{name}: holds {held} updates of thread {thread}, which sent it {len(seqs)}"
                )
            elif held and seqs[held - 1] != last:
                problems.append(
                    f"{name}: its update {held} from thread {thread} is number {last}, "
                    f"but the thread sent number {seqs[held - 1]}"
                )
            elif held > len(acked):
                trial.in_flight_recovered += 1
    for name, acked_versions in acked_at.items():
        recovered = model.versions[name]
        history = model.history.get(name, {})
        machine = child_program.kind_of(name) == "machine"
        for version, (thread, seq) in acked_versions.items():
            if version > recovered:
                problems.append(
                    f"{name}: version {version} was acknowledged, {recovered} recovered"
                )
            elif version in history:
                expected = planned_update(thread, seq)[1] if machine else (thread, seq)
                if history[version] != expected:
                    problems.append(
                        f"{name}: history says version {version} is {history[version]!r}, "
                        f"acknowledged as update {seq} of thread {thread} ({expected!r})"
                    )
    for name, history in model.history.items():
        if child_program.kind_of(name) != "config":
            continue
        for version, (thread, seq) in history.items():
            if (
                thread not in seed_of
                or seq > last_seq[thread] + 1
                or planned_update(thread, seq)[0] != name
            ):
                problems.append(f"{name}: version {version} is an update never sent to it")
    recovered_total = sum(model.versions.values())
    if recovered_total != trial.acknowledged + trial.in_flight_recovered:
        problems.append(
            f"the actors' versions add up to {recovered_total} updates recovered, the "
            f"threads' to {trial.acknowledged} acknowledged and "
            f"{trial.in_flight_recovered} in flight"
        )
    return trial


def recover_many(path: Path, mode: str) -> tuple[Any, list[str]]:
    """Reopen a many-actors store in this process; the model and any damage reported."""
    store = child_program.open_store(str(path), mode, "many")
    with Runtime("recover-many", store=store) as runtime:
        handles = child_program.open_many_actors(runtime)
        damage = [f"{name} was not found" for name, h in handles.items() if not h.recovered]
        stored = {actor.name: actor.version for actor in store.actors()}
        damage += [
            f"{name}: recovered version {h.version}, the store holds {stored.get(name)}"
            for name, h in handles.items()
            if stored.get(name) != h.version
        ]
        for name in handles:
            report = store.recovery_report(name)
            if report is not None and report.skipped:
                damage.append(f"{name}: recovery skipped damaged snapshots {report.skipped}")
        return child_program.many_model(handles), damage


def many_trial(mode: str, trial: int, folder: Path, backend: Backend = SQLITE) -> ManyTrial:
    """Kill a child driving many actors at a seeded point after some progress; check all."""
    rng = random.Random(f"{SEED}:many:{mode}:{trial}")
    path = backend.path(folder, f"many-{mode}-{trial}.db")
    seed = rng.randrange(2**31)
    with start_child(folder, path, mode, seed, "many") as child:
        child.wait_ready()
        child.wait_updates(rng.randint(*MANY_PROGRESS))
        if rng.random() < 0.5:
            child.watch(rng.uniform(0.0, 0.05))  # a moment past it, not a line
        out = child.kill()
    snapshots, compacted = store_activity(path, folder)
    try:
        model, damage = recover_many(path, mode)
    except StatewardError as exc:
        return ManyTrial([f"trial {trial}: recovery failed: {exc!r}; {out.describe()}"])
    result = check_many([ManyRun(seed, 0, out, NEW_STORE)], model)
    result.problems += damage
    result.snapshots, result.compacted = snapshots, compacted
    if not snapshots or not compacted:
        result.problems.append(
            f"only {snapshots} snapshots and {compacted} compacted actors before the kill: "
            "the run was too short to kill it around them"
        )
    if result.problems:
        result.problems = [f"trial {trial}: {result.problems[:10]}; {out.describe()}"]
    return result


@pytest.mark.usefixtures("child_host")
@pytest.mark.slow
@pytest.mark.timeout(max(120, 30 + 10 * MANY_TRIALS))
@pytest.mark.parametrize("mode", ["strict", "batched"])
def test_kill_9_with_many_actors_and_threads_loses_no_acknowledged_update(
    mode: str, tmp_path: Path, backend: Backend
) -> None:
    """60 actors (managers, machines, configs) and 8 threads, snapshots and compaction
    all the time: every acknowledged update is recovered, nothing unsent is, and every
    history fits its state."""
    with ThreadPoolExecutor(PARALLEL, thread_name_prefix=f"crash-many-{mode}") as pool:
        trials = list(
            pool.map(lambda t: many_trial(mode, t, tmp_path, backend), range(MANY_TRIALS))
        )
    failures = [p for t in trials for p in t.problems]
    assert not failures, (
        f"{len(failures)} of {MANY_TRIALS} many-actors kill -9 trials in {mode} mode failed "
        f"(seed {SEED}); first ones:\n" + "\n".join(failures[:3])
    )
    print(
        f"{mode}: {MANY_TRIALS} kills, {sum(t.acknowledged for t in trials)} acknowledged "
        f"updates checked, none lost; {sum(t.in_flight_recovered for t in trials)} "
        f"unacknowledged updates in flight recovered; {sum(t.snapshots for t in trials)} "
        f"snapshots written and {sum(t.compacted for t in trials)} actors compacted before "
        "the kills"
    )


@pytest.mark.usefixtures("child_host")
@pytest.mark.slow
@pytest.mark.timeout(max(120, 30 + 10 * MANY_TRIALS))
@pytest.mark.parametrize("mode", ["strict", "batched"])
def test_kill_9_again_and_again_with_many_actors_on_one_store(
    mode: str, tmp_path: Path, backend: Backend
) -> None:
    """Each run recovers the 60 actors, snapshotted and compacted, that the last one
    left, and carries on with threads of its own; every other kill lands while it
    recovers them. After each kill, every update of every run so far is accounted for."""
    rng = random.Random(f"{SEED}:many:{mode}:again")
    path = backend.path(tmp_path, "store.db")
    runs: list[ManyRun] = []
    before = NEW_STORE
    in_recovery = 0
    for index in range(2 * MANY_TRIALS):
        seed, first = rng.randrange(2**31), index * child_program.MANY_THREADS
        early = index % 2 == 1  # every other run
        with start_child(tmp_path, path, mode, seed, "many", first) as child:
            if early:  # while it recovers the actors (unless this process falls behind)
                child.wait_line(f"OPENING {rng.choice(child_program.MANY_ACTORS[:45])}")
            else:
                child.wait_ready()
                child.wait_updates(rng.randint(50, 600))
            out = child.kill()
        in_recovery += early and not out.ready
        runs.append(ManyRun(seed, first, out, before))
        model, damage = recover_many(path, mode)
        problems = check_many(runs, model).problems + damage
        assert not problems, f"run {index} (seed {SEED}): {problems[:10]}; {out.describe()}"
        before = model.versions
    snapshots, compacted = store_activity(path, tmp_path)
    assert snapshots and compacted, (snapshots, compacted)
    print(
        f"{mode}: {len(runs)} kills on one store ({in_recovery} while it recovered the "
        f"actors), {sum(before.values())} updates recovered, "
        f"{sum(len(run.out.updates) for run in runs)} of them acknowledged, none lost"
    )


@pytest.mark.slow
def test_the_many_actors_check_finds_a_lost_and_an_unsent_update(tmp_path: Path) -> None:
    """The check above can fail: remove an acknowledged update from a killed child's
    store, or add one no thread sent, and it says so."""
    rng = random.Random(f"{SEED}:many:check")
    path = tmp_path / "killed.db"
    seed = rng.randrange(2**31)
    with start_child(tmp_path, path, "strict", seed, "many") as child:
        child.wait_ready()
        child.wait_updates(400)
        out = child.kill()
    model, damage = recover_many(path, "strict")
    assert not damage
    runs = [ManyRun(seed, 0, out, NEW_STORE)]
    assert not check_many(runs, model).problems

    # Lost: the newest entry of an actor whose newest version was acknowledged.
    acked: dict[str, int] = {}
    for _, _, name, version in out.updates:
        acked[name] = max(acked.get(name, 0), version)
    name = next(n for n, v in sorted(acked.items()) if v == model.versions[n] and v >= 8)
    lost = tmp_path / "lost.db"
    copy_store(path, lost)
    db = sqlite3.connect(lost)
    with db:
        for table in ("journal", "snapshots"):
            db.execute(f"DELETE FROM {table} WHERE name = ? AND version = ?", (name, acked[name]))
    db.close()
    problems = check_many(runs, recover_many(lost, "strict")[0]).problems
    assert any(f"{name}: thread" in p and "are lost" in p for p in problems), problems
    assert any(f"{name}: version {acked[name]} was acknowledged" in p for p in problems)

    # Unsent: one more update, as if thread 0 had sent it.
    unsent = tmp_path / "unsent.db"
    copy_store(path, unsent)
    store = child_program.open_store(str(unsent), "strict", "many")
    with Runtime("unsent", store=store) as runtime:
        handle = child_program.open_many_actors(runtime)["manager-00"]
        held = model.applied["manager-00"].get(0, (0, 0))[0]
        child_program.apply_update(handle, 0, 10**6, held + 1, "red")
    problems = check_many(runs, recover_many(unsent, "strict")[0]).problems
    assert any("manager-00" in p and "thread 0" in p for p in problems), problems
    assert any("add up to" in p for p in problems), problems


def test_a_torn_last_line_is_not_taken_for_an_acknowledgement(tmp_path: Path) -> None:
    """A kill can cut the child's last line: "ACK counter 12" may be "ACK counter 123"."""
    lines = "ACK counter 1\\nUPD 0 0 manager-00 1\\nACK counter 12"
    code = f"import sys; sys.stdout.write('{lines}'); sys.stdout.flush()"
    with Child(["-c", code], tmp_path / "torn.stderr") as child:
        child.proc.wait(READY_TIMEOUT)
        out = child.kill()
    assert [(a, v) for _, a, v in out.acks] == [("counter", 1)]
    assert out.updates == [(0, 0, "manager-00", 1)]
    assert out.torn == "ACK counter 12"


# -- a damaged store file ------------------------------------------------------------------------


def fill_store(path: Path, commits: int) -> dict[str, int]:
    """``commits`` strict commits on each actor of the strict layout, closed cleanly."""
    with Runtime("fill", store=child_program.open_store(str(path), "strict")) as runtime:
        counters, door = child_program.open_actors(runtime, "strict")
        counter = counters["counter"]
        for _ in range(commits):
            counter.modify(lambda s: s.update(n=s.n + 1))
            door.transition("closed" if door.current_state == "open" else "open")
        return {counter.name: counter.version, door.name: door.version}


def try_recover(path: Path) -> tuple[Recovered | None, StatewardError | None]:
    try:
        return recover(path, "strict", found=False), None
    except StatewardError as exc:
        return None, exc


def recover_with_report(
    path: Path, actor: str
) -> tuple[Recovered | None, RecoveryReport | None, StatewardError | None]:
    """Recover the strict layout; also what the store reports about ``actor``'s recovery."""
    store = child_program.open_store(str(path), "strict")
    try:
        with Runtime("recover", store=store) as runtime:
            counters, door = child_program.open_actors(runtime, "strict")
            recovered = Recovered(
                {h.name: h.version for h in [*counters.values(), door]},
                child_program.model_problems(counters, door),
            )
    except StatewardError as exc:
        return None, None, exc
    return recovered, store.recovery_report(actor), None


def assert_fails_clearly(exc: BaseException, *words: str) -> None:
    assert isinstance(exc, StatewardError), f"not a StatewardError: {exc!r}"
    text = str(exc)
    for word in words:
        assert word in text, f"{text!r} does not name {word!r}"


@pytest.mark.slow
def test_a_store_file_truncated_after_a_clean_close_never_loads_wrong_data(
    tmp_path: Path,
) -> None:
    pristine = tmp_path / "pristine.db"
    full = fill_store(pristine, 40)
    size = pristine.stat().st_size
    rng = random.Random(f"{SEED}:truncate-db")
    points = sorted({1, 50, 100, 4096, size // 2, size - 1, *rng.sample(range(1, size), 6)})
    outcomes = []
    for point in points:
        path = tmp_path / f"cut-{point}.db"
        shutil.copyfile(pristine, path)
        with open(path, "r+b") as f:
            f.truncate(point)
        recovered, error = try_recover(path)
        if recovered is not None:
            assert not recovered.problems, f"cut at {point}: wrong data {recovered.problems}"
            for actor, version in recovered.versions.items():
                assert version <= full[actor], f"cut at {point}: {actor} at {version}"
            outcomes.append((point, "recovered", recovered.versions))
        else:
            assert error is not None
            assert isinstance(error, StoreError), f"cut at {point}: {error!r}"
            outcomes.append((point, type(error).__name__, str(error)))
    assert len(outcomes) == len(points)


@pytest.mark.slow
def test_garbage_over_any_page_of_the_store_file_never_loads_wrong_data(tmp_path: Path) -> None:
    """A damaged page (of a table, an index or the schema) is refused, never misread."""
    pristine = tmp_path / "pristine.db"
    full = fill_store(pristine, 40)
    db = sqlite3.connect(pristine)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    rng = random.Random(f"{SEED}:garbage")
    pages = pristine.stat().st_size // page_size
    # Over each page's header (its type, cell count, pointers) and somewhere inside it.
    spots = [(p, rng.randrange(12)) for p in range(pages)]
    spots += [(p, rng.randrange(page_size - 64)) for p in range(pages)]
    for page, offset in spots:
        path = tmp_path / f"page-{page}-{offset}.db"
        shutil.copyfile(pristine, path)
        with open(path, "r+b") as f:
            f.seek(page * page_size + offset)
            f.write(rng.randbytes(64))
        where = f"64 random bytes at offset {offset} of page {page + 1}"
        try:
            recovered, error = try_recover(path)
        except sqlite3.Error as exc:
            pytest.fail(f"{where}: SQLite's error escaped, not a StatewardError: {exc!r}")
        if recovered is not None:
            assert not recovered.problems, f"{where}: wrong data {recovered.problems}"
            for actor, version in recovered.versions.items():
                assert version <= full[actor], f"{where}: {actor} at {version}"
        else:
            assert isinstance(error, StoreError), f"{where}: {error!r}"


@pytest.mark.slow
def test_a_wal_torn_by_kill_9_and_truncation_never_loads_wrong_data(tmp_path: Path) -> None:
    """Kill the child, then cut its write-ahead log at seeded points, as a torn write would."""
    rng = random.Random(f"{SEED}:truncate-wal")
    pristine = tmp_path / "killed.db"
    with start_child(tmp_path, pristine, "strict", rng.randrange(2**31)) as child:
        child.wait_ready()
        child.wait_acks(200)
        out = child.kill()
    wal = Path(f"{pristine}-wal")
    assert wal.stat().st_size > 0, "the killed child left no write-ahead log to cut"
    acked = out.last_acked()
    size = wal.stat().st_size
    for point in sorted({0, 32, size - 1, *rng.sample(range(1, size), 8)}):
        path = tmp_path / f"wal-cut-{point}.db"
        shutil.copyfile(pristine, path)
        shutil.copyfile(wal, f"{path}-wal")
        with open(f"{path}-wal", "r+b") as f:
            f.truncate(point)
        recovered, error = try_recover(path)
        if recovered is not None:
            assert not recovered.problems, f"WAL cut at {point}: wrong data {recovered.problems}"
            for actor, version in recovered.versions.items():
                assert version <= acked[actor] + 1, f"WAL cut at {point}: {actor} at {version}"
        else:
            assert isinstance(error, StoreError), f"WAL cut at {point}: {error!r}"


def flip_bit(path: Path, table: str, name: str, version: int, rng: random.Random) -> int:
    """Flip one seeded bit inside the payload of one stored record; return its bit index."""
    db = sqlite3.connect(path)
    try:
        (payload,) = db.execute(
            f"SELECT payload FROM {table} WHERE name = ? AND version = ?",
            (name, version),
        ).fetchone()
        data = bytearray(payload)
        bit = rng.randrange(len(data) * 8)
        data[bit // 8] ^= 1 << (bit % 8)
        with db:
            db.execute(
                f"UPDATE {table} SET payload = ? WHERE name = ? AND version = ?",
                (bytes(data), name, version),
            )
        return bit
    finally:
        db.close()


def stored_versions(path: Path, table: str, name: str) -> list[int]:
    db = sqlite3.connect(path)
    try:
        rows = db.execute(
            f"SELECT version FROM {table} WHERE name = ? ORDER BY version",
            (name,),
        ).fetchall()
        return [row[0] for row in rows]
    finally:
        db.close()


@pytest.mark.slow
@pytest.mark.parametrize("actor", ["counter", "door"])
def test_a_flipped_bit_in_the_newest_snapshot_falls_back_or_fails_clearly(
    actor: str, tmp_path: Path
) -> None:
    pristine = tmp_path / "pristine.db"
    full = fill_store(pristine, 40)
    snapshots = stored_versions(pristine, "snapshots", actor)
    assert len(snapshots) >= 2, f"the store keeps one snapshot only: {snapshots}"
    newest = snapshots[-1]
    rng = random.Random(f"{SEED}:flip-snapshot:{actor}")
    fell_back = 0
    for attempt in range(12):
        path = tmp_path / f"flip-{attempt}.db"
        shutil.copyfile(pristine, path)
        bit = flip_bit(path, "snapshots", actor, newest, rng)
        recovered, report, error = recover_with_report(path, actor)
        # The checksum covers the whole payload but its magic (whose damage reads as
        # "not a stateward payload"), so every flipped bit means falling back.
        assert error is None, f"bit {bit}: {error!r}"
        assert recovered is not None
        assert report is not None
        problems, versions = recovered.problems, recovered.versions
        assert not problems, f"bit {bit}: wrong data {problems}"
        assert versions == full, f"bit {bit}: journal after the older snapshot not replayed"
        assert [v for v, _ in report.skipped] == [newest], f"bit {bit}: {report}"
        assert report.snapshot_version == snapshots[-2]
        fell_back += 1
    assert fell_back == 12


@pytest.mark.slow
@pytest.mark.parametrize("actor", ["counter", "door"])
def test_a_flipped_bit_in_the_journal_fails_clearly_and_loads_nothing(
    actor: str, tmp_path: Path
) -> None:
    pristine = tmp_path / "pristine.db"
    fill_store(pristine, 40)
    entries = stored_versions(pristine, "journal", actor)
    newest_snapshot = stored_versions(pristine, "snapshots", actor)[-1]
    needed = [v for v in entries if v > newest_snapshot]
    assert needed, "no journal entry after the newest snapshot to damage"
    rng = random.Random(f"{SEED}:flip-journal:{actor}")
    for attempt in range(8):
        path = tmp_path / f"flip-{attempt}.db"
        shutil.copyfile(pristine, path)
        version = rng.choice(needed)
        flip_bit(path, "journal", actor, version, rng)
        with pytest.raises(StatewardError) as caught:
            recover(path, "strict")
        assert_fails_clearly(caught.value, actor, f"journal entry {version}")


@pytest.mark.slow
def test_a_flipped_bit_in_every_snapshot_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    fill_store(path, 40)
    rng = random.Random(f"{SEED}:flip-all")
    for version in stored_versions(path, "snapshots", "counter"):
        flip_bit(path, "snapshots", "counter", version, rng)
    with pytest.raises(StatewardError) as caught:
        recover(path, "strict")
    assert_fails_clearly(caught.value, "counter")


# -- the daemon example ------------------------------------------------------------------------


def test_the_daemon_example_survives_kill_9(tmp_path: Path) -> None:
    store = tmp_path / "daemon.db"
    with Child([str(DAEMON), "--store", str(store)], tmp_path / "daemon.stderr") as first:
        _wait_for_ticks(first, count=8)
        lines = first.kill().other
    assert lines[0] == "fresh store", lines
    done = [int(m[1]) for m in map(re.compile(r"tick: processed=(\d+)").match, lines) if m]
    assert done, lines
    acknowledged = max(done)
    with Child(
        [str(DAEMON), "--store", str(store), "--ticks", "5"], tmp_path / "daemon2.stderr"
    ) as second:
        second.proc.wait(READY_TIMEOUT)
        second.kill()
    out = second.output.other
    assert second.proc.returncode == 0, (out, second.output.stderr)
    match = re.fullmatch(
        r"recovered: processed=(\d+) last_id=\S+ \(the last run did not stop cleanly\)", out[0]
    )
    assert match, out
    recovered = int(match[1])
    # Every acknowledged tick is there; at most the one in flight is there too.
    assert acknowledged <= recovered <= acknowledged + 1, (acknowledged, out)
    after = [int(m[1]) for m in map(re.compile(r"tick: processed=(\d+)").match, out) if m]
    assert after == list(range(recovered + 1, recovered + 6)), out
    assert out[-1] == f"stopped cleanly: processed={recovered + 5}", out


def _wait_for_ticks(child: Child, count: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while sum(line.startswith("tick:") for line in child.output.other) < count:
        child.next_line(deadline, f"{count} ticks of the daemon")
