"""Review of the performance work: History, the pooled codec, the mirrored
snapshot attribute and the batched group commit, under stress and at the edges.

Every wait is bounded, nothing sleeps to synchronise, threads are joined and
their errors re-raised (`support.Workers`), counts and seeds are fixed.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime as dt
import enum
import pickle
import random
import sqlite3
import sys
import threading
import zoneinfo
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import msgpack
import pytest
from support import Workers

from stateward.actors import (
    ActorCrashed,
    ConfigManager,
    DeadlineExceeded,
    ManualClock,
    Runtime,
    SQLiteStore,
    StateMachine,
    StateManager,
    StoreWriteError,
    Supervisor,
)
from stateward.actors.stores import _group_commit, _records
from stateward.core import (
    FrozenDict,
    FrozenList,
    History,
    ImmutableState,
    MachineBuilder,
    MachineCodec,
    MachineSnapshot,
    MachineSpec,
    TransitionRecord,
    UnencodableValueError,
    _codec,
    apply_creation,
    apply_transition,
    apply_transition_async,
    decode,
    encode,
)
from stateward.core._history import CHUNK, EMPTY_HISTORY
from stateward.core._machine import transition_step

WAIT = 20.0
SEED = 20261122
TOGGLE = {"a": ["b"], "b": ["a"]}
T0 = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


class Fixed:
    """A wall clock stopped at one time."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


class Ticks:
    """A wall clock for histories: one second later at each call."""

    def __init__(self, start: dt.datetime = T0) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now


# -- History: every way of building a snapshot gives the tuple it used to -------------------


def toggle_spec(limit: int) -> MachineSpec:
    builder = MachineBuilder("a", TOGGLE)
    builder.history_limit = limit
    return builder.build()


def record(version: int) -> TransitionRecord:
    source, target = ("a", "b") if version % 2 else ("b", "a")
    keys = ("k",) if version % 3 == 0 else ()
    return TransitionRecord(version, source, target, None, T0 + dt.timedelta(days=version), keys)


def model_after(
    history: Sequence[TransitionRecord], new: TransitionRecord, limit: int
) -> tuple[TransitionRecord, ...]:
    """What `_after` computed before History existed (a plain tuple)."""
    if limit > 1:
        return (*tuple(history)[1 - limit :], new)
    return (new,) if limit else ()


def check_same_as_tuple(snap: MachineSnapshot, model: tuple[TransitionRecord, ...]) -> None:
    history = snap.history
    assert type(history) is History
    assert tuple(history) == model and history == model and model == history
    assert len(history) == len(model) and list(history.entries()) == [r.to_tuple() for r in model]
    as_tuple = dataclasses.replace(snap, history=model)
    assert snap == as_tuple and as_tuple == snap
    assert hash(snap) == hash(as_tuple)
    if model:
        assert history[-1] == model[-1] and history[0] == model[0]
        assert history[-len(model)] == model[0]


STARTS = [0, 1, CHUNK - 1, CHUNK, 3 * CHUNK + 5]
LIMITS = [0, 1, 2, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 3]


