"""What the cases measure: the sizes of a run, the peers, the machines under test
and the threads that drive them.

The machines toggle between two states, ``a`` and ``b``. Where a case has a
hook, it is the same trivial enter hook in every system (`Counter.hook`, one
attribute increment), registered for both states.
"""

from __future__ import annotations

import collections
import importlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pykka
from _harness import Sample, Stopwatch, timed_calls

from stateward.actors import Runtime, StateMachine
from stateward.core import MachineBuilder

A, B = "a", "b"
TOGGLE = {A: [B], B: [A]}
#: How long any single blocking call in a case may wait, in seconds.
CALL_TIMEOUT = 30.0
#: How long a case waits for its worker threads, in seconds.
JOIN_TIMEOUT = 300.0


@dataclass(frozen=True)
class Sizes:
    """How much work each case does (full run or ``--quick``)."""

    rounds: int
    calls_1thread: int
    calls_per_thread_4: int
    pipelined: int
    pipelined_window: int
    locked_blocking: int
    read_seconds: float
    modify_per_thread: int
    durable_seconds: float
    durable_rounds: int
    spawn: int
    spawn_add_model: int
    spawn_rounds: int
    crashes_per_round: int
    #: stateward's count in spawn_machines when each actor has a thread of its own
    #: (run.py --spawn-count overrides it); a pooled stateward runs ``spawn``.
    spawn_thread_host: int
    #: Machines in fanout_transitions (pooled; capped at ``fanout_thread_host``
    #: when each actor has a thread of its own).
    fanout: int
    fanout_thread_host: int
    #: fairness: queued messages of the busy cell, and the other cells (one each).
    fairness_backlog: int
    fairness_others: int
    #: durable_transitions' pipelined rows: requests in flight over ``durable_machines``.
    durable_window: int
    durable_machines: int
    #: stateward's count in spawn_machines (run.py --spawn-count), or 0: the default.
    spawn_stateward: int = 0
    #: stateward alone in spawn_machines at this count (run.py --spawn-alone), or 0.
    spawn_alone: int = 0
    #: asyncio_one_at_a_time: awaited transitions, one after the other.
    async_calls: int = 5000
    #: asyncio_in_flight: requests in flight over ``async_machines``, and in all.
    async_in_flight: int = 1000
    async_machines: int = 100
    async_total: int = 20_000
    #: ray_blocking: timed blocking calls per system and round.
    ray_calls: int = 1000
    #: ray_pipelined: requests in flight over ``ray_machines``, for ``ray_seconds``.
    ray_in_flight: int = 1000
    ray_machines: int = 1000
    ray_seconds: float = 3.0
    #: Rounds of the Ray cases (each round starts its own shards and raw actors).
    ray_rounds: int = 3


FULL = Sizes(
    rounds=5,
    calls_1thread=5000,
    calls_per_thread_4=2000,
    pipelined=20000,
    pipelined_window=1000,
    locked_blocking=3000,
    read_seconds=1.0,
    modify_per_thread=2000,
    durable_seconds=2.0,
    durable_rounds=3,
    spawn=100_000,
    spawn_add_model=10_000,
    spawn_rounds=3,
    crashes_per_round=100,
    spawn_thread_host=10_000,
    fanout=100_000,
    fanout_thread_host=5_000,
    fairness_backlog=10_000,
    fairness_others=100,
    durable_window=1000,
    durable_machines=32,
)
QUICK = Sizes(
    rounds=2,
    calls_1thread=300,
    calls_per_thread_4=100,
    pipelined=2000,
    pipelined_window=1000,
    locked_blocking=300,
    read_seconds=0.2,
    modify_per_thread=100,
    durable_seconds=0.25,
    durable_rounds=2,
    spawn=1000,
    spawn_add_model=200,
    spawn_rounds=2,
    crashes_per_round=15,
    spawn_thread_host=200,
    fanout=300,
    fanout_thread_host=200,
    fairness_backlog=500,
    fairness_others=10,
    durable_window=100,
    durable_machines=8,
    async_calls=300,
    async_in_flight=100,
    async_machines=10,
    async_total=1000,
    ray_calls=30,
    ray_in_flight=20,
    ray_machines=20,
    ray_seconds=0.2,
    ray_rounds=1,
)


def _optional(module: str) -> ModuleType | None:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


