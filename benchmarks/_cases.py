"""The benchmark cases: each one builds the systems that the harness measures.

Every case function takes the `Sizes` of the run, the importable `Peers` and a
scratch folder for its files, and returns its `System` list; `CASES` names them,
with the number of rounds each one runs. Peers that are not installed are left
out (the run lists them as missing); stateward is always measured. Building a
case measures nothing: `_harness.run_case` does, round-robin, and
``run.py --against`` measures the same stateward systems under two versions.

The cases of many machines at once (spawn_machines, fanout_transitions,
fairness) are in `_scale`; the asyncio ones in `_async_cases`.

Names that only newer versions of stateward have are imported inside the case
that needs them, so that ``--against`` an older version skips that case alone.
"""

from __future__ import annotations

import collections
import contextlib
import operator
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from _async_cases import asyncio_in_flight, asyncio_one_at_a_time
from _harness import Sample, Stopwatch, System, percentile
from _ray_cases import local_cluster, ray_blocking, ray_pipelined
from _scale import fairness, fanout_transitions, spawn_machines
from _systems import (
    CALL_TIMEOUT,
    JOIN_TIMEOUT,
    TOGGLE,
    A,
    B,
    Counter,
    Peers,
    Sizes,
    ToggleActor,
    check,
    in_threads,
    one_caller,
    pipelined_toggles,
    psm_toggle,
    sample,
    stateward_toggle,
    transitions_toggle,
)
from _timer_cases import pending_timers

from stateward.actors import (
    ActorCrashed,
    MemoryStore,
    PostgresStore,
    Runtime,
    SQLiteStore,
    StateMachine,
    StateManager,
    Store,
    Supervisor,
)
from stateward.core import ImmutableState, InvalidTransition

# -- blocking_transition_1thread -----------------------------------------------------------


def blocking_transition_1thread(sizes: Sizes, peers: Peers, scratch: Path) -> list[System]:
    n = sizes.calls_1thread

    def stateward(inline: bool) -> Callable[[int], Sample]:
        def build(counter: Counter) -> Any:
            runtime = Runtime("bench-1thread", inline_calls=inline)
            machine = stateward_toggle(runtime, counter)
            transition = machine.transition

            def call(i: int) -> Any:
                return transition(B if i % 2 == 0 else A, timeout=CALL_TIMEOUT)

            return call, lambda: machine.current_state, runtime.shutdown

        return one_caller(build, n)

    def transitions(cls: type) -> Callable[[int], Sample]:
        def build(counter: Counter) -> Any:
            model = transitions_toggle(cls, counter)
            go_a, go_b = model.go_a, model.go_b  # type: ignore[attr-defined]

            def call(i: int) -> Any:
                return go_b() if i % 2 == 0 else go_a()

            return call, lambda: model.state, lambda: None

        return one_caller(build, n)

    def psm(sm: ModuleType) -> Callable[[int], Sample]:
        def build(counter: Counter) -> Any:
            machine = psm_toggle(sm, counter)

            def call(i: int) -> Any:
                return machine.go_b() if i % 2 == 0 else machine.go_a()

            return call, lambda: machine.current_state_value, lambda: None

        return one_caller(build, n)

    def build_pykka(counter: Counter) -> Any:
        ref = ToggleActor.start(counter)
        ask = ref.ask
        last: list[Any] = [A]

        def call(_i: int) -> Any:
            last[0] = ask("toggle", timeout=CALL_TIMEOUT)
            return last[0]

        return call, lambda: last[0], lambda: ref.stop(timeout=CALL_TIMEOUT)

    systems = [
        System(
            "stateward",
            stateward(True),
            "StateMachine.transition(), default Runtime (inline_calls=True: a call that "
            "finds the actor idle runs on the caller's thread, in turn)",
        ),
        System(
            "stateward-actor-thread",
            stateward(False),
            "the same with Runtime(inline_calls=False): every call is a hand-off to the "
            "actor thread and back (for comparison with the pykka floor)",
        ),
    ]
    if peers.locking is not None:
        systems.append(
            System(
                "transitions-LockedMachine",
                transitions(peers.locking.LockedMachine),
                "model.go_b() / go_a() under the machine's lock",
            )
        )
    if peers.statemachine is not None:
        systems.append(
            System(
                "python-statemachine",
                psm(peers.statemachine),
                "sm.go_b() / go_a(); the hook is a listener's on_enter_state",
            )
        )
    if peers.transitions is not None:
        systems.append(
            System(
                "transitions-Machine",
                transitions(peers.transitions.Machine),
                "unsafe for threads: the ceiling with no locking at all",
            )
        )
    systems.append(
        System(
            "pykka-ask",
            one_caller(build_pykka, n),
            "raw pykka ThreadingActor ask() round trip whose on_receive toggles a state and "
            "runs the hook: the floor for any actor",
        )
    )
    return systems