@pytest.mark.parametrize("kind", ["tuple", "list", "History"])
@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize("limit", LIMITS)
def test_every_path_that_builds_a_snapshot_keeps_the_tuple_it_used_to(
    limit: int, start: int, kind: str
) -> None:
    spec = toggle_spec(limit)
    stored = tuple(record(v) for v in range(1, start + 1))
    given: Sequence[TransitionRecord] = {
        "tuple": stored,
        "list": list(stored),
        "History": History(stored),
    }[kind]
    state = "b" if start % 2 else "a"
    first = MachineSnapshot(state, start, ImmutableState(n=0), given)
    codec = MachineCodec(spec)
    loaded = codec.from_document("m", decode(encode(codec.document(first))))
    # As before, a stored history is taken as stored (even past the limit):
    # the next transition trims it.
    assert type(loaded.history) is History and tuple(loaded.history) == stored

    plain, stepped, awaited, replayed = first, first, first, loaded
    model: tuple[TransitionRecord, ...] = stored
    clock = Ticks()
    for i in range(2 * CHUNK + 5):
        target = "a" if plain.state == "b" else "b"
        payload = {"x": i} if i % 4 == 0 else None
        at = clock()
        fixed = Fixed(at)
        outcome = apply_transition(spec, plain, target, payload=payload, clock=fixed)
        model = model_after(model, outcome.record, limit)
        check_same_as_tuple(outcome.snapshot, model)

        new, entry, _, _ = transition_step(
            spec, stepped, target, None, payload, at, None, lambda a: None
        )
        assert entry == outcome.record.to_tuple()
        check_same_as_tuple(new, model)

        later = asyncio.run(
            apply_transition_async(spec, awaited, target, payload=payload, clock=fixed)
        )
        assert later.record == outcome.record
        check_same_as_tuple(later.snapshot, model)

        delta = decode(encode(codec.delta(plain, outcome.snapshot)))
        replayed = codec.apply(replayed, delta)
        if limit:
            check_same_as_tuple(replayed, model)
        else:
            assert replayed.history == () and replayed == outcome.snapshot

        plain, stepped, awaited = outcome.snapshot, new, later.snapshot
        assert plain == stepped == awaited == replayed
        assert hash(plain) == hash(stepped) == hash(replayed)


def test_a_created_machine_starts_with_the_shared_empty_history() -> None:
    spec = toggle_spec(5)
    created = apply_creation(spec, clock=Ticks()).snapshot
    assert created.history is EMPTY_HISTORY and created.history == ()
    assert created == MachineSnapshot("a", 0, ImmutableState(), ())
    assert hash(created) == hash(MachineSnapshot("a", 0, ImmutableState(), ()))
    assert MachineSnapshot.initial(spec) == created


def test_snapshots_pickle_and_copy_with_their_history_and_stay_equal() -> None:
    spec = toggle_spec(CHUNK + 2)
    snap = MachineSnapshot.initial(spec)
    clock = Ticks()
    for i in range(3 * CHUNK):
        snap = apply_transition(spec, snap, "b" if i % 2 == 0 else "a", clock=clock).snapshot
    as_tuple = dataclasses.replace(snap, history=tuple(snap.history))
    for back in (
        pickle.loads(pickle.dumps(snap)),
        pickle.loads(pickle.dumps(snap, protocol=2)),
        copy.copy(snap),
        copy.deepcopy(snap),
    ):
        assert type(back.history) is History
        assert back == snap == as_tuple and hash(back) == hash(as_tuple)
        # The copy goes on like the original.
        nxt = apply_transition(spec, back, "b", clock=lambda: T0).snapshot
        assert nxt == apply_transition(spec, snap, "b", clock=lambda: T0).snapshot
    # A hand-built snapshot keeps the history it was given, as before.
    assert type(pickle.loads(pickle.dumps(as_tuple)).history) is tuple


def test_a_stored_history_longer_than_the_new_limit_is_trimmed_by_the_next_transition(
    tmp_path: Path,
) -> None:
    path = tmp_path / "h.db"
    with Runtime("long", store=SQLiteStore(path, snapshot_every=7), clock=Ticks()) as runtime:
        machine = StateMachine("a", TOGGLE, name="m", runtime=runtime, history_limit=40)
        for i in range(50):
            machine.transition("b" if i % 2 == 0 else "a")
        assert [r.version for r in machine.history] == list(range(11, 51))
    with Runtime("short", store=SQLiteStore(path, snapshot_every=7), clock=Ticks()) as runtime:
        machine = StateMachine("a", TOGGLE, name="m", runtime=runtime, history_limit=3)
        assert machine.recovered and machine.version == 50
        kept = [r.version for r in machine.history]
        assert kept == list(range(51 - len(kept), 51))  # the newest ones, in order
        machine.transition("b")
        assert [r.version for r in machine.history] == [49, 50, 51]
        assert type(machine.snapshot.history) is History