class Peers:
    """The peer libraries that could be imported (None where not installed).

    ``Peers(load=False)`` has none of them: ``run.py --against`` measures
    stateward's own systems only, and does not import the peers at all.
    """

    def __init__(self, *, load: bool = True) -> None:
        def find(module: str) -> ModuleType | None:
            return _optional(module) if load else None

        self.transitions = find("transitions")
        self.locking = find("transitions.extensions.locking")
        self.statemachine = find("statemachine")
        self.foundation = find("provide.foundation.state")
        self.attrs = find("attrs")
        self.automat = find("automat")

    @property
    def missing(self) -> list[str]:
        """Distribution names of the peers that are not installed."""
        found = {
            "transitions": self.transitions is not None and self.locking is not None,
            "python-statemachine": self.statemachine is not None,
            "provide-foundation": self.foundation is not None and self.attrs is not None,
            "automat": self.automat is not None,
        }
        return [name for name, ok in found.items() if not ok]


# -- the machines under test ---------------------------------------------------------------


class Counter:
    """Counts the enter hook's calls: the same trivial hook in every system."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def hook(self, *_args: Any) -> None:
        self.n += 1

    # python-statemachine finds listener callbacks by name.
    on_enter_state = hook


class _Model:
    """A transitions model: the machine sets ``state`` and the trigger methods.
    ``machine`` is the machine that drives it."""

    state: str
    machine: Any


def stateward_toggle(
    runtime: Runtime, counter: Counter | None, history_limit: int | None = None
) -> StateMachine:
    builder = MachineBuilder(A, TOGGLE)
    if history_limit is not None:
        builder.history_limit = history_limit
    if counter is not None:
        builder.on_enter(counter.hook)  # bare: every state
    return StateMachine(builder, runtime=runtime)


def pipelined_toggles(machine: StateMachine, count: int, window: int) -> tuple[Stopwatch, int]:
    """``count`` request_transition() calls on ``machine`` with up to ``window``
    replies in flight; the time taken and how many replies came with a version
    out of order."""
    in_flight: collections.deque[Any] = collections.deque()
    request = machine.request_transition
    wrong = expected = 0
    timed = Stopwatch().start()
    for i in range(count):
        if len(in_flight) >= window:
            expected += 1
            wrong += in_flight.popleft().result(CALL_TIMEOUT).version != expected
        in_flight.append(request(B if i % 2 == 0 else A))
    while in_flight:
        expected += 1
        wrong += in_flight.popleft().result(CALL_TIMEOUT).version != expected
    timed.stop()
    return timed, wrong


def transitions_toggle(machine_cls: type, counter: Counter | None) -> _Model:
    model = _Model()
    hook = [] if counter is None else [counter.hook]
    model.machine = machine_cls(
        model=model,
        states=[{"name": A, "on_enter": hook}, {"name": B, "on_enter": hook}],
        initial=A,
        transitions=[
            {"trigger": "go_b", "source": A, "dest": B},
            {"trigger": "go_a", "source": B, "dest": A},
        ],
        auto_transitions=False,
    )
    if counter is not None:
        counter.n = 0
    return model


_psm_classes: dict[int, type] = {}


def psm_toggle(sm: ModuleType, counter: Counter | None) -> Any:
    cls = _psm_classes.get(id(sm))
    if cls is None:

        class Toggle(sm.StateMachine):  # type: ignore[name-defined,misc]
            a = sm.State(initial=True)
            b = sm.State()
            go_b = a.to(b)
            go_a = b.to(a)

        cls = _psm_classes[id(sm)] = Toggle
    machine = cls(listeners=[] if counter is None else [counter])
    if counter is not None:
        counter.n = 0  # entering the initial state called the hook once
    return machine


_automat_factories: dict[int, Callable[[Any], Any]] = {}


class _AutomatCore:
    """The core an automat machine acts on: nothing, the states are automat's."""

    __slots__ = ()


def automat_toggle(automat: ModuleType) -> Any:
    """An automat toggle (TypeMachineBuilder): ``go_b()`` from ``a``, ``go_a()``
    from ``b``; an input its state has no transition for raises NoTransition."""
    factory = _automat_factories.get(id(automat))
    if factory is None:
        from typing import Protocol

        class Toggle(Protocol):
            def go_b(self) -> None: ...

            def go_a(self) -> None: ...

        builder = automat.TypeMachineBuilder(Toggle, _AutomatCore)
        state_a, state_b = builder.state(A), builder.state(B)
        state_a.upon(Toggle.go_b).to(state_b).returns(None)
        state_b.upon(Toggle.go_a).to(state_a).returns(None)
        factory = _automat_factories[id(automat)] = builder.build()
    return factory(_AutomatCore())