# -- blocking_transition_4threads ----------------------------------------------------------


def blocking_transition_4threads(sizes: Sizes, peers: Peers, scratch: Path) -> list[System]:
    """Four callers, each reading the state and asking for the other one.

    Two callers can read the same state and ask for the same move; the loser
    is refused (InvalidTransition, MachineError, TransitionNotAllowed) and
    counted as rejected. ops/s counts the transitions that committed.
    """
    threads, per_thread = 4, sizes.calls_per_thread_4
    attempts = threads * per_thread

    def measure_with(
        build: Callable[[Counter], tuple[Any, Callable[[], str]]],
        attempt: Callable[[Any], bool],
        verify: Callable[[Any, Counter, int, list[str]], int],
    ) -> Callable[[int], Sample]:
        def measure(_round: int) -> Sample:
            counter = Counter()
            machine, close = build(counter)
            try:

                def work(_index: int) -> tuple[int, int, list[float]]:
                    ok = rejected = 0
                    latencies = []
                    clock = time.perf_counter
                    for _ in range(per_thread):
                        started = clock()
                        if attempt(machine):
                            ok += 1
                        else:
                            rejected += 1
                        latencies.append(clock() - started)
                    return ok, rejected, latencies

                timed, results, problems = in_threads(threads, work)
                done = [r for r in results if r is not None]
                returned = sum(r[0] for r in done)
                rejected = sum(r[1] for r in done)
                latencies = [x for r in done for x in r[2]]
                # What the system itself shows happened (stateward: its version;
                # peers: their enter hook's count), against what the callers saw.
                committed = verify(machine, counter, returned, problems)
            finally:
                close()
            median = statistics.median(latencies) * 1e6 if latencies else None
            return sample(
                committed,
                timed,
                median,
                problems,
                committed=committed,
                returned=returned,
                rejected=rejected,
            )

        return measure

    def detail(counts: dict[str, int], _values: dict[str, float]) -> str:
        total = counts.get("returned", 0) + counts.get("rejected", 0)
        return (
            f"over all rounds: {total:,} calls, {counts.get('returned', 0):,} returned, "
            f"{counts.get('rejected', 0):,} refused (lost a race), "
            f"{counts.get('committed', 0):,} transitions"
        )

    # stateward ----------------------------------------------------------------
    def sw_build(limit: int) -> Callable[[Counter], Any]:
        def build(counter: Counter) -> Any:
            runtime = Runtime("bench-4threads")
            machine = stateward_toggle(runtime, counter, history_limit=limit)
            return machine, runtime.shutdown

        return build

    def sw_attempt(machine: StateMachine) -> bool:
        target = B if machine.current_state == A else A
        try:
            machine.transition(target, timeout=CALL_TIMEOUT)
        except InvalidTransition:
            return False
        return True

    def sw_verify(machine: StateMachine, counter: Counter, returned: int, bad: list[str]) -> int:
        committed = machine.version
        check(bad, committed == returned, f"version {committed} != {returned} calls returned")
        history = machine.history
        versions = [r.version for r in history]
        first = max(1, committed - machine.spec.history_limit + 1)
        check(
            bad,
            versions == list(range(first, committed + 1)),
            "the kept history's versions are not contiguous up to the version",
        )
        check(
            bad,
            all(r.from_state != r.to_state for r in history),
            "the history has a transition to the same state",
        )
        check(bad, counter.n == committed, f"hook ran {counter.n} times, {committed} committed")
        return committed

    systems = [
        System(
            "stateward",
            measure_with(sw_build(attempts), sw_attempt, sw_verify),
            f"history_limit={attempts:,} (the whole history); checked: version == calls that "
            "returned, history versions contiguous from 1 to the version, hook count",
            detail,
        ),
        System(
            "stateward-history-100",
            measure_with(sw_build(100), sw_attempt, sw_verify),
            "the same with the default history_limit=100, for comparison; checked: version "
            "== calls that returned, the last 100 history versions contiguous, hook count",
            detail,
        ),
    ]

    # peers: the enter hook counts the transitions, under each one's own locking
    def peer_verify(state_of: Callable[[Any], str]) -> Callable[..., None]:
        def verify(machine: Any, counter: Counter, returned: int, bad: list[str]) -> int:
            committed = counter.n
            check(
                bad,
                committed == returned,
                "the enter hook's count differs from the calls that returned without error",
            )
            expected = A if committed % 2 == 0 else B
            check(bad, state_of(machine) == expected, "final state disagrees with the count")
            return committed

        return verify

    if peers.locking is not None:
        locking = peers.locking
        machine_error = peers.transitions.MachineError  # type: ignore[union-attr]

        def tr_attempt(model: Any) -> bool:
            try:
                if model.state == A:
                    model.go_b()
                else:
                    model.go_a()
            except machine_error:
                return False
            return True

        systems.append(
            System(
                "transitions-LockedMachine",
                measure_with(
                    lambda c: (transitions_toggle(locking.LockedMachine, c), lambda: None),
                    tr_attempt,
                    peer_verify(lambda m: m.state),
                ),
                "checked: enter-hook count (run under the machine's lock) == calls that "
                "returned without error",
                detail,
            )
        )
    if peers.statemachine is not None:
        sm = peers.statemachine
        not_allowed = sm.exceptions.TransitionNotAllowed

        def psm_attempt(machine: Any) -> bool:
            try:
                if machine.current_state_value == A:
                    machine.go_b()
                else:
                    machine.go_a()
            except not_allowed:
                return False
            return True

        systems.append(
            System(
                "python-statemachine",
                measure_with(
                    lambda c: (psm_toggle(sm, c), lambda: None),
                    psm_attempt,
                    peer_verify(lambda m: m.current_state_value),
                ),
                "not thread-safe (see above), reported as measured; checked: enter-hook "
                "count == calls that returned without error",
                detail,
            )
        )
    return systems