def test_readers_never_see_a_history_that_does_not_match_its_snapshot() -> None:
    limit = CHUNK + 3
    writes = 300
    with Runtime("readers", default_timeout=WAIT) as runtime:
        machine = StateMachine("a", TOGGLE, runtime=runtime, history_limit=limit)
        done = threading.Event()
        reads = [0] * 4

        def read(slot: int) -> None:
            last = 0
            for _ in range(1_000_000):  # bounded: the writer ends long before
                if done.is_set():
                    break
                snap = machine.snapshot
                v = snap.version
                assert v >= last, f"the version went back from {last} to {v}"
                last = v
                assert snap.state == ("b" if v % 2 else "a")
                versions = [r.version for r in snap.history]
                assert versions == list(range(max(1, v - limit + 1), v + 1))
                reads[slot] += 1
            assert done.is_set(), "the writer never finished"

        def write() -> None:
            try:
                for i in range(writes):
                    made = machine.transition("b" if i % 2 == 0 else "a", {"i": i})
                    assert machine.snapshot.version >= made.version  # read your writes
            finally:
                done.set()

        workers = Workers()
        for slot in range(len(reads)):
            workers.start(read, slot, name=f"reader-{slot}")
        workers.start(write, name="writer")
        workers.join(WAIT * 3)
        assert machine.version == writes and all(reads)


# -- the codec: the packer pool, shared by threads ------------------------------------------


class Colour(str, enum.Enum):
    RED = "red"


PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def sample_values() -> list[Any]:
    at = dt.datetime(2026, 10, 25, 2, 30, tzinfo=PARIS, fold=1)
    return [
        {"a": (1, [2, (3, 4)]), "b": {"c": frozenset({1, 2})}},
        ImmutableState(n=2**70, l=[1, (2, 3)], d={"x": {"y": [at]}}, s={4, 5}, t=T0, b=b"\x00\xff"),
        (T0, at, dt.datetime(2026, 1, 1), T0.astimezone(dt.timezone(dt.timedelta(hours=-3)))),
        [ImmutableState(i=i, sub=ImmutableState(j=(i, str(i)))) for i in range(20)],
        FrozenList([FrozenDict({"k": (1, 2)}), -(2**63) - 1, 2**64]),
        ("record", "machine", 7, 1, ((7, "a", "b", None, T0, ("k",)), {"n": 1}, ["gone"])),
        {"enum": Colour.RED, "big": -(2**80), "nested": [[[[(1,)]]]]},
        "x" * 5000,
    ]


#: Values that fail deep inside, after the outer packer wrote part of its output.
FAILING = [
    ("ok", [1, 2, (3, object())]),
    {"a": ImmutableState(n=1), "b": [(1, {"c": {5}})], "z": [1, {"k": object()}]},
]


class TrackingPacker:
    """Wraps a real msgpack Packer: fails the test if a packer is used by two
    packs at once (shared between threads, or reentered), or used again after
    a pack that raised (it may hold part of that value)."""

    real = msgpack.Packer
    made: ClassVar[list[TrackingPacker]] = []
    faults: ClassVar[list[str]] = []

    def __init__(self, **options: Any) -> None:
        self._packer = self.real(**options)
        self.failed = False
        self.busy = False
        TrackingPacker.made.append(self)

    def pack(self, value: Any) -> bytes:
        if self.failed:
            TrackingPacker.faults.append("a packer whose pack() raised was used again")
        if self.busy:
            TrackingPacker.faults.append("a packer was used by two packs at once")
        self.busy = True
        try:
            packed: bytes = self._packer.pack(value)
        except BaseException:
            self.failed = True
            raise
        finally:
            self.busy = False
        return packed


@pytest.fixture
def tracked_packers(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[TrackingPacker]]:
    monkeypatch.setattr(_codec, "_packers", [])  # so every packer in use is tracked
    monkeypatch.setattr(msgpack, "Packer", TrackingPacker)
    TrackingPacker.made, TrackingPacker.faults = [], []
    yield TrackingPacker
    assert TrackingPacker.faults == []


