"""Virtual actors under races: passivation against reads, activations,
supervision, stops and shutdown, on both hosts and on the memory and SQLite
stores (strict and batched).

Where a race needs one precise interleaving, a store wrapper (`GatedStore`)
makes it happen: it delegates to a real store and can hold a commit once it
is stored (before the actor publishes it), fail a recovery, or run a step of
the test inside a reader's recovery. Time is a `ManualClock`.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import random
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stateward.actors import (
    ActorCrashed,
    ActorStopped,
    Backoff,
    ManualClock,
    Runtime,
    StateMachine,
    StateManager,
    Supervisor,
    SupervisorEvent,
)
from stateward.actors.stores import MemoryStore, SQLiteStore

pytestmark = pytest.mark.usefixtures("each_host")

TOGGLE = {"a": ["b"], "b": ["a"]}


class GatedStore:
    """A real store, with gates a test opens and closes (see the module)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.durability = inner.durability
        #: Hold the next commit, once stored, until ``go_on`` is set.
        self.hold_next_commit = False
        self.held = threading.Event()
        self.go_on = threading.Event()
        #: Recoveries still to fail (as a read error of the store would).
        self.failures = 0
        self.recoveries = 0
        #: Run once, in the next recovery made on ``reader``'s thread, before it reads.
        self.before_read: Callable[[], None] | None = None
        self.reader: threading.Thread | None = None

    def claim(self, name: str, codec: Any, runtime_id: str) -> Any:
        return self.inner.claim(name, codec, runtime_id)

    def create(self, name: str, codec: Any, snapshot: Any) -> None:
        self.inner.create(name, codec, snapshot)

    def commit(self, name: str, codec: Any, old: Any, new: Any) -> None:
        self.inner.commit(name, codec, old, new)
        if self.hold_next_commit:
            self.hold_next_commit = False
            self.held.set()
            self.go_on.wait(10)  # the test sets it within a few steps

    def recover(self, name: str, codec: Any) -> Any:
        self.recoveries += 1
        step = self.before_read
        if step is not None and threading.current_thread() is self.reader:
            self.before_read = None
            step()
        if self.failures:
            self.failures -= 1
            raise OSError("the disk did not answer")
        return self.inner.recover(name, codec)

    def release(self, name: str, runtime_id: str) -> None:
        self.inner.release(name, runtime_id)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture(params=["memory", "sqlite-strict", "sqlite-batched"])
def inner_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "memory":
        return MemoryStore()
    durability = request.param.removeprefix("sqlite-")
    return SQLiteStore(tmp_path / "actors.db", durability=durability)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(inner_store: Any) -> GatedStore:
    return GatedStore(inner_store)


@pytest.fixture
def runtime(store: GatedStore, clock: ManualClock) -> Iterator[Runtime]:
    rt = Runtime("races", store=store, timer=clock, idle_after=10, default_timeout=10)
    yield rt
    rt.shutdown(timeout=10).check()


def passive(handle: Any) -> bool:
    return bool(handle.stats().passive)