# -- pipelined_transitions -----------------------------------------------------------------


def pipelined_transitions(sizes: Sizes, peers: Peers, scratch: Path) -> list[System]:
    n, window = sizes.pipelined, sizes.pipelined_window

    def stateward(_round: int) -> Sample:
        counter = Counter()
        with Runtime("bench-pipelined") as runtime:
            machine = stateward_toggle(runtime, counter)
            timed, wrong = pipelined_toggles(machine, n, window)
            problems: list[str] = []
            check(problems, wrong == 0, f"{wrong} replies out of order")
            check(problems, machine.version == n, f"version {machine.version} != {n}")
            check(problems, counter.n == n, f"hook ran {counter.n} times for {n}")
        return sample(n, timed, None, problems)

    systems = [
        System(
            "stateward",
            stateward,
            f"request_transition() with up to {window:,} replies in flight, then "
            "reply.result(); checked: every reply's version in order, final version",
        )
    ]
    if peers.locking is not None:
        locked = peers.locking.LockedMachine

        def build(counter: Counter) -> Any:
            model = transitions_toggle(locked, counter)
            return (
                lambda i: model.go_b() if i % 2 == 0 else model.go_a(),  # type: ignore[attr-defined]
                lambda: model.state,
                lambda: None,
            )

        systems.append(
            System(
                "transitions-LockedMachine",
                one_caller(build, sizes.locked_blocking),
                "no pipelining exists in transitions: this is its blocking rate, one call "
                "at a time",
            )
        )
    return systems


