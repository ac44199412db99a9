"""Shutdown: one deadline for all the actors, a report of those it gave up on,
an answer for every request, and no thread left behind."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support import Workers, bump, join_new_threads

from stateward.actors import (
    ActorCrashed,
    ActorStopped,
    DeadlineExceeded,
    Reply,
    Runtime,
    ShutdownIncomplete,
    ShutdownReport,
    StateManager,
    Supervisor,
)
from stateward.actors._lifecycle import Lifecycle
from stateward.actors._supervision import Child
from stateward.core import ImmutableState

#: Every behaviour here holds on each host (thread per actor, and pooled).
pytestmark = pytest.mark.usefixtures("each_host")

#: The bound on every wait that is expected to succeed, in seconds.
WAIT = 10.0


def holding(entered: threading.Event, release: threading.Event) -> Callable[..., ImmutableState]:
    def hold(state: ImmutableState) -> ImmutableState:
        entered.set()
        assert release.wait(30), "the test never released the actor"
        return state.update(n=state.n + 100)

    return hold


@pytest.fixture
def releases() -> Iterator[list[threading.Event]]:
    """Events that hold actors busy; all set at teardown, whatever happened."""
    events: list[threading.Event] = []
    yield events
    for event in events:
        event.set()


def test_shutdown_waits_its_timeout_in_total_and_reports_the_actors_it_abandoned(
    releases: list[threading.Event],
) -> None:
    # Eight actors busy for longer than the timeout: waiting the timeout per
    # actor would take 8 s; the bound leaves room for a loaded machine.
    count, timeout = 8, 1.0
    before = set(threading.enumerate())
    runtime = Runtime("busy", default_timeout=30.0)
    actors = [StateManager({"n": 0}, name=f"busy{i}", runtime=runtime) for i in range(count)]
    running: list[Reply[ImmutableState]] = []
    for actor in actors:
        entered, release = threading.Event(), threading.Event()
        releases.append(release)
        running.append(actor.request_modify(holding(entered, release)))
        assert entered.wait(10)
    queued = [actor.request_modify(bump) for actor in actors for _ in range(3)]

    started = time.monotonic()
    report = runtime.shutdown(timeout=timeout)
    elapsed = time.monotonic() - started

    assert elapsed < timeout + 2.0, f"shutdown took {elapsed:.2f} s"
    assert isinstance(report, ShutdownReport)
    assert sorted(report.abandoned) == sorted(a.name for a in actors)
    assert report.crashed == () and not report.clean and report.timeout == timeout
    with pytest.raises(ShutdownIncomplete, match=r"abandoned 8 actor\(s\).*busy0") as caught:
        report.check()
    assert caught.value.report is report
    # Every queued request already has its answer: none waits for its timeout.
    for reply in queued:
        assert reply.done()
        error = reply.exception(timeout=0)
        assert isinstance(error, ActorStopped)
        assert "runtime 'busy' shut down" in str(error)
        assert "still busy when the 1 s given to stop ran out" in str(error)
    assert not any(actor.alive for actor in actors)
    # What they were running when abandoned commits nothing, and says so.
    for release in releases:
        release.set()
    for reply in running:
        error = reply.exception(timeout=10)
        assert isinstance(error, ActorStopped)
        assert "nothing of that request was committed" in str(error)
    assert all(actor.get_state().n == 0 for actor in actors)
    assert join_new_threads(before) == []
    assert runtime.shutdown(timeout=1.0).clean  # again: nothing left to do


def test_an_actor_that_crashes_while_stopping_answers_its_queue_at_once(
    monkeypatch: pytest.MonkeyPatch, releases: list[threading.Event]
) -> None:
    before = set(threading.enumerate())
    asked = threading.Event()
    original = Lifecycle.request_stop

    def noting(self: Lifecycle, reason: str, *, terminal: bool = True) -> None:
        original(self, reason, terminal=terminal)
        if self.name == "fragile":
            asked.set()

    monkeypatch.setattr(Lifecycle, "request_stop", noting)
    runtime = Runtime("crashy", default_timeout=30.0)
    fragile = StateManager({"n": 0}, name="fragile", runtime=runtime, on_error="restart")
    steady = StateManager({"n": 0}, name="steady", runtime=runtime)
    entered, release = threading.Event(), threading.Event()
    releases.append(release)

    def crash_when_released(state: ImmutableState) -> ImmutableState:
        entered.set()
        assert release.wait(30)
        raise RuntimeError("lost the connection while draining")

    crashing = fragile.request_modify(crash_when_released)
    assert entered.wait(10)
    behind = [fragile.request_modify(bump) for _ in range(3)]
    steady_replies = [steady.request_modify(bump) for _ in range(3)]
    reports: list[ShutdownReport] = []
    workers = Workers()
    started = time.monotonic()
    workers.start(lambda: reports.append(runtime.shutdown(timeout=20.0)))
    assert asked.wait(10)  # its stop request is queued behind the others
    release.set()  # now it crashes, while stopping
    workers.join(30)
    elapsed = time.monotonic() - started

    assert elapsed < 10.0, f"shutdown waited {elapsed:.2f} s for an actor that had crashed"
    (report,) = reports
    assert report.crashed == ("fragile",) and report.abandoned == ()
    assert isinstance(crashing.exception(timeout=0), ActorCrashed)
    for reply in behind:
        error = reply.exception(timeout=0)
        assert isinstance(error, ActorStopped)
        assert "crashed while stopping" in str(error)
        assert "lost the connection" in str(error)
    assert fragile.restarts == 0  # never restarted during shutdown
    assert [r.result(timeout=0).n for r in steady_replies] == [1, 2, 3]  # drained
    assert join_new_threads(before) == []


def test_supervisor_stop_shares_one_deadline_across_its_subtree(
    releases: list[threading.Event],
) -> None:
    with Runtime("tree", default_timeout=30.0) as runtime:
        top = Supervisor("top", runtime=runtime)
        inner = Supervisor("inner", parent=top)
        busy = [
            StateManager({"n": 0}, name=f"t{i}", runtime=runtime, supervisor=sup)
            for i, sup in enumerate([top, inner, inner, top])
        ]
        idle = StateManager({"n": 0}, name="idle", runtime=runtime, supervisor=inner)
        for actor in busy:
            entered, release = threading.Event(), threading.Event()
            releases.append(release)
            actor.request_modify(holding(entered, release))
            assert entered.wait(10)
        idle_reply = idle.request_modify(bump)
        started = time.monotonic()
        report = top.stop(timeout=0.5)
        elapsed = time.monotonic() - started
        assert elapsed < 0.5 + 2.0, f"stop took {elapsed:.2f} s"
        assert sorted(report.abandoned) == ["t0", "t1", "t2", "t3"]
        assert idle_reply.result(timeout=0).n == 1  # it drained in time
        assert not idle.alive
        for release in releases:  # the abandoned turns end, so shutdown need not wait for them
            release.set()


def test_an_async_hook_past_its_deadline_is_cancelled_and_its_thread_ends() -> None:
    before = set(threading.enumerate())
    entered, cancelled = threading.Event(), threading.Event()
    outcome: list[str] = []

    async def await_forever(state: ImmutableState) -> ImmutableState:
        entered.set()
        try:
            await asyncio.Event().wait()  # nobody ever sets it
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        finally:
            cancelled.set()
        return state  # pragma: no cover - never reached

    with Runtime("async-deadline", default_timeout=10.0) as runtime:
        sup = Supervisor("s", runtime=runtime, max_restarts=10, within=60.0)
        counter = StateManager(
            {"n": 0}, name="waiter", runtime=runtime, supervisor=sup, deadline=0.2
        )
        with pytest.raises(ActorCrashed) as caught:
            counter.modify(await_forever)
        assert isinstance(caught.value.cause, DeadlineExceeded)
        assert cancelled.wait(5), "the coroutine was never cancelled"
        assert outcome == ["cancelled"]
        assert counter.modify(bump).n == 1  # the next incarnation took over
        assert counter.restarts == 1
        report = runtime.shutdown(timeout=5.0)
        assert report.clean, report.describe()
    assert join_new_threads(before) == []


def test_shutdown_cancels_an_async_hook_of_an_abandoned_actor() -> None:
    before = set(threading.enumerate())
    entered, cancelled = threading.Event(), threading.Event()

    async def await_forever(state: ImmutableState) -> ImmutableState:
        entered.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        return state  # pragma: no cover - never reached

    runtime = Runtime("async-abandoned", default_timeout=10.0)
    counter = StateManager({"n": 0}, name="stuck", runtime=runtime)
    running = counter.request_modify(await_forever)
    assert entered.wait(10)
    report = runtime.shutdown(timeout=0.3)
    assert report.abandoned == ("stuck",)
    assert cancelled.wait(5)
    assert isinstance(running.exception(timeout=5), ActorStopped)
    assert join_new_threads(before) == []


def test_an_actor_that_crashes_while_its_handle_stops_it_answers_at_once(
    monkeypatch: pytest.MonkeyPatch, releases: list[threading.Event]
) -> None:
    asked = threading.Event()
    original = Lifecycle.request_stop

    def noting(self: Lifecycle, reason: str, *, terminal: bool = True) -> None:
        original(self, reason, terminal=terminal)
        asked.set()

    monkeypatch.setattr(Lifecycle, "request_stop", noting)
    with Runtime("handle-stop", default_timeout=30.0) as runtime:
        fragile = StateManager({"n": 0}, name="fragile", runtime=runtime, on_error="restart")
        entered, release = threading.Event(), threading.Event()
        releases.append(release)

        def crash_when_released(state: ImmutableState) -> ImmutableState:
            entered.set()
            assert release.wait(30)
            raise RuntimeError("lost the connection while draining")

        crashing = fragile.request_modify(crash_when_released)
        assert entered.wait(10)
        behind = [fragile.request_modify(bump) for _ in range(3)]
        workers = Workers()
        started = time.monotonic()
        workers.start(lambda: fragile.stop(timeout=20.0))
        assert asked.wait(10)  # its stop request is queued behind the others
        release.set()
        workers.join(30)
        elapsed = time.monotonic() - started
        assert elapsed < 10.0, f"stop() waited {elapsed:.2f} s for an actor that had crashed"
        assert isinstance(crashing.exception(timeout=0), ActorCrashed)
        for reply in behind:
            error = reply.exception(timeout=0)
            assert isinstance(error, ActorStopped)
            assert "crashed while stopping" in str(error)
        assert fragile.restarts == 0 and not fragile.alive


def test_at_interpreter_exit_busy_actors_share_one_deadline() -> None:
    script = textwrap.dedent(
        """
        import logging
        import threading

        import stateward.actors._default as runtime_module
        from stateward.actors import StateManager

        logging.basicConfig()
        runtime_module.EXIT_SHUTDOWN_TIMEOUT = 0.5
        never = threading.Event()
        for i in range(4):
            entered = threading.Event()

            def hold(state, entered=entered):
                entered.set()
                never.wait(60)
                return state

            StateManager({"n": 0}, name=f"busy{i}").request_modify(hold)
            assert entered.wait(10)
        """
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    # Waiting per actor took 4 x 5 s; one shared deadline takes 0.5 s.
    assert elapsed < 5.0, f"the interpreter took {elapsed:.2f} s to exit"
    assert "abandoned 4 actor(s)" in result.stderr


def test_a_negative_stop_timeout_is_refused_and_changes_nothing(runtime: Runtime) -> None:
    counter = StateManager({"n": 0}, runtime=runtime)
    with pytest.raises(ValueError, match=r"'timeout' must be a finite number of seconds >= 0"):
        runtime.shutdown(timeout=-1)
    with pytest.raises(ValueError, match=r"shutdown_timeout must be >= 0 seconds"):
        Supervisor("s", runtime=runtime, shutdown_timeout=-0.5)
    sup = Supervisor("t", runtime=runtime)
    with pytest.raises(ValueError, match=r"stop timeout must be >= 0 seconds, got -2"):
        sup.stop(timeout=-2)
    assert not runtime.closed and counter.modify(bump).n == 1


def test_shutting_down_many_children_finds_each_without_scanning_the_others(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopping a supervisor's children newest first must not search its list of
    children from the front for each one (quadratic in the count: 100,000
    actors took minutes to shut down). Counted as comparisons between children,
    not timed."""
    orders = Supervisor("orders", runtime=runtime)
    managers = [StateManager({"n": 0}, runtime=runtime, supervisor=orders) for _ in range(200)]
    compared = 0

    def counting_eq(self: Child, other: object) -> bool:
        nonlocal compared
        compared += 1
        return self is other

    monkeypatch.setattr(Child, "__eq__", counting_eq)
    report = runtime.shutdown(10)
    assert report.clean and not any(m.alive for m in managers)
    assert compared < len(managers), f"{compared} comparisons to stop {len(managers)} children"