class Threads:
    """Threads whose exceptions are re-raised in the test thread by `join`."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def start(self, fn: Callable[[], None], name: str | None = None) -> None:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:
                self.errors.append(exc)

        thread = threading.Thread(target=run, name=name)
        self.threads.append(thread)
        thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(30)
        assert not any(t.is_alive() for t in self.threads)
        if self.errors:
            raise self.errors[0]


# -- reads ----------------------------------------------------------------------------


def test_a_read_from_the_store_never_shows_a_commit_that_a_later_read_takes_back(
    runtime: Runtime, store: GatedStore
) -> None:
    """A read of a passivated actor goes to the store. If its next message
    activates it meanwhile, the store may already hold a commit that the
    actor has not published yet: the read returns the published snapshot,
    so the next read from the same handle is never older."""
    counter = StateManager({"n": 0}, runtime=runtime, name="counter")
    counter.update_state({"n": 1})
    assert runtime.passivate_idle() == 1
    replies = []

    def activate_and_store_a_commit() -> None:
        # Inside the reader's recovery, before it reads the store: the next
        # message activates the actor (its own recovery runs on its worker),
        # which publishes version 1 and stores version 2, held before publishing.
        store.hold_next_commit = True
        replies.append(counter.request_update({"n": 2}))
        assert store.held.wait(5)

    store.reader = threading.current_thread()
    store.before_read = activate_and_store_a_commit
    try:
        first = counter.version  # passivated: read from the store
        second = counter.version  # activated: read from memory
    finally:
        store.go_on.set()
    assert replies[0].result(5).n == 2
    assert first <= second, f"read version {first}, then version {second}"
    assert counter.version == 2


@pytest.mark.parametrize("seed", [3])
def test_readers_see_no_none_and_no_older_version_while_actors_come_and_go(
    runtime: Runtime, seed: int
) -> None:
    """Writers pipeline and block, a thread passivates all the time, readers
    read every way there is: no reader sees None, an error, or a version older
    than one it saw before through the same handle.

    ``STATEWARD_PASSIVATION_WRITES`` (25 by default) sets the writes per
    writer, for longer local runs."""
    managers = [StateManager({"n": 0}, runtime=runtime, name=f"m{i}") for i in range(2)]
    machine = StateMachine("a", TOGGLE, runtime=runtime, name="machine")
    writes = int(os.environ.get("STATEWARD_PASSIVATION_WRITES", "25"))
    done = threading.Event()
    threads = Threads()

    def passivate() -> None:
        while not done.is_set():
            runtime.passivate_idle()

    def read(handle: Any, reads: list[Callable[[], int]]) -> None:
        last = 0
        while not done.is_set():
            for get in reads:
                version = get()
                assert version is not None
                assert version >= last, f"{handle.name}: version {version} after {last}"
                last = version

    def write(manager: StateManager, rng: random.Random) -> None:
        replies = []
        for _ in range(writes):
            if rng.random() < 0.3:
                manager.modify(lambda s: s.update(n=s.n + 1))
            else:
                replies.append(manager.request_modify(lambda s: s.update(n=s.n + 1)))
        for reply in replies:
            reply.result(10)

    def toggle() -> None:
        for i in range(writes):
            machine.transition("b" if i % 2 == 0 else "a")

    threads.start(passivate)
    for manager in managers:
        threads.start(
            lambda m=manager: read(
                m,
                [
                    lambda: m.version,
                    lambda: m.get_state().n,
                    lambda: m.snapshot.version,
                    lambda: m.stats().version,
                ],
            )
        )
    threads.start(
        lambda: read(
            machine,
            [
                lambda: machine.version,
                lambda: len(machine.history),
                lambda: machine.stats().version,
            ],
        )
    )
    writers = Threads()
    for i, manager in enumerate(managers):
        writers.start(functools.partial(write, manager, random.Random(seed + i)))
    writers.start(toggle)
    try:
        writers.join()
    finally:
        done.set()
        threads.join()
    assert [m.get_state().n for m in managers] == [writes] * 2
    assert (machine.current_state, machine.version) == ("b" if writes % 2 else "a", writes)


def test_stats_of_passivated_actors_do_not_read_the_store(
    runtime: Runtime, store: GatedStore
) -> None:
    """``runtime.stats()`` over many passivated actors costs no recovery each
    (with a SQLiteStore, a recovery is a query and a replay), and gives the
    version each had when it was passivated."""
    machines = [StateMachine("a", TOGGLE, runtime=runtime) for _ in range(10)]
    for machine in machines:  # each has started once it answers
        machine.transition("b")
    for machine in machines[:5]:
        machine.transition("a")
    assert runtime.passivate_idle() == 10
    before = store.recoveries
    stats = runtime.stats()
    assert store.recoveries == before
    assert [stats[m.name].version for m in machines] == [2] * 5 + [1] * 5
    assert all(stats[m.name].passive for m in machines)


def test_the_stats_of_a_passivated_actor_stay_readable_after_shutdown(
    store: GatedStore, clock: ManualClock
) -> None:
    """Stats are counters kept in memory: a handle's ``stats()`` works after
    its runtime has shut down, passivated or not (only its state is then
    in the store alone)."""
    runtime = Runtime("closing", store=store, timer=clock, idle_after=10)
    machine = StateMachine("a", TOGGLE, runtime=runtime)
    machine.transition("b")
    assert runtime.passivate_idle() == 1
    assert runtime.shutdown(timeout=10).clean
    stats = machine.stats()
    assert (stats.alive, stats.passive, stats.version, stats.messages) == (False, True, 1, 1)


# -- supervision ----------------------------------------------------------------------


def test_an_activation_that_fails_waits_for_its_supervisors_restart(
    store: GatedStore, clock: ManualClock
) -> None:
    """An activation that cannot recover (the store failed to read) is a
    crash like any other: the supervisor's backoff decides when the next
    incarnation starts, and the request that activated it waits for that one,
    in the mailbox, instead of activating it again at once."""
    events: list[SupervisorEvent] = []
    failed = threading.Event()

    def record(event: SupervisorEvent) -> None:
        events.append(event)
        if event.kind == "failed":
            failed.set()

    with Runtime("backoff", store=store, timer=clock, idle_after=10, default_timeout=10) as rt:
        supervisor = Supervisor(
            "sup", runtime=rt, backoff=Backoff(min=10, max=10, jitter=0), within=1000
        )
        supervisor.subscribe(record)
        counter = StateManager({"n": 0}, runtime=rt, supervisor=supervisor, on_error="restart")
        counter.update_state({"n": 1})
        assert rt.passivate_idle() == 1
        recoveries = store.recoveries
        store.failures = 1
        answered = threading.Event()
        reply = counter.request_update({"n": 2})
        reply.add_done_callback(lambda _: answered.set())
        assert failed.wait(5)
        # Nothing starts it before the backoff is over: the clock has not moved.
        assert not answered.wait(0.3), "the request ran before the supervisor restarted it"
        clock.advance(10)
        assert reply.result(5).n == 2
        assert counter.restarts == 1
        assert store.recoveries == recoveries + 2  # the failed one and the restart's
        assert [e.kind for e in events if e.child == counter.name] == [
            "started",
            "failed",
            "restarted",
        ]


def test_an_on_start_that_fails_on_activation_counts_against_the_restart_intensity(
    store: GatedStore, clock: ManualClock
) -> None:
    """Every start after the first fails: the activation and each restart
    are failures of the actor, each from its last commit, and the supervisor
    gives up after ``max_restarts`` of them; the request that activated it is
    refused then, not lost."""
    seen: list[int] = []

    def on_start(state: Any) -> None:
        seen.append(state.n)
        if len(seen) > 1:
            raise RuntimeError("the connection it needs is gone")

    events: list[str] = []
    runtime = Runtime(
        "intensity",
        store=store,
        timer=clock,
        idle_after=10,
        default_timeout=10,
        max_restarts=2,
        within=1000,
    )
    runtime.subscribe(lambda event: events.append(event.kind))
    with runtime as rt:
        counter = StateManager({"n": 0}, runtime=rt, on_start=on_start)
        counter.update_state({"n": 1})
        assert rt.passivate_idle() == 1
        reply = counter.request_update({"n": 2})
        with pytest.raises(ActorStopped, match="gave up"):
            reply.result(5)
        # The supervisor stops its children (refusing the request) before it
        # reports giving up: wait (bounded) for the report.
        assert rt.wait_fatal(5) is not None
        assert seen == [0, 1, 1, 1]
        assert counter.restarts == 2
        assert events.count("failed") == 3 and events.count("restarted") == 2
        assert "gave_up" in events
        assert counter.get_state().n == 1  # nothing was lost: the store still has it


def test_one_for_all_restarts_passivated_siblings_from_their_last_commit(
    runtime: Runtime,
) -> None:
    supervisor = Supervisor("all", strategy="one_for_all", runtime=runtime, within=1000)
    options = {"runtime": runtime, "supervisor": supervisor, "on_error": "restart"}
    handles = [StateManager({"n": 0}, name=name, **options) for name in ("a", "b", "c")]
    for i, handle in enumerate(handles):
        handle.update_state({"n": i + 1})
    assert runtime.passivate_idle() == 3

    def boom(state: Any) -> Any:
        raise RuntimeError("boom")

    with pytest.raises(ActorCrashed):
        handles[1].modify(boom)  # activates b, which crashes: all three restart
    assert [h.restarts for h in handles] == [1, 1, 1]
    assert [h.get_state().n for h in handles] == [1, 2, 3]
    assert [h.modify(lambda s: s.update(n=s.n * 10)).n for h in handles] == [10, 20, 30]
    assert runtime.passivate_idle() == 3
    assert [h.get_state().n for h in handles] == [10, 20, 30]


def test_a_fenced_handler_commits_nothing_across_passivation_and_activation(
    store: GatedStore, clock: ManualClock
) -> None:
    """A ``deadline=`` actor's hung handler is fenced and the actor restarted;
    the new incarnation is passivated and activated again while the hung
    handler still runs: when it returns, it commits nothing, and the actor
    goes on from its last commit."""
    with Runtime("fence", store=store, timer=clock, idle_after=100, default_timeout=10) as rt:
        supervisor = Supervisor("sup", runtime=rt, max_restarts=5, within=1000)
        counter = StateManager({"n": 0}, runtime=rt, supervisor=supervisor, deadline=2.0)
        counter.update_state({"n": 1})
        entered, release = threading.Event(), threading.Event()

        def hang(state: Any) -> Any:
            entered.set()
            assert release.wait(10)
            return state.update(n=999)

        hung = counter.request_modify(hang)
        try:
            assert entered.wait(5)
            clock.advance(2.5)  # the watchdog fences the hung handler
            with pytest.raises(ActorCrashed):
                hung.result(5)
            assert counter.update_state({"n": 2}).n == 2  # the next incarnation
            assert rt.passivate_idle() == 1
            assert passive(counter)
            assert counter.update_state({"n": 3}).n == 3  # activated
        finally:
            release.set()
        assert counter.modify(lambda s: s.update(n=s.n + 1)).n == 4
        assert rt.passivate_idle() == 1
        assert (counter.get_state().n, counter.version) == (4, 4)


def test_an_actor_awaiting_an_async_hook_is_not_passivated(runtime: Runtime) -> None:
    entered = threading.Event()
    waiting: dict[str, Any] = {}

    async def observer(old: Any, new: Any) -> None:
        waiting["event"] = asyncio.Event()
        waiting["loop"] = asyncio.get_running_loop()
        entered.set()
        await asyncio.wait_for(waiting["event"].wait(), 10)

    counter = StateManager({"n": 0}, runtime=runtime)
    counter.add_observer(observer)
    reply = counter.request_update({"n": 1})
    assert entered.wait(5)
    try:
        assert runtime.passivate_idle() == 0  # busy: it awaits its hook
        assert counter.get_state().n == 1  # published before the observer runs
    finally:
        waiting["loop"].call_soon_threadsafe(waiting["event"].set)
    assert reply.result(5).n == 1
    assert runtime.passivate_idle() == 1
    assert counter.get_state().n == 1


@pytest.mark.parametrize("seed", [11])
def test_shutdown_while_actors_are_passivated_and_activated_answers_every_request(
    inner_store: Any, clock: ManualClock, seed: int, tmp_path: Path
) -> None:
    """Requests pipelined to a few actors while another thread passivates
    them (sweeps, ``max_active`` pressure, ``passivate_idle``) and the runtime
    shuts down: a clean report, the threads back, every request answered,
    and (with SQLite) every request answered with success is in the store."""
    before = threading.active_count()
    rng = random.Random(seed)
    runtime = Runtime(
        "closing", store=inner_store, timer=clock, idle_after=1, max_active=2, default_timeout=10
    )
    managers = [StateManager({"n": 0}, runtime=runtime, name=f"m{i}") for i in range(6)]
    for manager in managers:
        manager.update_state({"n": 0})
    done = threading.Event()
    threads = Threads()

    def passivate() -> None:
        while not done.is_set():
            runtime.passivate_idle()
            clock.advance(1)  # a sweep

    threads.start(passivate)
    sent: list[tuple[int, Any]] = []
    try:
        for _ in range(200):
            i = rng.randrange(len(managers))
            sent.append((i, managers[i].request_modify(lambda s: s.update(n=s.n + 1))))
        report = runtime.shutdown(timeout=10)
    finally:
        done.set()
        threads.join()
    assert report.clean, report.describe()
    succeeded = [0] * len(managers)
    for i, reply in sent:
        assert reply.done()
        try:
            reply.result(0)
        except ActorStopped:
            continue
        succeeded[i] += 1
    assert threading.active_count() <= before
    if isinstance(inner_store, SQLiteStore):
        reopened = SQLiteStore(inner_store.path)
        with Runtime("reopened", store=reopened) as again:
            found = [StateManager({"n": 0}, runtime=again, name=f"m{i}") for i in range(6)]
            assert [m.get_state().n for m in found] == succeeded


# -- stopping -------------------------------------------------------------------------


def pause_after_is_running(
    lifecycle: Any, thread: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, Any]:
    """Make ``lifecycle.is_running``, called on the thread named ``thread``,
    pause (up to 0.3 s) right after it answers: the window in which a
    stop has decided whether an incarnation is running and not yet closed
    the mailbox. Returns the events: answered, and go on. (Patched on the
    class, for this lifecycle alone: a lifecycle has no ``__dict__``.)"""
    answered, go_on = threading.Event(), threading.Event()
    real = type(lifecycle).is_running

    def is_running(self: Any) -> bool:
        running: bool = real(self)
        if self is lifecycle and threading.current_thread().name == thread:
            answered.set()
            go_on.wait(0.3)
        return running

    monkeypatch.setattr(type(lifecycle), "is_running", is_running)
    return answered, go_on


def test_a_stop_racing_a_passivation_still_stops_the_actor_and_releases_its_name(
    runtime: Runtime, store: GatedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop that does not wait (`RowMachines` stops its idle actors so, a
    supervisor that gives up stops the siblings so) decides that the actor
    runs, and a passivation ends that incarnation before the stop closes the
    mailbox: the actor must still count as stopped, and its name be given
    back to the store, so that another runtime can take it."""
    counter = StateManager({"n": 0}, runtime=runtime, name="counter")
    counter.update_state({"n": 1})
    answered, go_on = pause_after_is_running(counter._cell.lifecycle, "stopper", monkeypatch)
    threads = Threads()
    threads.start(lambda: counter._stop("idle", 5.0, wait=False), name="stopper")
    try:
        assert answered.wait(5)
        runtime.passivate_idle()  # in the window (or refused, once the stop has closed it)
    finally:
        go_on.set()
        threads.join()
    assert counter._cell.stopped.wait(5), "the stopped actor never counted as stopped"
    with Runtime("other", store=store) as other:
        again = StateManager({"n": 0}, runtime=other, name="counter")
        assert again.get_state().n == 1