# -- reads_under_write ---------------------------------------------------------------------


def reads_under_write(sizes: Sizes, peers: Peers, scratch: Path) -> list[System]:
    """Readers read the state together with the count of transitions behind it,
    and check the pair: after an odd count the state must be ``b``. A read that
    sees a transition half done (the new state, the old count) is torn."""
    readers, seconds = 4, sizes.read_seconds

    def measure_with(
        build: Callable[[], tuple[Any, Callable[[int], Any], Callable[[], None]]],
        read_loop: Callable[[Any, list[bool]], tuple[int, int]],
        written: Callable[[Any, int], str | None],
    ) -> Callable[[int], Sample]:
        def measure(_round: int) -> Sample:
            machine, write, close = build()
            stop = [False]
            try:

                def work(index: int) -> tuple[int, int]:
                    if index == readers:  # the writer
                        writes = 0
                        while not stop[0]:
                            write(writes)
                            writes += 1
                        return writes, 0
                    return read_loop(machine, stop)

                def stop_later() -> None:
                    time.sleep(seconds)  # the measurement window, not synchronisation
                    stop[0] = True

                timer = threading.Thread(target=stop_later, daemon=True)
                timer.start()
                timed, results, problems = in_threads(readers + 1, work)
                timer.join(JOIN_TIMEOUT)
            finally:
                close()
            writes = results[readers][0] if results[readers] else 0
            reads = sum(r[0] for r in results[:readers] if r)
            torn = sum(r[1] for r in results[:readers] if r)
            check(problems, torn == 0, f"{torn:,} of {reads:,} reads were torn")
            mismatch = written(machine, writes)
            if mismatch:
                problems.append(mismatch)
            return sample(reads, timed, None, problems, reads=reads, writes=writes, torn=torn)

        return measure

    def detail(counts: dict[str, int], _values: dict[str, float]) -> str:
        torn = counts.get("torn", 0)
        return (
            f"the writer committed {counts.get('writes', 0):,} transitions meanwhile; "
            f"{torn:,} of {counts.get('reads', 0):,} reads torn (all rounds)"
        )

    def sw_build() -> Any:
        runtime = Runtime("bench-reads")
        machine = stateward_toggle(runtime, Counter())
        transition = machine.transition

        def write(i: int) -> Any:
            return transition(B if i % 2 == 0 else A, timeout=CALL_TIMEOUT)

        def close() -> None:
            runtime.shutdown()

        return machine, write, close

    def sw_reads(machine: StateMachine, stop: list[bool]) -> tuple[int, int]:
        reads = torn = 0
        while not stop[0]:
            for _ in range(100):
                snapshot = machine.snapshot
                if (snapshot.state == B) != (snapshot.version % 2 == 1):
                    torn += 1
            reads += 100
        return reads, torn

    def sw_written(machine: StateMachine, writes: int) -> str | None:
        if machine.version != writes:
            return f"version {machine.version} != {writes} writes"
        return None

    systems = [
        System(
            "stateward",
            measure_with(sw_build, sw_reads, sw_written),
            "machine.snapshot, then its state and version: the last published snapshot, "
            "no lock, no message",
            detail,
        )
    ]
    if peers.locking is not None:
        locked = peers.locking.LockedMachine

        def tr_build() -> Any:
            counter = Counter()
            model = transitions_toggle(locked, counter)

            def write(i: int) -> Any:
                return model.go_b() if i % 2 == 0 else model.go_a()  # type: ignore[attr-defined]

            return (model, counter), write, lambda: None

        def tr_reads(built: Any, stop: list[bool]) -> tuple[int, int]:
            model, counter = built
            reads = torn = 0
            while not stop[0]:
                for _ in range(100):
                    if (model.state == B) != (counter.n % 2 == 1):
                        torn += 1
                reads += 100
            return reads, torn

        def tr_locked_reads(built: Any, stop: list[bool]) -> tuple[int, int]:
            model, counter = built
            lock = model.machine.machine_context[0]  # the lock every trigger holds
            reads = torn = 0
            while not stop[0]:
                for _ in range(100):
                    with lock:
                        if (model.state == B) != (counter.n % 2 == 1):
                            torn += 1
                reads += 100
            return reads, torn

        def tr_written(built: Any, writes: int) -> str | None:
            model, counter = built
            expected = A if writes % 2 == 0 else B
            if model.state != expected or counter.n != writes:
                return "final state or hook count disagrees with the writes"
            return None

        systems += [
            System(
                "transitions-LockedMachine",
                measure_with(tr_build, tr_reads, tr_written),
                "model.state and the enter hook's count, read as plain attributes with no "
                "lock (see above)",
                detail,
            ),
            System(
                "transitions-LockedMachine-locked",
                measure_with(tr_build, tr_locked_reads, tr_written),
                "the same two attributes read while holding the machine's lock "
                "(machine.machine_context[0], which every trigger holds for its whole run): "
                "the consistent read",
                detail,
            ),
        ]
    return systems