@pytest.fixture
def tiny_switch_interval() -> Iterator[None]:
    """Switch threads as often as the interpreter can: more interleavings."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def test_threads_encoding_at_once_get_exactly_the_single_threaded_bytes(
    tracked_packers: type[TrackingPacker], tiny_switch_interval: None
) -> None:
    values = sample_values()
    expected = [(encode(v), _codec.encode_checked(v)) for v in values]
    for plain, checked in expected:
        assert plain == checked
    errors = {}
    for i, bad in enumerate(FAILING):
        with pytest.raises(UnencodableValueError) as caught:
            encode(bad)
        errors[i] = str(caught.value)
    threads, rounds = 8, 150
    barrier = threading.Barrier(threads)

    def run(seed: int) -> None:
        rng = random.Random(seed)
        barrier.wait(WAIT)
        for _ in range(rounds):
            if rng.random() < 0.2:
                i = rng.randrange(len(FAILING))
                fn = encode if rng.random() < 0.5 else _codec.encode_checked
                with pytest.raises(UnencodableValueError) as caught:
                    fn(FAILING[i])
                assert str(caught.value) == errors[i]
            else:
                i = rng.randrange(len(values))
                plain, checked = expected[i]
                assert encode(values[i]) == plain
                assert _codec.encode_checked(values[i]) == checked

    workers = Workers()
    for n in range(threads):
        workers.start(run, SEED + n, name=f"encoder-{n}")
    workers.join(WAIT * 3)
    assert tracked_packers.faults == []
    assert any(p.failed for p in tracked_packers.made)  # failures did happen midway
    assert all(not p.failed for p in _codec._packers)  # and none went back to the pool
    assert len(_codec._packers) <= _codec._POOL_SIZE + threads
    for value, (plain, _) in zip(values, expected, strict=True):
        assert encode(value) == plain and decode(plain) == value


def test_a_value_that_fails_midway_leaves_no_trace_in_later_payloads(
    tracked_packers: type[TrackingPacker],
) -> None:
    values = sample_values()
    expected = [encode(v) for v in values]
    for _ in range(5):
        for bad in FAILING:
            for fn in (encode, _codec.encode_checked):
                with pytest.raises(UnencodableValueError):
                    fn(bad)
            assert [encode(v) for v in values] == expected
    assert all(not p.failed for p in _codec._packers)


# -- encode_checked: the stores' records, byte for byte what encode makes ------------------


class Odd(dt.tzinfo):
    """A tzinfo the codec cannot store."""

    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(hours=1)

    def dst(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)


class SubDatetime(dt.datetime):
    pass


class Level(enum.IntEnum):
    HIGH = 3


RECORD_PARTS = [
    "plain",
    Colour.RED,
    "é-ü",
    "\ud800",  # a lone surrogate: UTF-8 cannot hold it
    Level.HIGH,
    True,
    2**64,
    -(2**63) - 1,
    T0,
    dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(0), "UTC")),
    dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(0), "Z")),
    dt.datetime(2026, 1, 1, tzinfo=zoneinfo.ZoneInfo("UTC")),
    dt.datetime(2026, 10, 25, 2, 30, tzinfo=PARIS, fold=1),
    dt.datetime(2026, 1, 1),
    dt.datetime(2026, 1, 1, tzinfo=Odd()),
    SubDatetime(2026, 1, 1, tzinfo=dt.UTC),
    ImmutableState(a=1),
    FrozenDict({"a": (1, 2)}),
]


def outcome(fn: Callable[[Any], bytes], value: Any) -> tuple[str, Any]:
    """What ``fn(value)`` gives: its bytes, or the type and message of its error."""
    try:
        return ("bytes", fn(value))
    except Exception as exc:
        return (type(exc).__qualname__, str(exc))


@pytest.mark.parametrize("part", RECORD_PARTS, ids=repr)
def test_encode_checked_accepts_and_refuses_what_encode_does(part: Any) -> None:
    for value in (
        ("m", "machine", 1, 1, ((1, "a", "b", None, part, ()), {}, [])),
        (part, "config", 2, 1, (2, ImmutableState(), ImmutableState(), ImmutableState(), T0)),
        ("c", "manager", 3, 1, (3, {"k": part}, ["gone"])),
    ):
        assert outcome(_codec.encode_checked, value) == outcome(encode, value)


@pytest.mark.parametrize("durability", ["strict", "batched", "snapshot"])
def test_every_record_a_store_writes_is_what_encode_makes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durability: str
) -> None:
    real = _records.encode_checked
    written: list[Any] = []
    mismatches: list[str] = []

    def spy(value: Any) -> bytes:
        written.append(value)
        try:
            got = real(value)
        except Exception as exc:
            try:
                encode(value)
            except Exception as refused:
                if (type(refused), str(refused)) != (type(exc), str(exc)):
                    mismatches.append(f"refused differently: {exc!r} / {refused!r}")
            else:
                mismatches.append(f"encode_checked refused what encode takes: {value!r}")
            raise
        try:
            expected = encode(value)
        except Exception as refused:
            mismatches.append(f"encode_checked took what encode refuses ({refused}): {value!r}")
        else:
            if got != expected:
                mismatches.append(f"different bytes for {value!r}")
        return got

    monkeypatch.setattr(_records, "encode_checked", spy)

    class S(str, enum.Enum):
        A = "a"
        B = "b"

    spec = MachineSpec(S.A, {S.A: [S.B], S.B: [S.A]}, events={"go": (S.A, S.B)})
    new_york = zoneinfo.ZoneInfo("America/New_York")
    clocks: list[Callable[[], dt.datetime]] = [
        Ticks(),
        Ticks(dt.datetime(2026, 11, 1, 1, 0, tzinfo=new_york, fold=1)),
        Ticks(T0.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30), "IST"))),
        Ticks(dt.datetime(2026, 1, 1)),
    ]
    path = tmp_path / f"{durability}.db"
    finals: dict[str, Any] = {}
    for n, clock in enumerate(clocks):
        store = SQLiteStore(path, durability=durability, snapshot_every=3)
        with Runtime(f"r{n}", store=store, clock=clock, default_timeout=WAIT) as runtime:
            machine = StateMachine(spec, name=f"m{n}", runtime=runtime, history_limit=4)
            manager = StateManager({"n": 0, "gone": 1}, name=f"s{n}", runtime=runtime)
            config = ConfigManager({"a": 1, "b": {"c": [1, 2]}}, name=f"c{n}", runtime=runtime)
            stamp = clock
            for i in range(7):
                target = S.B if machine.current_state == S.A else S.A
                machine.transition(target, {"i": i, "big": 2**66})
                manager.modify(
                    lambda s, i=i, stamp=stamp: s.update(
                        n=s.n + 1, at=stamp(), big=-(2**70), tags={i, "t"}
                    )
                )
                config.update_config({"a": i, "when": clock(), "t": (i, [i])}, {"who": "me"})
            manager.modify(lambda s: s.without("gone"))
            config.rollback(0, {"why": "test"})
            finals[f"m{n}"] = machine.snapshot
            finals[f"s{n}"] = manager.snapshot
            finals[f"c{n}"] = config.get_history()
    assert mismatches == []
    assert len(written) > 20
    with Runtime("back", store=SQLiteStore(path, durability=durability)) as runtime:
        for n in range(len(clocks)):
            machine = StateMachine(spec, name=f"m{n}", runtime=runtime, history_limit=4)
            assert machine.snapshot == finals[f"m{n}"]
            manager = StateManager({}, name=f"s{n}", runtime=runtime)
            assert manager.snapshot == finals[f"s{n}"]
            config = ConfigManager({}, name=f"c{n}", runtime=runtime)
            assert config.get_history() == finals[f"c{n}"]
            assert "snapshot" not in vars(config)


# -- handles: the mirrored snapshot attribute -----------------------------------------------


def test_a_copied_handle_reads_what_the_actor_commits() -> None:
    with Runtime("copies", default_timeout=WAIT) as runtime:
        machine = StateMachine("a", TOGGLE, runtime=runtime)
        manager = StateManager({"n": 0}, runtime=runtime)
        config = ConfigManager({"x": 0}, runtime=runtime)
        machine_copy, manager_copy, config_copy = map(copy.copy, (machine, manager, config))
        machine.transition("b")
        manager.update_state({"n": 1})
        config.update_config({"x": 1})
        assert machine_copy.current_state == "b" and machine_copy.version == 1
        assert machine_copy.snapshot is machine.snapshot is machine._cell.snapshot
        assert manager_copy.get_state().n == 1 and manager_copy.version == 1
        assert config_copy.get_version() == 1 and not hasattr(config_copy, "snapshot")
        machine_copy.transition("a")
        assert machine.current_state == "a" and machine.snapshot is machine_copy.snapshot


class Counter(StateManager):
    """A user's subclass: attributes set before and after the base's __init__."""

    def __init__(self, runtime: Runtime) -> None:
        self.step = 2
        super().__init__({"n": 0}, runtime=runtime)
        self.label = "counter"

    def bump(self) -> int:
        result: int = self.modify(lambda s: s.update(n=s.n + self.step)).n
        return result


def test_a_subclassed_handle_is_mirrored_and_read_only_too() -> None:
    with Runtime("sub", default_timeout=WAIT) as runtime:
        counter = Counter(runtime)
        assert counter.bump() == 2 and counter.snapshot.state.n == 2
        assert counter.snapshot is counter._cell.snapshot
        with pytest.raises(AttributeError, match="read-only"):
            counter.snapshot = counter.snapshot  # type: ignore[misc]
        with pytest.raises(AttributeError, match="cannot be deleted"):
            del counter.snapshot
        counter.label = "renamed"  # other attributes are the subclass's own
        assert counter.label == "renamed" and counter.bump() == 4


def test_a_fenced_handler_is_never_seen_through_the_handle(tmp_path: Path) -> None:
    clock = ManualClock()
    store = SQLiteStore(tmp_path / "f.db")
    with Runtime("fenced", store=store, timer=clock, default_timeout=WAIT) as runtime:
        sup = Supervisor("s", runtime=runtime, max_restarts=5)
        manager = StateManager({"n": 0}, name="n", runtime=runtime, supervisor=sup, deadline=2.0)
        manager.update_state({"n": 1})
        entered, release = threading.Event(), threading.Event()

        def hang(state: ImmutableState) -> ImmutableState:
            entered.set()
            assert release.wait(WAIT)
            return state.update(n=999)

        hung = manager.request_modify(hang)
        assert entered.wait(WAIT)
        hung_thread = manager._cell.thread
        clock.advance(2.5)  # the watchdog fences the hung incarnation
        with pytest.raises(ActorCrashed) as caught:
            hung.result(timeout=WAIT)
        assert isinstance(caught.value.cause, DeadlineExceeded)
        assert manager.update_state({"n": 2}, timeout=WAIT).n == 2  # the next incarnation
        release.set()
        assert hung_thread is not None
        hung_thread.join(WAIT)
        assert not hung_thread.is_alive()
        assert manager.snapshot is manager._cell.snapshot
        assert manager.get_state().n == 2 and manager.version == 2
        assert manager.modify(lambda s: s.update(n=s.n + 1), timeout=WAIT).n == 3
        assert manager.snapshot is manager._cell.snapshot


# -- group commit ---------------------------------------------------------------------------


class Gate:
    """Wraps a store's `_write`: records each write's entries, and holds the
    writes numbered in ``hold`` (1 is the first) at their start until let go."""

    def __init__(self, store: SQLiteStore, hold: Sequence[int]) -> None:
        self.batches: list[list[str]] = []
        self.started = {n: threading.Event() for n in hold}
        self.go = {n: threading.Event() for n in hold}
        real = store._write
        lock = threading.Lock()

        def write(items: list[Any]) -> None:
            with lock:
                self.batches.append([i.name for i in items])
                number = len(self.batches)
            if number in self.started:
                self.started[number].set()
                assert self.go[number].wait(WAIT), f"write {number} was never let go"
            real(items)

        store._write = write  # type: ignore[method-assign]

    def wait_started(self, number: int) -> None:
        assert self.started[number].wait(WAIT), f"write {number} never started"


class Queued(list):  # type: ignore[type-arg]
    """Stands in for the store's pending list: tells when ``n`` entries are in."""

    def __init__(self) -> None:
        super().__init__()
        self.counts = [threading.Event() for _ in range(16)]

    def append(self, item: Any) -> None:
        super().append(item)
        self.counts[len(self)].set()

    def wait_for(self, n: int) -> None:
        assert self.counts[n].wait(WAIT), f"only {len(self)} entries queued, expected {n}"


