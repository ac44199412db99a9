"""A child process that commits as fast as it can until the parent kills it with SIGKILL.

Run as ``python tests/stores/crash_child.py PATH MODE SEED [LAYOUT]``. It opens
``SQLiteStore(PATH, durability=MODE)`` (or a `PostgresStore` for a ``PATH``
named ``pg:SCHEMA``: `open_store`), creates (or recovers: the names are the
same on every run) its actors, prints one ``READY`` line with the versions it
recovered, then commits forever and prints one line after each acknowledged
commit. ``LAYOUT`` is ``few`` (the default), ``pipelined`` or ``many``.

``few``: a counter or four, and a door; ``ACK <actor> <version>`` per commit.

- ``strict`` and ``snapshot``: one thread, alternating ``counter.modify`` and
  ``door.transition``, so at most one request is in flight in the process;
- ``batched``: one thread per actor (four counters and the door), so the
  store's writer thread really gathers commits from several actors in one batch;
  each actor still has at most one request in flight.

``pipelined``: the actors of ``few``, driven by one thread that sends one
request to each of them without waiting, then waits for the replies, round
after round: the pool's workers run several actors' turns in a row and write
their commits together (group commit across actors); each actor still has at
most one request in flight.

``many``: `MANY_ACTORS` actors of the three kinds (state managers, machines,
configs), driven by `MANY_THREADS` threads that each pick their next actor
from a seeded plan (`planned`), so several threads often wait on one actor
and the store writes snapshots and compacts all the time (`MANY_SNAPSHOT_EVERY`).
Update ``SEQ`` of thread ``T`` records ``[count, SEQ]`` under the key ``tT`` of
its actor, ``count`` being how many of ``T``'s updates that actor has taken.
It prints ``OPENING <actor>`` before it creates or recovers each actor, and
after each acknowledged update the thread prints ``UPD T SEQ <actor> <version>``.
The test replays the plan, so it knows what was sent, and checks that
acknowledged ⊆ recovered ⊆ sent, update by update (`many_model`). A sixth
argument ``FIRST`` numbers the threads from ``FIRST`` on (default 0), so that
successive runs on one store have threads of their own.

Every line is written with one ``write`` call on the pipe (atomic up to
``PIPE_BUF`` bytes) as soon as its commit is acknowledged; the test still
treats a last line without its newline as torn, never as an acknowledgement.

Its runtime's host is the default pool, or what ``STATEWARD_CHILD_WORKERS``
says (``Runtime(workers=...)``: 0 for a thread per actor); the tests run
both (``child_host`` in tests/stores/conftest.py).

It never exits on its own while the parent lives. Its stdin is a pipe from the
parent: when that reaches end of file (the parent died without killing it),
the child exits, so an interrupted test run leaves no orphan behind.

The test (``test_crash.py``) imports this module for `open_actors` and the
model checks, so the definitions it recovers with are the very same.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import count as numbers
from itertools import pairwise
from typing import Any

from stateward.actors import (
    ConfigManager,
    PostgresStore,
    Runtime,
    SQLiteStore,
    StateMachine,
    StateManager,
)
from stateward.core import MachineBuilder, MachineSnapshot

#: Journal entries between snapshots: small, so kills land around snapshot writes too.
SNAPSHOT_EVERY = 7
#: Seconds between snapshot writes in snapshot mode.
SNAPSHOT_INTERVAL = 0.05
#: The counters of each mode (the door is always there too).
COUNTERS = {
    "strict": ["counter"],
    "snapshot": ["counter"],
    "batched": [f"counter-{i}" for i in range(4)],
}
DOOR = "door"
#: How long one commit may take before the child gives up (it then exits with an error).
COMMIT_TIMEOUT = 30.0


def door_spec() -> Any:
    """The door: closed <-> open; its enter hook counts the toggles in the machine's data."""
    builder = MachineBuilder("closed", {"closed": ["open"], "open": ["closed"]})

    @builder.on_enter
    def count_toggle(ctx: Any) -> dict[str, int]:
        return {"toggles": ctx.data.toggles + 1}

    return builder.build()