# -- modify_8threads -----------------------------------------------------------------------


def modify_8threads(sizes: Sizes, peers: Peers, scratch: Path) -> list[System]:
    threads, per_thread = 8, sizes.modify_per_thread
    total = threads * per_thread

    def measure_with(
        build: Callable[[], tuple[Callable[[], Any], Callable[[], int], Callable[[], None]]],
        exact: bool,
    ) -> Callable[[int], Sample]:
        def measure(_round: int) -> Sample:
            increment, final, close = build()
            try:

                def work(_index: int) -> list[float]:
                    latencies = []
                    clock = time.perf_counter
                    for _ in range(per_thread):
                        started = clock()
                        increment()
                        latencies.append(clock() - started)
                    return latencies

                timed, results, problems = in_threads(threads, work)
                count = final()
            finally:
                close()
            latencies = [x for r in results if r for x in r]
            lost = total - count
            if lost and exact:
                problems.append("increments were lost")
            elif lost:
                problems.append(
                    "updates were lost: another thread wrote between the read and the write"
                )
            median = statistics.median(latencies) * 1e6 if latencies else None
            return sample(total, timed, median, problems, lost=lost, updates=total)

        return measure

    def sw_build() -> Any:
        runtime = Runtime("bench-modify")
        manager = StateManager({"n": 0}, runtime=runtime)

        def bump(state: ImmutableState) -> ImmutableState:
            return state.update(n=state.n + 1)

        def increment() -> Any:
            return manager.modify(bump, timeout=CALL_TIMEOUT)

        def final() -> int:
            n: int = manager.get_state().n
            if manager.version != n:
                return -1  # reported as lost updates
            return n

        return increment, final, runtime.shutdown

    def lost_detail(counts: dict[str, int], _values: dict[str, float]) -> str:
        return (
            f"lost {counts.get('lost', 0):,} of {counts.get('updates', 0):,} updates (all rounds)"
        )

    systems = [
        System(
            "stateward",
            measure_with(sw_build, exact=True),
            "StateManager.modify(lambda s: s.update(n=s.n + 1)): the function runs inside "
            "the actor; checked: final n and version == 8 x N",
            lost_detail,
        )
    ]
    if peers.foundation is not None and peers.attrs is not None:
        foundation, attrs = peers.foundation, peers.attrs

        @attrs.define(frozen=True, slots=True, kw_only=True)
        class CounterState(foundation.ImmutableState):  # type: ignore[name-defined,misc]
            n: int = 0

        def pf_build() -> Any:
            manager = foundation.StateManager(state=CounterState(n=0))

            def increment() -> Any:
                state = manager.current_state  # the guide's read ...
                return manager.update_state(n=state.n + 1)  # ... then write

            return increment, lambda: manager.current_state.n, lambda: None

        systems.append(
            System(
                "provide-foundation",
                measure_with(pf_build, exact=False),
                "StateManager(state=ImmutableState subclass): read current_state, then "
                "update_state(n=state.n + 1), as its guide does (see above)",
                lost_detail,
            )
        )

    def dict_build() -> Any:
        lock = threading.Lock()
        counter = {"n": 0}

        def increment() -> None:
            with lock:
                counter["n"] += 1

        return increment, lambda: counter["n"], lambda: None

    systems.append(
        System(
            "dict-with-lock",
            measure_with(dict_build, exact=True),
            "hand-written baseline: a dict under a threading.Lock",
            lost_detail,
        )
    )
    return systems


