"""Waiting for a commit (``wait_until`` / ``await_until``) and watching commits
(``changes()``) on every handle, without ever making the actor wait.

Every wait here is bounded: a thread is joined within seconds, an asyncio
test runs under ``asyncio.timeout``. Where a test needs the watcher to be
subscribed before the commits it expects, it subscribes on the test's own
thread (``changes()`` returns subscribed), or lets an asyncio task run up to
its first suspension (``await asyncio.sleep(0)``: a task awaiting
``await_until`` suspends only once subscribed); tests that start a waiting
thread assert what holds whenever the thread subscribes.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import Workers, bump

from stateward.actors import (
    ActorStopped,
    ActorTimeout,
    ChangeStream,
    ConfigManager,
    ManualClock,
    Runtime,
    SelfCallError,
    StateMachine,
    StateManager,
    WaitTimeout,
)
from stateward.actors.stores import SQLiteStore
from stateward.core import (
    ArgumentTypeError,
    ArgumentValueError,
    ConfigChange,
    ImmutableState,
    MachineSnapshot,
)

pytestmark = pytest.mark.usefixtures("each_host")

#: a -> b -> c -> a, so that b is passed through on the way to c.
CYCLE = {"a": ["b"], "b": ["c"], "c": ["a"]}
#: How long a test waits for a thread, or an asyncio test runs, at most.
BOUND = 10.0


def watched(handle: Any) -> int:
    """How many watches the actor offers its commits to now (none: its
    commit path is what it was before any watcher came)."""
    hub = handle._cell.watchers
    if hub is None:
        return 0
    assert hub.installed == bool(hub.watches)
    assert (hub in handle._cell.observers) == hub.installed
    return len([ref for ref in hub.watches if ref() is not None])


@pytest.fixture
def machine(runtime: Runtime) -> StateMachine:
    return StateMachine("a", CYCLE, name="m", runtime=runtime)


# -- wait_until: at once, later, predicates ---------------------------------------------------


def test_wait_until_returns_the_current_snapshot_at_once_when_it_matches(
    runtime: Runtime, each_host: str
) -> None:
    machine = StateMachine("a", CYCLE, runtime=runtime)
    counter = StateManager({"n": 2}, runtime=runtime)
    config = ConfigManager({"debug": True}, runtime=runtime)
    assert runtime.workers == (16 if each_host == "pool" else 0)

    snapshot = machine.wait_until("a", timeout=0)
    assert isinstance(snapshot, MachineSnapshot) and snapshot is machine.snapshot
    assert counter.wait_until(lambda state: state.n == 2, timeout=0) == ImmutableState(n=2)
    change = config.wait_until(lambda change: change.config.debug, timeout=0)
    assert isinstance(change, ConfigChange) and change.version == 0

    # Nothing subscribed, nothing made: an idle cell stays as small as it was.
    for handle in (machine, counter, config):
        assert handle._cell.watchers is None and handle._cell.observers == ()
        if each_host == "pool":  # (a thread of its own is noted in the side object)
            assert handle._cell._extra is None


def test_wait_until_returns_the_first_commit_that_matches_made_by_another_thread(
    machine: StateMachine, workers: Workers
) -> None:
    asked = threading.Event()

    def not_yet_c(snapshot: MachineSnapshot) -> bool:
        asked.set()  # the first call tests the current snapshot, on this thread
        return snapshot.state == "c"

    def commit() -> None:
        assert asked.wait(BOUND)
        machine.transition("b")
        machine.transition("c")
        machine.transition("a")

    workers.start(commit)
    found = machine.wait_until(not_yet_c, timeout=BOUND)
    workers.join(BOUND)
    # Whenever the waiter subscribed, c was committed once: at version 2.
    assert (found.state, found.version) == ("c", 2)
    assert machine.current_state == "a" and watched(machine) == 0


def test_a_state_passed_through_is_not_missed_by_an_awaiting_task(
    machine: StateMachine, workers: Workers
) -> None:
    async def main() -> MachineSnapshot:
        async with asyncio.timeout(BOUND):
            task = asyncio.create_task(machine.await_until("b"))
            await asyncio.sleep(0)  # the task runs until it awaits: it is subscribed
            assert watched(machine) == 1
            # b lasts one commit: c, then a, are committed right after it.
            workers.start(lambda: [machine.transition(t) for t in ("b", "c", "a")])
            found = await task
            workers.join(BOUND)
            return found

    found = asyncio.run(main())
    assert (found.state, found.version) == ("b", 1)
    assert machine.current_state == "a" and watched(machine) == 0


def test_await_until_takes_a_predicate_of_a_managers_state(
    runtime: Runtime, workers: Workers
) -> None:
    counter = StateManager({"n": 0}, runtime=runtime)

    async def main() -> ImmutableState:
        async with asyncio.timeout(BOUND):
            task = asyncio.create_task(counter.await_until(lambda state: state.n >= 3))
            await asyncio.sleep(0)
            workers.start(lambda: [counter.modify(bump) for _ in range(5)])
            state = await task
            workers.join(BOUND)
            return state

    assert asyncio.run(main()) == ImmutableState(n=3)  # the first that matches, not the last


def test_wait_until_on_a_config_sees_its_changes(runtime: Runtime, workers: Workers) -> None:
    config = ConfigManager({"mode": "blue"}, runtime=runtime)
    asked = threading.Event()

    def green(change: ConfigChange) -> bool:
        asked.set()
        return change.config.mode == "green"

    def commit() -> None:
        assert asked.wait(BOUND)
        config.update_config({"mode": "green"}, {"by": "deploy"})

    workers.start(commit)
    change = config.wait_until(green, timeout=BOUND)
    workers.join(BOUND)
    assert change.version == 1 and change.metadata.by == "deploy"
    assert change.changes == ImmutableState(mode="green")


def test_a_predicate_that_raises_fails_the_waiter_alone(runtime: Runtime, workers: Workers) -> None:
    counter = StateManager({"n": 0}, runtime=runtime)
    asked = threading.Event()

    def picky(state: ImmutableState) -> bool:
        asked.set()
        if state.n == 1:
            raise LookupError("no such n")
        return False

    def commit() -> None:
        assert asked.wait(BOUND)
        assert counter.update_state({"n": 1}).n == 1  # the committer is answered as usual

    workers.start(commit)
    with pytest.raises(LookupError, match="no such n"):
        counter.wait_until(picky, timeout=BOUND)
    workers.join(BOUND)
    assert counter.modify(bump).n == 2 and counter.alive
    stats = counter.stats()
    assert stats.failures == 0 and stats.hook_errors == 0 and counter.restarts == 0
    assert watched(counter) == 0


# -- timeouts and stops -------------------------------------------------------------------------


def test_wait_until_times_out_with_an_actor_timeout_that_says_what_it_waited_for(
    machine: StateMachine,
) -> None:
    machine.transition("b")
    with pytest.raises(WaitTimeout) as caught:
        machine.wait_until("c", timeout=0.05)
    error = caught.value
    assert isinstance(error, ActorTimeout) and isinstance(error, TimeoutError)
    assert (error.actor, error.message, error.seconds, error.version) == (
        "m",
        "wait_until('c')",
        0.05,
        1,
    )
    assert not error.started
    assert "'m'" in str(error) and "wait_until('c')" in str(error) and "timeout=" in str(error)
    assert watched(machine) == 0
    assert machine.transition("c").state == "c"  # nothing of the wait is left behind


def test_await_until_times_out_and_obeys_asyncio_timeout(machine: StateMachine) -> None:
    async def main() -> None:
        async with asyncio.timeout(BOUND):
            with pytest.raises(WaitTimeout):
                await machine.await_until("c", timeout=0.05)
            assert watched(machine) == 0
            with pytest.raises(TimeoutError) as caught:
                async with asyncio.timeout(0.05):
                    await machine.await_until("c", timeout=BOUND)
            assert not isinstance(caught.value, WaitTimeout)  # asyncio's own
            assert watched(machine) == 0  # the cancelled wait unsubscribed

    asyncio.run(main())


def test_the_runtime_default_timeout_bounds_a_wait_given_none() -> None:
    runtime = Runtime("impatient", default_timeout=0.05)
    try:
        machine = StateMachine("a", CYCLE, runtime=runtime)
        with pytest.raises(WaitTimeout) as caught:
            machine.wait_until("b")
        assert caught.value.seconds == 0.05
        with pytest.raises(WaitTimeout):
            next(iter(machine.changes()))
    finally:
        runtime.shutdown(BOUND).check()


def test_a_waiting_thread_learns_at_once_that_the_actor_stopped(
    machine: StateMachine, workers: Workers
) -> None:
    asked = threading.Event()
    errors: list[BaseException] = []

    def never(snapshot: MachineSnapshot) -> bool:
        asked.set()
        return False

    def wait() -> None:
        try:
            machine.wait_until(never, timeout=60)  # far longer than the join below
        except ActorStopped as exc:
            errors.append(exc)

    workers.start(wait)
    assert asked.wait(BOUND)
    machine.stop()
    workers.join(BOUND)
    assert len(errors) == 1 and "'m'" in str(errors[0]) and "stop()" in str(errors[0])
    with pytest.raises(ActorStopped):  # and a wait that starts after the stop
        machine.wait_until("b", timeout=BOUND)
    assert machine.wait_until("a").state == "a"  # the last committed state still matches


def test_an_awaiting_task_learns_at_once_that_the_actor_stopped(
    machine: StateMachine, workers: Workers
) -> None:
    async def main() -> None:
        async with asyncio.timeout(BOUND):
            task = asyncio.create_task(machine.await_until("c", timeout=60))
            await asyncio.sleep(0)
            assert watched(machine) == 1
            workers.start(machine.stop)
            with pytest.raises(ActorStopped, match="'m'"):
                await task
            workers.join(BOUND)

    asyncio.run(main())


# -- change streams -------------------------------------------------------------------------------


def test_a_stream_gives_each_commit_in_order_to_a_consumer_that_keeps_up(
    machine: StateMachine,
) -> None:
    with machine.changes(timeout=BOUND) as stream:
        assert isinstance(stream, ChangeStream) and stream.actor == "m"
        for target in ("b", "c", "a"):
            committed = machine.transition(target)
            assert next(stream) is committed and stream.missed == 0
    assert stream.closed and watched(machine) == 0


def test_a_slow_consumer_skips_to_the_latest_and_is_told_how_many_it_missed(
    runtime: Runtime, workers: Workers
) -> None:
    counter = StateManager({"n": 0}, runtime=runtime)
    stream = counter.changes(timeout=BOUND)
    took_first = threading.Event()
    go_on = threading.Event()
    seen: list[tuple[int, int]] = []

    def consume() -> None:
        for state in stream:
            seen.append((state.n, stream.missed))
            if len(seen) == 1:
                took_first.set()
                assert go_on.wait(BOUND)  # paused while the actor commits on
            if state.n == 11:
                return

    workers.start(consume)
    counter.modify(bump)
    assert took_first.wait(BOUND)
    for _ in range(10):  # never waits for the paused consumer
        counter.modify(bump)
    go_on.set()
    workers.join(BOUND)
    assert seen == [(1, 0), (11, 9)]
    assert stream.missed_total == 9
    stream.close()


def test_async_for_takes_the_commits_a_thread_makes(
    machine: StateMachine, workers: Workers
) -> None:
    versions: list[int] = []
    missed: list[int] = []

    async def main() -> None:
        async with asyncio.timeout(BOUND):
            async with machine.changes(timeout=BOUND) as stream:
                workers.start(lambda: [machine.transition(t) for t in ("b", "c", "a") * 10])
                async for snapshot in stream:
                    versions.append(snapshot.version)
                    missed.append(stream.missed)
                    if snapshot.version == 30:
                        break
            workers.join(BOUND)

    asyncio.run(main())
    assert versions == sorted(set(versions)) and versions[-1] == 30
    assert len(versions) + sum(missed) == 30  # every commit was given or counted missed
    assert watched(machine) == 0


def test_a_stream_ends_after_the_last_commit_when_the_actor_stops(
    machine: StateMachine, workers: Workers
) -> None:
    stream = machine.changes(timeout=60)  # the end, not a timeout, ends it
    got: list[str] = []

    def consume() -> None:
        got.extend(snapshot.state for snapshot in stream)

    machine.transition("b")
    workers.start(consume)
    machine.transition("c")
    machine.stop()
    workers.join(BOUND)
    assert got[-1] == "c" and set(got) <= {"b", "c"}
    assert len(got) + stream.missed_total == 2
    assert list(stream) == []
    with pytest.raises(ActorStopped):
        machine.changes()


def test_an_async_stream_ends_when_the_actor_stops(runtime: Runtime, workers: Workers) -> None:
    config = ConfigManager({"v": 0}, runtime=runtime)

    async def main() -> list[int]:
        async with asyncio.timeout(BOUND):
            stream = config.changes(timeout=60)
            config.update_config({"v": 1})
            workers.start(config.stop)
            return [change.version async for change in stream]

    assert asyncio.run(main()) == [1]
    workers.join(BOUND)


def test_a_stream_wait_times_out_and_the_stream_stays_subscribed(
    machine: StateMachine,
) -> None:
    stream = machine.changes(timeout=0.05)
    with pytest.raises(WaitTimeout, match=r"changes\(\)"):
        next(stream)
    machine.transition("b")
    assert next(stream).state == "b" and stream.missed == 0

    async def main() -> None:
        async with asyncio.timeout(BOUND):
            with pytest.raises(WaitTimeout):
                await anext(stream)
            machine.transition("c")
            assert (await anext(stream)).state == "c"

    asyncio.run(main())
    stream.close()


def test_closing_a_stream_unsubscribes_it_and_stops_its_blocked_consumer(
    machine: StateMachine, workers: Workers
) -> None:
    stream = machine.changes(timeout=60)
    assert watched(machine) == 1
    started = threading.Event()
    got: list[Any] = []

    def consume() -> None:
        started.set()
        got.extend(stream)

    workers.start(consume)
    assert started.wait(BOUND)
    stream.close()  # from another thread than its consumer's
    workers.join(BOUND)
    assert got == [] and stream.closed and watched(machine) == 0
    machine.transition("b")
    assert list(stream) == []
    assert machine._cell.observers == ()  # commits cost what they did before the watch


def test_a_stream_dropped_by_its_consumer_unsubscribes_at_the_next_commit(
    machine: StateMachine, workers: Workers
) -> None:
    def commit_one() -> None:
        machine.transition("b")

    stream = machine.changes(timeout=BOUND)
    workers.start(commit_one)
    for snapshot in stream:
        assert snapshot.state == "b"
        break
    workers.join(BOUND)
    assert watched(machine) == 1  # still referenced: still subscribed
    del stream, snapshot
    gc.collect()
    machine.transition("c")  # the actor drops the dead watch at its next commit
    assert watched(machine) == 0 and machine._cell.observers == ()


def test_user_observers_and_watchers_do_not_disturb_each_other(machine: StateMachine) -> None:
    seen: list[str] = []

    def observer(old: MachineSnapshot, new: MachineSnapshot) -> None:
        seen.append(new.state)

    machine.add_observer(observer)
    with machine.changes(timeout=BOUND) as stream:
        machine.transition("b")
        assert next(stream).state == "b"
    machine.transition("c")
    machine.remove_observer(observer)
    assert seen == ["b", "c"] and machine._cell.observers == ()


# -- passivation ----------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def idle_runtime(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    store = None if request.param == "memory" else SQLiteStore(tmp_path / "actors.db")
    rt = Runtime("idle", store=store, timer=ManualClock(), idle_after=10, default_timeout=10)
    yield rt
    rt.shutdown(timeout=10).check()


def test_streams_and_waits_go_on_across_passivation_and_activation(
    idle_runtime: Runtime, workers: Workers
) -> None:
    machine = StateMachine("a", CYCLE, name="virtual", runtime=idle_runtime)
    machine.transition("b")
    stream = machine.changes(timeout=BOUND)

    async def main() -> MachineSnapshot:
        async with asyncio.timeout(BOUND):
            task = asyncio.create_task(machine.await_until("a"))
            await asyncio.sleep(0)
            assert idle_runtime.passivate_idle() == 1
            assert idle_runtime.stats()["virtual"].passive
            assert machine.wait_until("b").version == 1  # read from the store, not activated
            workers.start(lambda: [machine.transition(t) for t in ("c", "a")])  # activates it
            found = await task
            workers.join(BOUND)
            return found

    found = asyncio.run(main())
    assert (found.state, found.version) == ("a", 3)
    assert not idle_runtime.stats()["virtual"].passive
    assert next(stream).version == 3 and stream.missed == 1
    assert idle_runtime.passivate_idle() == 1  # passivated again, still subscribed
    machine.transition("b")
    assert next(stream).version == 4 and stream.missed == 0
    stream.close()


# -- bad arguments and calls that could never be answered ----------------------------------


def test_bad_arguments_are_refused_at_the_call_and_change_nothing(
    runtime: Runtime, machine: StateMachine
) -> None:
    counter = StateManager({"n": 0}, runtime=runtime)

    with pytest.raises(ArgumentValueError, match="'a', 'b', 'c'"):
        machine.wait_until("paid")
    with pytest.raises(ArgumentTypeError, match="state_or_predicate"):
        machine.wait_until(3)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="Only a state machine"):
        counter.wait_until("a")

    async def wrong(state: Any) -> bool:
        return True

    with pytest.raises(ArgumentTypeError, match="coroutine"):
        counter.wait_until(wrong)
    with pytest.raises(ArgumentValueError, match="timeout"):
        machine.wait_until("b", timeout=-1)
    with pytest.raises(ArgumentTypeError, match="timeout"):
        machine.changes(timeout="soon")  # type: ignore[arg-type]

    async def main() -> None:
        with pytest.raises(ArgumentValueError):
            await machine.await_until("paid")

    asyncio.run(main())
    assert machine._cell.watchers is None and counter._cell.watchers is None
    assert machine.transition("b").version == 1 and counter.modify(bump).n == 1


def test_a_wait_from_the_actors_own_turn_is_refused(runtime: Runtime) -> None:
    counter = StateManager({"n": 0}, runtime=runtime)

    def wait_for_myself(state: ImmutableState) -> ImmutableState:
        counter.wait_until(lambda s: s.n == 5, timeout=BOUND)
        return state

    with pytest.raises(SelfCallError, match="wait_until"):
        counter.modify(wait_for_myself)

    def iterate_myself(state: ImmutableState) -> ImmutableState:
        with counter.changes(timeout=BOUND) as stream:
            next(stream)
        return state

    with pytest.raises(SelfCallError, match="changes"):
        counter.modify(iterate_myself)
    assert counter.modify(bump).n == 1 and watched(counter) == 0


# -- many at once ---------------------------------------------------------------------------------


def test_every_awaiting_task_gets_exactly_the_version_it_awaits(
    runtime: Runtime, workers: Workers
) -> None:
    counter = StateManager({"n": 0}, runtime=runtime)
    count = 50

    async def main() -> list[int]:
        async with asyncio.timeout(BOUND):
            tasks = [
                asyncio.create_task(counter.await_until(lambda s, k=k: s.n == k))
                for k in range(1, count + 1)
            ]
            await asyncio.sleep(0)  # each task runs until it awaits: all subscribed
            assert watched(counter) == count
            workers.start(lambda: [counter.modify(bump) for _ in range(count)])
            found = await asyncio.gather(*tasks)
            workers.join(BOUND)
            return [state.n for state in found]

    # Each value lasted one commit, and each waiter saw it: none was skipped.
    assert asyncio.run(main()) == list(range(1, count + 1))
    assert watched(counter) == 0


@pytest.mark.usefixtures("tiny_switch_interval")
def test_a_stream_accounts_for_every_commit_while_threads_interleave(
    runtime: Runtime, workers: Workers
) -> None:
    """Two committing threads, one consuming: each item's value is newer than
    the last, and items plus missed add up to the commits (2 x 300, fixed)."""
    counter = StateManager({"n": 0}, runtime=runtime)
    per_thread = 300
    stream = counter.changes(timeout=BOUND)
    values: list[int] = []

    def consume() -> None:
        for state in stream:
            values.append(state.n)
            if state.n == 2 * per_thread:
                return

    workers.start(consume)
    for _ in range(2):
        workers.start(lambda: [counter.modify(bump) for _ in range(per_thread)])
    workers.join(BOUND)
    assert values == sorted(set(values)) and values[-1] == 2 * per_thread
    assert len(values) + stream.missed_total == 2 * per_thread
    stream.close()


def test_a_stop_racing_a_subscription_always_ends_the_stream(
    runtime: Runtime, workers: Workers
) -> None:
    """Whichever comes first, a stream subscribed while its actor stops ends
    (or its subscription is refused): none waits for a commit that cannot come."""
    for round_ in range(30):
        machine = StateMachine("a", CYCLE, name=f"racer-{round_}", runtime=runtime)
        ready = threading.Event()

        def stop(machine: StateMachine = machine, ready: threading.Event = ready) -> None:
            ready.wait(BOUND)
            machine.stop()

        workers.start(stop)
        ready.set()
        try:
            stream = machine.changes(timeout=BOUND)
        except ActorStopped:
            pass
        else:
            assert list(stream) == []  # ends at the stop, well before BOUND
        workers.join(BOUND)