def open_store(path: str, mode: str, layout: str = "few") -> SQLiteStore | PostgresStore:
    """The store at ``path``: a SQLite file, or, for a path whose name is
    ``pg:SCHEMA``, a `PostgresStore` on the schema ``SCHEMA`` of the server
    of ``STATEWARD_PG_URL``."""
    if layout == "many":
        options: dict[str, Any] = {
            "snapshot_every": MANY_SNAPSHOT_EVERY,
            "keep_snapshots": MANY_KEEP_SNAPSHOTS,
        }
    else:
        # In snapshot mode snapshot_every would write a snapshot early: make the
        # interval alone decide, as the loss bound under test is the interval's.
        options = {"snapshot_every": SNAPSHOT_EVERY if mode != "snapshot" else 10**9}
    name = os.path.basename(path)
    if name.startswith("pg:"):
        url = os.environ["STATEWARD_PG_URL"]
        return PostgresStore(url, durability=mode, schema=name[3:], **options)
    if layout != "many":
        options["snapshot_interval"] = SNAPSHOT_INTERVAL
    return SQLiteStore(path, durability=mode, **options)


def open_actors(runtime: Runtime, mode: str) -> tuple[dict[str, StateManager], StateMachine]:
    """Create or recover the counters and the door of ``mode`` in ``runtime``."""
    counters = {name: StateManager({"n": 0}, name=name, runtime=runtime) for name in COUNTERS[mode]}
    door = StateMachine(door_spec(), name=DOOR, runtime=runtime, data={"toggles": 0})
    return counters, door


def door_state(version: int) -> str:
    """The door's state after ``version`` toggles (it starts closed)."""
    return "open" if version % 2 else "closed"


def model_problems(counters: Mapping[str, StateManager], door: StateMachine) -> list[str]:
    """Where the recovered values differ from the model of what the child does (none: [])."""
    problems = []
    for name, counter in counters.items():
        state, version = counter.get_state(), counter.version
        if state.to_dict() != {"n": version}:
            problems.append(f"{name}: state {state.to_dict()} at version {version}")
    problems += machine_problems(door.snapshot)
    return problems


def machine_problems(snapshot: MachineSnapshot) -> list[str]:
    """How a door snapshot differs from the model: the state, the data and the history."""
    version = snapshot.version
    problems = []
    if snapshot.state != door_state(version):
        problems.append(f"door: state {snapshot.state!r} at version {version}")
    if snapshot.data.to_dict() != {"toggles": version}:
        problems.append(f"door: data {snapshot.data.to_dict()} at version {version}")
    history = snapshot.history
    expected = list(range(max(1, version - len(history) + 1), version + 1))
    if [r.version for r in history] != expected:
        problems.append(f"door: history versions {[r.version for r in history]} at {version}")
    for record in history:
        if (record.from_state, record.to_state) != (
            door_state(record.version - 1),
            door_state(record.version),
        ):
            problems.append(
                f"door: history record {record.version} goes {record.from_state!r} -> "
                f"{record.to_state!r}"
            )
    if version and not history:
        problems.append(f"door: no history at version {version}")
    return problems


# -- the many-actors layout --------------------------------------------------------------

#: Client threads of the many-actors layout.
MANY_THREADS = 8
#: Actors of each kind in the many-actors layout.
MANY_PER_KIND = 20
MANY_KINDS = ("manager", "machine", "config")
MANY_ACTORS = [f"{kind}-{i:02d}" for kind in MANY_KINDS for i in range(MANY_PER_KIND)]
#: A few actors that a quarter of the updates go to, so threads queue on one actor.
MANY_HOT = [f"{kind}-{i:02d}" for kind in MANY_KINDS for i in range(2)]
#: Journal entries between snapshots: every third commit of an actor writes one,
#: and from its sixth on each snapshot compacts the older snapshot and journal away.
MANY_SNAPSHOT_EVERY = 3
MANY_KEEP_SNAPSHOTS = 2
#: History kept by each machine and config: short, so the window slides too.
MANY_HISTORY = 12
#: The states of a switch machine: every move is allowed, itself included, so an
#: update never depends on which state another thread left the machine in.
SWITCH_STATES = ("red", "green", "blue")