# -- durable_transitions -------------------------------------------------------------------

DURABLE_MODES = ("memory", "strict", "batched", "snapshot")
#: PostgresStore's modes, measured when ``STATEWARD_PG_URL`` names a server.
PG_MODES = ("pg-strict", "pg-batched")
PG_ENV = "STATEWARD_PG_URL"


@contextlib.contextmanager
def _durable_store(mode: str, scratch: Path, label: str) -> Iterator[Store]:
    """The store of one durable system's round: memory, a SQLite file in
    ``scratch``, or (``pg-*``) a fresh schema on the PostgreSQL server of
    ``STATEWARD_PG_URL``, dropped afterwards."""
    if mode == "memory":
        yield MemoryStore()
    elif not mode.startswith("pg-"):
        yield SQLiteStore(scratch / f"{label}.db", durability=mode)
    else:
        import psycopg

        url = os.environ[PG_ENV]
        schema = f"sw_bench_{uuid.uuid4().hex[:12]}"
        try:
            yield PostgresStore(url, durability=mode[3:], schema=schema)
        finally:
            conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _where(mode: str, fs: str) -> str:
    if mode == "memory":
        return "MemoryStore (no disk)"
    if mode.startswith("pg-"):
        return f"PostgresStore durability={mode[3:]!r} on a local server"
    return f"SQLiteStore durability={mode!r} on {fs}"


def _filesystem(path: Path) -> str:
    """The file system type holding ``path`` (from /proc/mounts), or ``unknown``."""
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                parts = line.split()
                if len(parts) > 2 and str(path).startswith(parts[1]) and len(parts[1]) > len(best):
                    best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind


def durable_transitions(sizes: Sizes, peers: Peers, scratch: Path) -> list[System]:
    """Durable transitions per second by store mode, as systems of one case.
    The SQLite files go to ``scratch``, one per system and round."""
    seconds = sizes.durable_seconds
    fs = _filesystem(scratch.resolve())

    def system(mode: str, callers: int) -> System:
        def measure(round_no: int) -> Sample:
            with (
                _durable_store(mode, scratch, f"{mode}-{callers}-{round_no}") as store,
                Runtime(f"bench-durable-{mode}", store=store) as runtime,
            ):
                machines = [
                    StateMachine(A, TOGGLE, name=f"m{i}", runtime=runtime) for i in range(callers)
                ]
                stop_at = [0.0]

                def drive(index: int) -> tuple[int, list[float]]:
                    machine = machines[index]
                    clock = time.perf_counter
                    latencies = []
                    done = 0
                    while clock() < stop_at[0]:
                        started = clock()
                        machine.transition(B if done % 2 == 0 else A, timeout=CALL_TIMEOUT)
                        latencies.append(clock() - started)
                        done += 1
                    return done, latencies

                stop_at[0] = time.perf_counter() + seconds + 0.05  # threads start first
                timed, results, problems = in_threads(callers, drive)
                counts = [r[0] if r else 0 for r in results]
                for machine, count in zip(machines, counts, strict=True):
                    if machine.version != count:
                        problems.append(f"{machine.name}: version {machine.version} != {count}")
            latencies = [x for r in results if r for x in r[1]]
            median = statistics.median(latencies) * 1e6 if latencies else None
            done = sum(counts)
            return sample(done, timed, median, problems, transitions=done)

        return System(
            f"stateward-{mode}-{callers}",
            measure,
            f"{_where(mode, fs)}; {callers} caller(s), one machine each; checked: every "
            "machine's version == its caller's count",
            judge_by="cpu" if mode == "memory" else "wall",  # SQLite waits on the disk
        )

    def pipelined(mode: str) -> System:
        """One caller keeping ``window`` requests in flight over ``count`` machines."""
        window, count = sizes.durable_window, sizes.durable_machines

        def measure(round_no: int) -> Sample:
            problems: list[str] = []
            with (
                _durable_store(mode, scratch, f"{mode}-pipelined-{round_no}") as store,
                Runtime(f"bench-durable-{mode}-pipelined", store=store) as runtime,
            ):
                machines = [
                    StateMachine(A, TOGGLE, name=f"m{i}", runtime=runtime) for i in range(count)
                ]
                sent = [0] * count
                in_flight: collections.deque[tuple[int, Any]] = collections.deque()
                wrong = done = 0

                def settle() -> None:
                    nonlocal wrong
                    expected, reply = in_flight.popleft()
                    wrong += reply.result(CALL_TIMEOUT).version != expected

                clock = time.perf_counter
                timed = Stopwatch().start()
                stop_at = clock() + seconds
                while clock() < stop_at:
                    for _ in range(window):  # one window's worth between clock reads
                        index = done % count
                        if len(in_flight) >= window:
                            settle()
                        sent[index] += 1
                        target = B if sent[index] % 2 == 1 else A
                        in_flight.append((sent[index], machines[index].request_transition(target)))
                        done += 1
                while in_flight:
                    settle()
                timed.stop()
                check(problems, wrong == 0, f"{wrong} replies with an unexpected version")
                for machine, expected in zip(machines, sent, strict=True):
                    if machine.version != expected:
                        problems.append(f"{machine.name}: version {machine.version} != {expected}")
            return sample(done, timed, None, problems, transitions=done)

        return System(
            f"stateward-{mode}-pipelined",
            measure,
            f"{_where(mode, fs)}; one caller keeping {window:,} requests in flight over "
            f"{count} machines (request_transition, round-robin); checked: every reply's "
            "version and every machine's version",
            finish=lambda _samples: {"in_flight": window, "machines": count},
            judge_by="cpu" if mode == "memory" else "wall",
        )

    modes = DURABLE_MODES + (PG_MODES if os.environ.get(PG_ENV) else ())
    systems = [system(mode, callers) for callers in (1, 32) for mode in modes]
    systems += [pipelined("memory"), pipelined("batched")]
    if os.environ.get(PG_ENV):
        systems.append(pipelined("pg-batched"))
    return systems


# -- restart_latency -----------------------------------------------------------------------