def queue_behind(store: SQLiteStore) -> Queued:
    """Call once the leader has taken its batch: later entries queue here."""
    queued = Queued()
    with store._cond:
        assert store._pending == []
        store._pending = queued
    return queued


class InterruptedWake:
    """A committer's wake lock whose blocking wait ends in KeyboardInterrupt,
    as `Lock.acquire` does in the main thread on Ctrl-C (a caller's commit
    runs there when the actor is idle: inline calls).

    ``queued``: raises when the test sets ``interrupt``, never woken.
    ``woken``: raises just as it is woken, the wake-up still unconsumed (the
    interrupt came first).
    """

    def __init__(self, when: str) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self.when = when
        self.waiting = threading.Event()
        self.interrupt = threading.Event()

    def acquire(self, blocking: bool = True) -> bool:
        if not blocking:
            return self._lock.acquire(False)
        self.waiting.set()
        if self.when == "woken":
            assert self._lock.acquire(timeout=WAIT), "never woken"
            self._lock.release()
        else:
            assert self.interrupt.wait(WAIT), "the test never interrupted the wait"
        raise KeyboardInterrupt

    def release(self) -> None:
        self._lock.release()  # RuntimeError if released twice


def entry(name: str, wake: InterruptedWake | None = None) -> Any:
    item = _group_commit.Pending(name, 1, b"payload-" + name.encode(), None)
    if wake is not None:
        item.wake = wake
    return item