def switch_spec() -> Any:
    """A machine whose enter hook records the update's id, like a manager's modify."""
    builder = MachineBuilder(
        SWITCH_STATES[0], {state: list(SWITCH_STATES) for state in SWITCH_STATES}
    )

    @builder.on_enter
    def record_update(ctx: Any) -> dict[str, Any]:
        update = ctx.payload
        return {"n": ctx.data.n + 1, f"t{update.t}": [update.c, update.s]}

    builder.history_limit = MANY_HISTORY
    return builder.build()


def kind_of(name: str) -> str:
    return name.split("-", 1)[0]


def open_many_actors(
    runtime: Runtime, opening: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Create or recover every actor of the many-actors layout in ``runtime``.

    ``opening(name)`` is called before each one.
    """
    spec = switch_spec()
    handles: dict[str, Any] = {}
    for name in MANY_ACTORS:
        if opening is not None:
            opening(name)
        kind = kind_of(name)
        if kind == "manager":
            handles[name] = StateManager({"n": 0}, name=name, runtime=runtime)
        elif kind == "machine":
            handles[name] = StateMachine(spec, name=name, runtime=runtime, data={"n": 0})
        else:
            handles[name] = ConfigManager(
                {}, name=name, runtime=runtime, history_limit=MANY_HISTORY
            )
    return handles


def planned(seed: int, thread: int, seq: int) -> tuple[str, str]:
    """Update ``seq`` of ``thread``: its actor, and the state a machine moves to.

    A pure function of its arguments: the test replays it to know what was sent.
    """
    rng = random.Random(f"{seed}:{thread}:{seq}")
    name = rng.choice(MANY_HOT if rng.random() < 0.25 else MANY_ACTORS)
    return name, rng.choice(SWITCH_STATES)


def apply_update(handle: Any, thread: int, seq: int, count: int, target: str) -> int:
    """Send update ``seq`` of ``thread`` (its ``count``-th to this actor); its version."""
    key = f"t{thread}"
    timeout = COMMIT_TIMEOUT
    if isinstance(handle, StateManager):
        state = handle.modify(
            lambda s: s.update(**{"n": s.n + 1, key: [count, seq]}), timeout=timeout
        )
        version: int = state.n  # n counts the updates: it is the version (checked)
        return version
    if isinstance(handle, StateMachine):
        update = {"t": thread, "s": seq, "c": count}
        return handle.transition(target, update, timeout=timeout).version
    change = handle.update_config({key: [count, seq]}, {"id": f"{thread}:{seq}"}, timeout=timeout)
    return int(change.version)


def _drive_many(out: _Output, seed: int, thread: int, handles: Mapping[str, Any]) -> None:
    """Send ``thread``'s planned updates one after the other, acknowledging each."""
    jitter = random.Random(f"{seed}:{thread}:jitter")
    counts: dict[str, int] = {}
    try:
        for seq in numbers():
            name, target = planned(seed, thread, seq)
            sent = counts.get(name, 0) + 1
            version = apply_update(handles[name], thread, seq, sent, target)
            counts[name] = sent
            out.line(f"UPD {thread} {seq} {name} {version}")
            _jitter(jitter)
    except BaseException as exc:  # tell the parent, then end the process: never hang
        _fail(out, exc)


@dataclass
class ManyModel:
    """What recovered actors of the many-actors layout hold, checked against the model.

    Attributes:
        applied: per actor, per thread: ``(count, seq)`` of the thread's last
            update the actor holds (absent: none).
        versions: per actor, its recovered version.
        history: per actor, ``{version: what that version's history entry
            says was sent}``: ``(thread, seq)`` for configs, the target state
            for machines; only the versions the history still keeps.
        problems: where the recovered values break the model.
    """

    applied: dict[str, dict[int, tuple[int, int]]] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    history: dict[str, dict[int, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def many_model(handles: Mapping[str, Any]) -> ManyModel:
    """Read every actor and check it on its own: versions, counts and histories agree."""
    model = ManyModel()
    for name, handle in handles.items():
        version = handle.version
        model.versions[name] = version
        kind = kind_of(name)
        if kind == "manager":
            values = handle.get_state().to_dict()
        elif kind == "machine":
            values = handle.data.to_dict()
        else:
            values = handle.get_config().to_dict()
        if kind != "config" and values.pop("n", None) != version:
            model.problems.append(f"{name}: n is not its version {version}: {values}")
        applied = {}
        for key, value in values.items():
            thread = int(key[1:]) if key[:1] == "t" and key[1:].isdigit() else -1
            if thread < 0 or not _is_pair(value):
                model.problems.append(f"{name}: unexpected value {key}={value!r}")
                continue
            applied[thread] = (value[0], value[1])
        model.applied[name] = applied
        total = sum(c for c, _ in applied.values())
        if total != version:
            model.problems.append(f"{name}: holds {total} updates at version {version}")
        if kind == "machine":
            model.history[name] = _machine_history(name, handle.snapshot, model.problems)
        elif kind == "config":
            model.history[name] = _config_history(name, handle, model.problems)
    return model


def _is_pair(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(type(v) is int for v in value)
        and value[0] >= 1
        and value[1] >= 0
    )


def _expected_window(version: int, kept: int) -> list[int]:
    return list(range(max(1, version - kept + 1), version + 1))


def _machine_history(name: str, snapshot: MachineSnapshot, problems: list[str]) -> dict[int, Any]:
    """The machine's history must be its last moves, chained, ending in its state."""
    version, history = snapshot.version, list(snapshot.history)
    versions = [r.version for r in history]
    if versions != _expected_window(version, MANY_HISTORY):
        problems.append(f"{name}: history versions {versions} at version {version}")
    for before, after in pairwise(history):
        if after.from_state != before.to_state:
            problems.append(
                f"{name}: history record {after.version} leaves {after.from_state!r}, "
                f"record {before.version} entered {before.to_state!r}"
            )
    if history and history[-1].to_state != snapshot.state:
        problems.append(f"{name}: state {snapshot.state!r}, history ends in {history[-1]}")
    if not history and snapshot.state != SWITCH_STATES[0]:
        problems.append(f"{name}: state {snapshot.state!r} with no history")
    for record in history:
        if record.payload_keys != ("c", "s", "t") or record.event is not None:
            problems.append(f"{name}: history record {record} is not an update's")
    return {r.version: r.to_state for r in history}


def _config_history(name: str, handle: ConfigManager, problems: list[str]) -> dict[int, Any]:
    """The config's history must be its last versions, each the one before plus its change."""
    version, entries = handle.version, handle.get_history()
    versions = [e.version for e in entries]
    if versions != list(range(max(0, version - MANY_HISTORY + 1), version + 1)):
        problems.append(f"{name}: history versions {versions} at version {version}")
    if entries and entries[-1].config != handle.get_config():
        problems.append(f"{name}: config {handle.get_config()} but history ends {entries[-1]}")
    sent: dict[int, Any] = {}
    for before, after in pairwise(entries):
        if after.config.to_dict() != {**before.config.to_dict(), **after.changes.to_dict()}:
            problems.append(f"{name}: version {after.version} is not {before.version} + changes")
    for entry in entries:
        if entry.version == 0:
            continue
        changes, meta = entry.changes.to_dict(), entry.metadata.to_dict()
        ((key, value),) = changes.items() if len(changes) == 1 else ((None, None),)
        if not _is_pair(value) or entry.removed or entry.rollback_of is not None:
            problems.append(f"{name}: history entry {entry} is not an update's")
            continue
        seq = value[1]
        if meta != {"id": f"{key[1:]}:{seq}"}:
            problems.append(f"{name}: version {entry.version} changes {changes}, metadata {meta}")
        sent[entry.version] = (int(key[1:]), seq)
    return sent


class _Output:
    """Whole lines on stdout from several threads, each written at once.

    One ``os.write`` per line, no Python buffer in between: once ``line``
    returns, the line is in the pipe, and a ``kill -9`` cannot take it back.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fd = sys.stdout.fileno()

    def line(self, text: str) -> None:
        data = (text + "\n").encode()
        with self._lock:
            while data:
                data = data[os.write(self._fd, data) :]


def _drive(
    out: _Output,
    rng: random.Random,
    counters: list[StateManager],
    door: StateMachine | None,
) -> None:
    """Commit forever, round robin over ``counters`` and ``door``, acknowledging each."""
    try:
        while True:
            for counter in counters:
                state = counter.modify(lambda s: s.update(n=s.n + 1), timeout=COMMIT_TIMEOUT)
                out.line(f"ACK {counter.name} {state.n}")
                _jitter(rng)
            if door is not None:
                target = "closed" if door.current_state == "open" else "open"
                snapshot = door.transition(target, timeout=COMMIT_TIMEOUT)
                out.line(f"ACK {door.name} {snapshot.version}")
                _jitter(rng)
    except BaseException as exc:  # tell the parent, then end the process: never hang
        _fail(out, exc)


def _fail(out: _Output, exc: BaseException) -> None:
    try:
        out.line(f"ERROR {threading.current_thread().name}: {exc!r}")
    finally:  # even if the parent is gone (a broken pipe)
        os._exit(2)


def _jitter(rng: random.Random) -> None:
    # Not synchronisation: a tiny, seeded pause now and then varies where the kill lands.
    if rng.random() < 0.1:
        time.sleep(rng.random() * 0.002)


def child_workers() -> int | None:
    """``Runtime(workers=...)`` as the test asks (``STATEWARD_CHILD_WORKERS``,
    see tests/stores/conftest.py): 0 for a thread per actor, else a pool."""
    workers = os.environ.get("STATEWARD_CHILD_WORKERS")
    return None if workers is None else int(workers)


def main(argv: list[str]) -> None:
    path, mode, seed = argv[1], argv[2], int(argv[3])
    layout = argv[4] if len(argv) > 4 else "few"
    first_thread = int(argv[5]) if len(argv) > 5 else 0
    out = _Output()
    runtime = Runtime(
        "crash-child",
        store=open_store(path, mode, layout),
        default_timeout=COMMIT_TIMEOUT,
        workers=child_workers(),
    )
    if layout == "many":
        _run_many(out, runtime, seed, first_thread)
    else:
        _run_few(out, runtime, mode, seed, layout)
    # The drivers run until SIGKILL. Waiting here on stdin is not synchronisation:
    # end of file means the parent is gone, and the child must not outlive it.
    sys.stdin.read()
    os._exit(3)


def _run_many(out: _Output, runtime: Runtime, seed: int, first_thread: int) -> None:
    # The test may kill it while it recovers the actors: say how far it got.
    handles = open_many_actors(runtime, lambda name: out.line(f"OPENING {name}"))
    out.line("READY " + " ".join(f"{name}={h.version}" for name, h in handles.items()))
    for thread in range(first_thread, first_thread + MANY_THREADS):
        threading.Thread(
            target=_drive_many,
            args=(out, seed, thread, handles),
            name=f"driver-{thread}",
            daemon=True,
        ).start()


def _drive_pipelined(
    out: _Output, rng: random.Random, counters: list[StateManager], door: StateMachine
) -> None:
    """Commit forever: one request to each actor, then their replies, round
    after round, acknowledging each."""
    try:
        while True:
            sent = [(c.name, c.request_modify(lambda s: s.update(n=s.n + 1))) for c in counters]
            moved = door.request_transition(door_state(door.version + 1))
            for name, reply in sent:  # a counter's value is its version
                out.line(f"ACK {name} {reply.result(COMMIT_TIMEOUT).n}")
            out.line(f"ACK {door.name} {moved.result(COMMIT_TIMEOUT).version}")
            _jitter(rng)
    except BaseException as exc:  # tell the parent, then end the process: never hang
        _fail(out, exc)


def _run_few(out: _Output, runtime: Runtime, mode: str, seed: int, layout: str) -> None:
    counters, door = open_actors(runtime, mode)
    versions = " ".join(f"{h.name}={h.version}" for h in [*counters.values(), door])
    out.line(f"READY {versions}")
    if layout == "pipelined":
        threading.Thread(
            target=_drive_pipelined,
            args=(out, random.Random(seed), list(counters.values()), door),
            name="driver-pipelined",
            daemon=True,
        ).start()
        return
    if mode == "batched":
        plans: list[tuple[list[StateManager], StateMachine | None]] = [
            ([counter], None) for counter in counters.values()
        ]
        plans.append(([], door))
    else:
        plans = [(list(counters.values()), door)]
    for index, (handles, machine) in enumerate(plans):
        threading.Thread(
            target=_drive,
            args=(out, random.Random(seed * 100 + index), handles, machine),
            name=f"driver-{index}",
            daemon=True,
        ).start()


if __name__ == "__main__":
    main(sys.argv)