def restart_latency(sizes: Sizes, peers: Peers, scratch: Path) -> list[System]:
    """The time from a crash to the next message handled, round by round.

    A crashing request is queued with one behind it; the time runs from the
    moment the crashing handler raises to the moment the next handler starts,
    in a new incarnation restored from the last committed snapshot.
    """
    crashes = sizes.crashes_per_round
    pooled: list[float] = []

    def measure(round_no: int) -> Sample:
        samples: list[float] = []
        problems: list[str] = []
        with Runtime(f"bench-restart-{round_no}") as runtime:
            sup = Supervisor("bench", runtime=runtime, max_restarts=crashes + 1, within=3600.0)
            store = StateManager({"n": 0}, runtime=runtime, supervisor=sup, on_error="restart")
            marks: dict[str, float] = {}

            def crash(state: ImmutableState) -> ImmutableState:
                marks["crash"] = time.perf_counter()
                raise RuntimeError("injected")

            def next_message(state: ImmutableState) -> ImmutableState:
                marks["next"] = time.perf_counter()
                return state.update(n=state.n + 1)

            timed = Stopwatch().start()
            for _ in range(crashes):
                failing = store.request_modify(crash)
                following = store.request_modify(next_message)
                try:
                    failing.result(timeout=CALL_TIMEOUT)
                    problems.append("a crashing request did not fail")
                except ActorCrashed:
                    pass
                following.result(timeout=CALL_TIMEOUT)
                samples.append(marks["next"] - marks["crash"])
            timed.stop()
            check(problems, store.restarts == crashes, f"{store.restarts} restarts != {crashes}")
            check(problems, store.get_state().n == crashes, "a message after a crash was lost")
        pooled.extend(samples)
        ordered = sorted(samples)
        result = sample(crashes, timed, statistics.median(samples) * 1e6, problems)
        result.values["p99_us"] = percentile(ordered, 0.99) * 1e6
        return result

    def detail(_counts: dict[str, int], _values: dict[str, float]) -> str:
        ordered = sorted(pooled)
        if not ordered:
            return ""
        return (
            f"ops/s = crash-and-recover cycles per second; over all {len(ordered)} crashes: "
            f"median {statistics.median(ordered) * 1e3:.3f} ms, "
            f"p99 {percentile(ordered, 0.99) * 1e3:.3f} ms, max {ordered[-1] * 1e3:.3f} ms"
        )

    def finish(_samples: list[Sample]) -> dict[str, Any]:
        ordered = sorted(pooled)
        return {
            "median_ms": round(statistics.median(ordered) * 1e3, 3),
            "p99_ms": round(percentile(ordered, 0.99) * 1e3, 3),
            "max_ms": round(ordered[-1] * 1e3, 3),
        }

    return [
        System(
            "stateward",
            measure,
            "StateManager(on_error='restart') under a Supervisor; time from the crashing "
            "handler's raise to the next handler's start, in the new incarnation",
            detail,
            finish,
        )
    ]


@dataclass(frozen=True)
class Case:
    """A benchmark case: how to build its systems, how many rounds it runs, and
    what it runs inside (``around``: a context entered before building and left
    after the last round, such as a local Ray cluster; None: nothing)."""

    build: Callable[[Sizes, Peers, Path], list[System]]
    rounds: Callable[[Sizes], int] = operator.attrgetter("rounds")
    around: Callable[[], contextlib.AbstractContextManager[None]] | None = None


CASES: dict[str, Case] = {
    "blocking_transition_1thread": Case(blocking_transition_1thread),
    "blocking_transition_4threads": Case(blocking_transition_4threads),
    "pipelined_transitions": Case(pipelined_transitions),
    "reads_under_write": Case(reads_under_write),
    "modify_8threads": Case(modify_8threads),
    "durable_transitions": Case(durable_transitions, operator.attrgetter("durable_rounds")),
    "spawn_machines": Case(spawn_machines, operator.attrgetter("spawn_rounds")),
    "pending_timers": Case(pending_timers, operator.attrgetter("spawn_rounds")),
    "fanout_transitions": Case(fanout_transitions, operator.attrgetter("spawn_rounds")),
    "fairness": Case(fairness),
    "restart_latency": Case(restart_latency),
    "asyncio_one_at_a_time": Case(asyncio_one_at_a_time),
    "asyncio_in_flight": Case(asyncio_in_flight),
    "ray_blocking": Case(ray_blocking, operator.attrgetter("ray_rounds"), local_cluster),
    "ray_pipelined": Case(ray_pipelined, operator.attrgetter("ray_rounds"), local_cluster),
}
