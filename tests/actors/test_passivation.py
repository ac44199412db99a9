"""Virtual actors: ``Runtime(idle_after=..., max_active=...)`` passivates idle
actors, whose next message activates them again from the store.

Time is a `ManualClock`: a sweep runs when the test advances it, never on its
own, so which actor is idle at a sweep is decided by the test alone.
"""

from __future__ import annotations

import gc
import random
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stateward.actors import (
    ActorStopped,
    ConfigManager,
    ManualClock,
    Runtime,
    StateMachine,
    StateManager,
)
from stateward.actors.stores import SQLiteStore
from stateward.core import ArgumentTypeError, ArgumentValueError, ImmutableState

pytestmark = pytest.mark.usefixtures("each_host")

TOGGLE = {"a": ["b"], "b": ["a"]}


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    return None if request.param == "memory" else SQLiteStore(tmp_path / "actors.db")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def idle_runtime(store: Any, clock: ManualClock) -> Iterator[Runtime]:
    """Passivates what ran nothing for 10 to 20 (manual) seconds."""
    rt = Runtime("idle", store=store, timer=clock, idle_after=10, default_timeout=10)
    yield rt
    rt.shutdown(timeout=10).check()


def passive(handle: Any) -> bool:
    stats = handle.runtime.stats()[handle.name]
    return bool(stats.passive)


def test_an_actor_idle_for_two_sweeps_is_passivated_and_its_next_request_activates_it(
    idle_runtime: Runtime, clock: ManualClock
) -> None:
    machine = StateMachine("a", TOGGLE, name="order-1", runtime=idle_runtime, data={"n": 1})
    machine.transition("b")
    before = machine.snapshot
    clock.advance(10)  # first sweep: it ran a request since the start, so it stays
    assert not passive(machine)
    clock.advance(10)  # second sweep: nothing since the first
    assert passive(machine)
    assert "snapshot" not in vars(machine)  # its memory is dropped

    # Reads go to the store and do not activate it.
    assert machine.current_state == "b"
    assert machine.snapshot == before
    assert [(r.from_state, r.to_state) for r in machine.history] == [("a", "b")]
    assert passive(machine)

    after = machine.transition("a")  # the same handle: activated, recovered
    assert not passive(machine)
    assert (after.state, after.version, after.data["n"]) == ("a", 2, 1)
    assert [(r.from_state, r.to_state) for r in after.history] == [("a", "b"), ("b", "a")]
    stats = idle_runtime.stats()
    assert (stats.passivations, stats.activations) == (1, 1)


def test_an_actor_used_between_sweeps_stays_active(
    idle_runtime: Runtime, clock: ManualClock
) -> None:
    busy = StateManager({"n": 0}, runtime=idle_runtime, name="busy")
    idle = StateManager({"n": 0}, runtime=idle_runtime, name="idle")
    idle.update_state({"n": 1})  # once it answers, it has started
    for _ in range(3):
        busy.modify(lambda s: s.update(n=s.n + 1))
        clock.advance(10)
    assert not passive(busy)
    assert passive(idle)
    assert busy.get_state().n == 3
    assert idle.get_state().n == 1


def test_every_kind_reads_and_resumes_after_passivation(idle_runtime: Runtime, store: Any) -> None:
    machine = StateMachine("a", TOGGLE, runtime=idle_runtime)
    manager = StateManager({"n": 1}, runtime=idle_runtime)
    config = ConfigManager({"level": "info"}, runtime=idle_runtime)
    config.update_config({"level": "debug"})
    # With a thread per actor, an actor starts on its own thread: only a
    # started one is idle, and passivated. Wait (bounded) for the starts.
    deadline = time.monotonic() + 5
    while not all(h._cell.ready for h in (machine, manager, config)):
        assert time.monotonic() < deadline, "the actors never started"
        time.sleep(0.0005)
    assert idle_runtime.passivate_idle() == 3
    assert (machine.current_state, manager.get_state().n) == ("a", 1)
    assert (config.get_config()["level"], config.version) == ("debug", 1)
    assert all(passive(h) for h in (machine, manager, config))
    config.rollback(0)
    manager.update_state({"n": 2})
    machine.transition("b")
    assert (machine.current_state, manager.get_state().n) == ("b", 2)
    assert (config.get_config()["level"], config.version) == ("info", 2)


def test_max_active_keeps_the_active_count_bounded_and_loses_nothing(
    store: Any, clock: ManualClock
) -> None:
    with Runtime("bounded", store=store, timer=clock, max_active=5) as runtime:
        machines = [StateMachine("a", TOGGLE, runtime=runtime) for _ in range(40)]
        for round_no in range(3):
            for machine in machines:
                machine.transition("b" if round_no % 2 == 0 else "a")
            active = [m for m in machines if not passive(m)]
            # Each activation past the limit passivates an idle one; the one
            # just activated may keep it one above the limit until the next.
            assert len(active) <= 5 + 1, round_no
        for machine in machines:
            assert (machine.current_state, machine.version) == ("b", 3)
        stats = runtime.stats()
        assert stats.passivations >= 3 * (40 - 6)
        assert stats.activations >= 2 * (40 - 6)  # rounds 2 and 3 brought them back