def interrupted(store: SQLiteStore, item: Any) -> None:
    with pytest.raises(KeyboardInterrupt):
        store._write_batched(item)


def journal(store: SQLiteStore) -> list[str]:
    db = sqlite3.connect(store.path)
    try:
        return sorted(row[0] for row in db.execute("SELECT name FROM journal"))
    finally:
        db.close()


@pytest.fixture
def batched(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "g.db", durability="batched", snapshot_every=10**6)
    yield store
    store.close()


def test_a_committer_interrupted_while_queued_withdraws_and_the_lead_is_not_lost(
    batched: SQLiteStore,
) -> None:
    store = batched
    gate = Gate(store, hold=[1])
    leader, others = Workers(), Workers()
    leader.start(store._write_batched, entry("L"), name="L")
    gate.wait_started(1)
    queued = queue_behind(store)
    wake = InterruptedWake("queued")
    others.start(interrupted, store, entry("B", wake), name="B")
    queued.wait_for(1)
    assert wake.waiting.wait(WAIT)
    wake.interrupt.set()
    others.join(WAIT)
    gate.go[1].set()
    leader.join(WAIT)
    # Without the withdrawal the lead went to B, who is gone: C would wait forever.
    others.start(store._write_batched, entry("C"), name="C")
    others.join(WAIT)
    assert gate.batches == [["L"], ["C"]]
    assert journal(store) == ["C", "L"]  # B's entry was taken back, never written
    assert list(store._pending) == [] and store._leading is False