# -- what the host gives each actor --------------------------------------------------------


def threads_per_machine(probes: int = 4) -> float:
    """Threads that one more stateward machine adds (1.0: a thread per actor),
    measured on a throwaway runtime."""
    before = threading.active_count()
    runtime = Runtime("bench-probe")
    try:
        for _ in range(probes):
            StateMachine(A, TOGGLE, runtime=runtime)
        return (threading.active_count() - before) / probes
    finally:
        runtime.shutdown(timeout=CALL_TIMEOUT)


def thread_limit() -> int:
    """About how many threads this process may start: Linux gives each thread a
    stack mapping and a guard (vm.max_map_count / 2, about 32,000), and caps
    threads (kernel.threads-max, cgroup pids.max)."""
    limits = []
    for path, per_thread in (
        ("/proc/sys/vm/max_map_count", 2),
        ("/proc/sys/kernel/threads-max", 1),
        ("/sys/fs/cgroup/pids.max", 1),
    ):
        try:
            with open(path) as source:
                limits.append(int(source.read().strip()) // per_thread)
        except (OSError, ValueError):  # absent, or "max"
            continue
    return min(limits, default=32_000)


def thread_host_cap() -> int:
    """The most machines a thread-per-actor stateward is asked for: well under
    `thread_limit`, which other threads of the process share."""
    return thread_limit() // 2


class ToggleActor(pykka.ThreadingActor):
    """The floor for any actor: an ask() round trip whose handler toggles a state."""

    use_daemon_thread = True

    def __init__(self, counter: Counter) -> None:
        super().__init__()
        self.state = A
        self.counter = counter

    def on_receive(self, message: Any) -> Any:
        self.state = B if self.state == A else A
        self.counter.hook()
        return self.state


# -- helpers -------------------------------------------------------------------------------


def in_threads(count: int, work: Callable[[int], Any]) -> tuple[Stopwatch, list[Any], list[str]]:
    """Run ``work(i)`` on ``count`` threads started together.

    Returns the stopwatch of the run, each thread's result, and the errors raised.
    """
    barrier = threading.Barrier(count + 1, timeout=60)
    results: list[Any] = [None] * count
    errors: list[str] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as exc:  # reported as a problem of the sample
            errors.append(f"thread {index} raised {exc!r}")

    threads = [
        threading.Thread(target=run, args=(i,), name=f"bench-{i}", daemon=True)
        for i in range(count)
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    timed = Stopwatch().start()
    deadline = time.perf_counter() + JOIN_TIMEOUT
    for thread in threads:
        thread.join(max(0.0, deadline - time.perf_counter()))
    timed.stop()
    stuck = [t.name for t in threads if t.is_alive()]
    if stuck:
        errors.append(f"threads still running after {JOIN_TIMEOUT:g} s: {stuck}")
    return timed, results, errors


def sample(
    done: float, timed: Stopwatch, latency_us: float | None, problems: list[str], **counts: int
) -> Sample:
    """A `Sample` of ``done`` operations in ``timed``, correct exactly when
    ``problems`` is empty."""
    rate, cpu_rate = timed.rates(done)
    return Sample(rate, latency_us, not problems, problems, dict(counts), cpu_ops_per_s=cpu_rate)


def check(problems: list[str], ok: bool, text: str) -> None:
    """Record ``text`` as a problem unless ``ok``."""
    if not ok:
        problems.append(text)


def one_caller(
    build: Callable[[Counter], tuple[Callable[[int], Any], Callable[[], str], Callable[[], None]]],
    calls: int,
) -> Callable[[int], Sample]:
    """A measure function: one caller toggling ``calls`` times.

    ``build(counter)`` returns (call(i), current state, close).
    """

    def measure(_round: int) -> Sample:
        counter = Counter()
        call, state, close = build(counter)
        try:
            timed, median = timed_calls(call, calls)
            problems: list[str] = []
            check(problems, counter.n == calls, f"hook ran {counter.n} times for {calls} calls")
            expected = A if calls % 2 == 0 else B
            check(problems, state() == expected, f"ended in {state()!r}, not {expected!r}")
        finally:
            close()
        return sample(calls, timed, median, problems)

    return measure