def test_a_watched_request_a_fenced_turn_takes_after_an_abandon_is_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Abandoning an actor fences its incarnation before it closes the mailbox
    and retires it. A request that its turn takes in between (the hung request
    returned, and the turn went on with the next) can no longer commit: it must
    be answered ActorStopped, never left for its caller to time out."""
    runtime = Runtime("abandon-window", default_timeout=WAIT)
    manager = StateManager({"n": 0}, runtime=runtime, deadline=60.0)
    first_ran, release_first, second_ran = threading.Event(), threading.Event(), threading.Event()

    def first(state: ImmutableState) -> ImmutableState:
        first_ran.set()
        assert release_first.wait(WAIT)
        return state.update(n=1)

    def second(state: ImmutableState) -> ImmutableState:
        second_ran.set()
        return state.update(n=2)

    cell = manager._cell
    cls = type(cell.mailbox)
    original_close = cls.close

    def close_after_the_next_request_ran(self: Any, reason: str) -> None:
        if self is cell.mailbox and not second_ran.is_set():
            release_first.set()  # the fenced run goes on with the next request
            assert second_ran.wait(WAIT)
        original_close(self, reason)

    try:
        one = manager.request_modify(first)
        two = manager.request_modify(second)
        assert first_ran.wait(WAIT)
        monkeypatch.setattr(cls, "close", close_after_the_next_request_ran)
        cell.lifecycle.abandon("given up by the test")
        monkeypatch.setattr(cls, "close", original_close)
        for reply in (one, two):
            error = reply.exception(timeout=WAIT)
            assert isinstance(error, ActorStopped), repr(error)
        assert manager.get_state().n == 0  # neither committed
    finally:
        release_first.set()
        runtime.shutdown(timeout=WAIT)