def test_a_stop_racing_an_activation_leaves_no_incarnation_running(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A passivated actor is stopped without waiting while a request
    activates it: the stop decided that nothing runs, so nothing may start
    after it (or the actor would commit after it counted as stopped). The
    request is refused, or handled before the stop: never lost."""
    counter = StateManager({"n": 0}, runtime=runtime, name="counter")
    counter.update_state({"n": 1})
    assert runtime.passivate_idle() == 1
    answered, go_on = pause_after_is_running(counter._cell.lifecycle, "stopper", monkeypatch)
    threads = Threads()
    threads.start(lambda: counter._stop("idle", 5.0, wait=False), name="stopper")
    try:
        assert answered.wait(5)
        reply = counter.request_update({"n": 2})  # activates it, in the window
    finally:
        go_on.set()
        threads.join()
    with pytest.raises(ActorStopped):
        reply.result(5)
    lifecycle = counter._cell.lifecycle
    assert not lifecycle.is_running()
    assert lifecycle.wait_stopped(time.monotonic() + 5)
    assert counter.get_state().n == 1


# -- memory ---------------------------------------------------------------------------


def test_memory_does_not_grow_with_activations(tmp_path: Path) -> None:
    """Machines coming and going under ``max_active`` on a SQLiteStore: once
    each has been passivated and activated a few times, 400 more activations
    leave memory where it was (what one activation allocates, the passivation
    after it gives back: the incarnation, the recovered snapshot, the store's
    recovery report, which is one per name and replaced)."""
    store = SQLiteStore(tmp_path / "many.db", durability="batched")
    tracemalloc.start()
    try:
        with Runtime("many", store=store, max_active=4) as runtime:
            machines = [
                StateMachine("a", TOGGLE, runtime=runtime, data={"blob": "x" * 10_000})
                for _ in range(20)
            ]

            def rounds(count: int) -> None:
                for i in range(count):
                    for machine in machines:
                        machine.transition("b" if i % 2 == 0 else "a")

            rounds(4)
            gc.collect()
            baseline = tracemalloc.get_traced_memory()[0]
            activations = runtime.stats().activations
            rounds(20)
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - baseline
            activations = runtime.stats().activations - activations
    finally:
        tracemalloc.stop()
    assert activations >= 20 * (20 - 5)  # each round activates all but the 4 or 5 active
    assert grown < 64_000, f"{grown:,} bytes more after {activations} activations"


def test_a_passivated_sibling_waits_for_its_groups_restart(
    store: GatedStore, clock: ManualClock
) -> None:
    """Under ``one_for_all`` with a backoff, a crash restarts every sibling
    together once the backoff is over; a sibling that was passivated waits
    for that restart too: a request sent to it meanwhile does not activate it
    on its own, ahead of its group."""
    with Runtime("group", store=store, timer=clock, idle_after=100, default_timeout=10) as rt:
        supervisor = Supervisor(
            "all",
            strategy="one_for_all",
            runtime=rt,
            backoff=Backoff(min=10, max=10, jitter=0),
            within=1000,
        )
        options = {"runtime": rt, "supervisor": supervisor, "on_error": "restart"}
        crashing = StateManager({"n": 0}, name="crashing", **options)
        sibling = StateManager({"n": 0}, name="sibling", **options)
        crashing.update_state({"n": 1})
        sibling.update_state({"n": 1})
        assert rt.passivate_idle() == 2

        def boom(state: Any) -> Any:
            raise RuntimeError("boom")

        with pytest.raises(ActorCrashed):
            crashing.modify(boom)  # both restart in 10 s
        answered = threading.Event()
        reply = sibling.request_update({"n": 2})
        reply.add_done_callback(lambda _: answered.set())
        assert not answered.wait(0.3), "the sibling ran before its group restarted"
        clock.advance(10)
        assert reply.result(5).n == 2
        assert (crashing.restarts, sibling.restarts) == (1, 1)
        assert crashing.get_state().n == 1


def test_stopped_actors_leave_nothing_behind_in_a_passivating_runtime(tmp_path: Path) -> None:
    """A runtime that passivates tracks its active actors; one that stops for
    good leaves that list too, so a stopped actor whose handle is dropped
    takes its snapshot with it (100 machines of 50 KB: 5 MB), as it does in a
    runtime that does not passivate."""
    store = SQLiteStore(tmp_path / "stopped.db")
    gc.collect()
    tracemalloc.start()
    try:
        with Runtime("stopping", store=store, max_active=1000) as runtime:
            baseline = tracemalloc.get_traced_memory()[0]
            for i in range(100):
                machine = StateMachine(
                    "a", TOGGLE, runtime=runtime, data={"blob": "x" * 50_000 + str(i)}
                )
                machine.transition("b")
                machine.stop()
            del machine
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert held < 2_000_000, f"{held:,} bytes still held for 100 stopped machines"