def test_messages_sent_while_an_actor_is_passivated_wait_for_it_in_order(
    idle_runtime: Runtime,
) -> None:
    """A sender pipelines appends while another thread passivates the actor
    again and again: every append is applied, once, in the order sent."""
    log = StateManager({"items": ()}, runtime=idle_runtime, name="log")
    count = 600
    stop = threading.Event()
    errors: list[BaseException] = []
    passivated = [0]

    def passivate() -> None:
        try:
            while not stop.is_set():
                passivated[0] += idle_runtime.passivate_idle()
        except BaseException as exc:  # re-raised in the test thread
            errors.append(exc)

    def append(i: int) -> Any:
        return lambda s: s.update(items=(*s.items, i))

    thread = threading.Thread(target=passivate)
    thread.start()
    try:
        rng = random.Random(7)
        replies = []
        for i in range(count):
            if rng.random() < 0.1:
                replies.append(None)
                log.modify(append(i))  # blocking: may run inline when idle
            else:
                replies.append(log.request_modify(append(i)))
        for reply in replies:
            if reply is not None:
                reply.result(10)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    if errors:
        raise errors[0]
    assert log.get_state()["items"] == tuple(range(count))
    assert idle_runtime.stats()["log"].messages == count


def test_on_start_runs_again_when_a_passivated_actor_is_activated(
    idle_runtime: Runtime,
) -> None:
    seen: list[int] = []
    started = threading.Event()

    def on_start(state: ImmutableState) -> None:
        seen.append(state.n)
        started.set()

    counter = StateManager({"n": 0}, runtime=idle_runtime, on_start=on_start)
    counter.update_state({"n": 5})
    assert idle_runtime.passivate_idle() == 1
    counter.update_state({"n": 6})
    assert seen == [0, 5]


def test_a_crash_after_an_activation_restarts_from_the_last_commit(
    idle_runtime: Runtime,
) -> None:
    counter = StateManager({"n": 0}, runtime=idle_runtime, on_error="restart")
    counter.update_state({"n": 1})
    idle_runtime.passivate_idle()

    def boom(state: ImmutableState) -> ImmutableState:
        raise RuntimeError("boom")

    with pytest.raises(Exception, match="boom"):
        counter.modify(boom)
    assert counter.modify(lambda s: s.update(n=s.n + 1)).n == 2
    assert counter.restarts == 1


def test_a_passivated_dedicated_actor_gives_its_thread_back(
    idle_runtime: Runtime,
) -> None:
    before = threading.active_count()
    machine = StateMachine("a", TOGGLE, runtime=idle_runtime, dedicated=True)
    machine.transition("b")
    worker = machine._cell.thread  # the thread its incarnation started on
    assert worker is not None and worker is not threading.current_thread()
    assert idle_runtime.passivate_idle() == 1
    worker.join(10)
    assert not worker.is_alive()
    assert threading.active_count() < before + 1
    assert machine.transition("a").state == "a"


def test_shutdown_stops_passivated_actors_at_once_and_reports_clean(
    store: Any, clock: ManualClock
) -> None:
    before = threading.active_count()
    runtime = Runtime("closing", store=store, timer=clock, idle_after=10)
    machines = [StateMachine("a", TOGGLE, runtime=runtime) for _ in range(20)]
    for machine in machines:  # each has started once it answers
        machine.transition("b")
    assert runtime.passivate_idle() == 20
    report = runtime.shutdown(timeout=10)
    assert report.clean, report.describe()
    assert all(not m.alive for m in machines)
    assert threading.active_count() <= before
    with pytest.raises(ActorStopped):
        machines[0].transition("a")
    if store is None:  # the memory store is still readable: so is the state
        assert machines[0].current_state == "b"
    else:
        with pytest.raises(ActorStopped, match="passivated when it stopped"):
            machines[0].current_state  # noqa: B018


def test_a_runtime_without_passivation_refuses_passivate_idle() -> None:
    with Runtime("plain") as runtime, pytest.raises(RuntimeError, match="idle_after"):
        runtime.passivate_idle()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"idle_after": 0}, ArgumentValueError),
        ({"idle_after": -1.0}, ArgumentValueError),
        ({"idle_after": float("inf")}, ArgumentValueError),
        ({"idle_after": float("nan")}, ArgumentValueError),
        ({"idle_after": "60"}, ArgumentTypeError),
        ({"idle_after": True}, ArgumentTypeError),
        ({"max_active": 0}, ArgumentValueError),
        ({"max_active": 1.5}, ArgumentTypeError),
        ({"max_active": True}, ArgumentTypeError),
    ],
)
def test_bad_passivation_options_are_refused(options: dict[str, Any], error: type) -> None:
    with pytest.raises(error, match="no runtime was created"):
        Runtime("bad", **options)


def test_passivated_actors_leave_their_snapshots_to_the_store(tmp_path: Path) -> None:
    """With a SQLiteStore and ``max_active``, memory holds about ``max_active``
    snapshots, not one per machine: 100 machines of 100 KB each (10 MB) leave
    less than 3 MB behind once they have all run (what is left is the cells,
    handles and names, a few KB each at most)."""
    payload = "x" * 100_000
    gc.collect()
    tracemalloc.start()
    try:
        with Runtime("big", store=SQLiteStore(tmp_path / "big.db"), max_active=10) as runtime:
            baseline = tracemalloc.get_traced_memory()[0]
            machines = [
                StateMachine("a", TOGGLE, runtime=runtime, data={"blob": payload + str(i)})
                for i in range(100)
            ]
            for machine in machines:
                machine.transition("b")
            runtime.passivate_idle()
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - baseline
            assert all(m.current_state == "b" for m in machines)  # read from the store
            assert machines[7].data["blob"] == payload + "7"
    finally:
        tracemalloc.stop()
    assert held < 3_000_000, f"{held:,} bytes still held for 100 passivated machines"