def test_a_committer_interrupted_as_it_is_handed_the_lead_passes_it_on(
    batched: SQLiteStore,
) -> None:
    store = batched
    gate = Gate(store, hold=[1])
    leader, others = Workers(), Workers()
    leader.start(store._write_batched, entry("L"), name="L")
    gate.wait_started(1)
    queued = queue_behind(store)
    wake = InterruptedWake("woken")
    others.start(interrupted, store, entry("B", wake), name="B")
    queued.wait_for(1)
    others.start(store._write_batched, entry("C"), name="C")
    queued.wait_for(2)
    gate.go[1].set()  # L hands the lead to B, the oldest queued; B passes it to C
    leader.join(WAIT)
    others.join(WAIT)
    assert gate.batches == [["L"], ["C"]]
    assert journal(store) == ["C", "L"]
    assert list(store._pending) == [] and store._leading is False


def test_a_committer_interrupted_while_its_entry_is_written_leaves_it_to_the_write(
    batched: SQLiteStore,
) -> None:
    store = batched
    gate = Gate(store, hold=[1, 2])
    leader, behind, others = Workers(), Workers(), Workers()
    leader.start(store._write_batched, entry("L"), name="L")
    gate.wait_started(1)
    queued = queue_behind(store)
    behind.start(store._write_batched, entry("C"), name="C")
    queued.wait_for(1)
    wake = InterruptedWake("queued")
    others.start(interrupted, store, entry("B", wake), name="B")
    queued.wait_for(2)
    gate.go[1].set()  # C leads the next write, which takes B's entry too
    leader.join(WAIT)
    gate.wait_started(2)
    assert wake.waiting.wait(WAIT)
    wake.interrupt.set()
    others.join(WAIT)
    gate.go[2].set()
    behind.join(WAIT)  # C wakes B's committer, gone: no double release, no error
    others.start(store._write_batched, entry("D"), name="D")
    others.join(WAIT)
    assert gate.batches == [["L"], ["C", "B"], ["D"]]
    assert journal(store) == ["B", "C", "D", "L"]
    assert list(store._pending) == [] and store._leading is False


def test_closing_the_store_while_committers_wait_fails_each_of_them_once(
    batched: SQLiteStore,
) -> None:
    store = batched
    gate = Gate(store, hold=[1])
    outcomes: dict[str, str] = {}
    lock = threading.Lock()

    def commit(name: str) -> None:
        try:
            store._write_batched(entry(name))
        except StoreWriteError as exc:
            with lock:
                outcomes[name] = "closed" if "is closed" in str(exc) else repr(exc)
        else:
            with lock:
                outcomes[name] = "written"

    workers = Workers()
    workers.start(commit, "L", name="L")
    gate.wait_started(1)
    queued = queue_behind(store)
    names = [f"C{i}" for i in range(6)]
    for i, name in enumerate(names):
        workers.start(commit, name, name=name)
        queued.wait_for(i + 1)
    store.close()
    gate.go[1].set()
    workers.join(WAIT)
    assert outcomes == dict.fromkeys(["L", *names], "closed")
    assert gate.batches == [["L"], names]
    assert list(store._pending) == [] and store._leading is False
    with pytest.raises(StoreWriteError, match="is closed"):
        store._write_batched(entry("late"))


def test_seeded_direct_committers_each_return_once_and_lose_nothing(
    batched: SQLiteStore, tiny_switch_interval: None
) -> None:
    store = batched
    rng = random.Random(SEED)
    plan = [rng.randrange(10, 30) for _ in range(12)]
    barrier = threading.Barrier(len(plan))
    returned: list[str] = []
    lock = threading.Lock()

    def run(n: int, times: int) -> None:
        barrier.wait(WAIT)
        for v in range(1, times + 1):
            store._write_batched(_group_commit.Pending(f"w{n}", v, b"p", None))
            with lock:
                returned.append(f"w{n}:{v}")

    workers = Workers()
    for n, times in enumerate(plan):
        workers.start(run, n, times, name=f"w{n}")
    workers.join(WAIT * 3)
    expected = sorted(f"w{n}:{v}" for n, times in enumerate(plan) for v in range(1, times + 1))
    assert sorted(returned) == expected
    db = sqlite3.connect(store.path)
    try:
        rows = sorted(f"{n}:{v}" for n, v in db.execute("SELECT name, version FROM journal"))
    finally:
        db.close()
    assert rows == expected
    assert list(store._pending) == [] and store._leading is False
