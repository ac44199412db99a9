"""Supervision, modelled on OTP's supervisor suite: restart types, strategies,
intensity and escalation, backoff on a manual clock, fencing of hung handlers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support import TOGGLE, bump

from stateward.actors import (
    ActorCrashed,
    ActorStopped,
    Backoff,
    DeadlineExceeded,
    ManualClock,
    Runtime,
    ShutdownReport,
    StateMachine,
    StateManager,
    Supervisor,
    SupervisorEvent,
    SupervisorGaveUp,
)
from stateward.core import ImmutableState, MachineBuilder

#: Every behaviour here holds on each host (thread per actor, and pooled).
pytestmark = pytest.mark.usefixtures("each_host")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def rt(clock: ManualClock) -> Iterator[Runtime]:
    runtime = Runtime("sup", default_timeout=10.0, timer=clock)
    yield runtime
    runtime.shutdown(timeout=10.0)


def boom(state: ImmutableState) -> ImmutableState:
    raise RuntimeError("boom")


def events_of(runtime: Runtime) -> list[SupervisorEvent]:
    seen: list[SupervisorEvent] = []
    runtime.subscribe(seen.append)
    return seen


def test_by_default_a_hook_error_fails_only_its_request(rt: Runtime) -> None:
    counter = StateManager({"n": 0}, runtime=rt)
    with pytest.raises(RuntimeError, match="boom"):
        counter.modify(boom)
    assert counter.modify(bump).n == 1
    assert counter.restarts == 0
    assert rt.stats().events["failed"] == 0


def test_on_error_restart_crashes_restarts_from_the_last_commit_and_keeps_the_mailbox(
    rt: Runtime,
) -> None:
    starts: list[int] = []
    counter = StateManager(
        {"n": 0}, runtime=rt, on_error="restart", on_start=lambda state: starts.append(state.n)
    )
    assert counter.modify(bump).n == 1
    release, entered = threading.Event(), threading.Event()

    def hold(state: ImmutableState) -> ImmutableState:
        entered.set()
        assert release.wait(10)
        return state.update(n=state.n + 1)

    first = counter.request_modify(hold)
    assert entered.wait(10)
    crashing = counter.request_modify(boom)
    behind = [counter.request_modify(bump) for _ in range(3)]
    release.set()
    assert first.result().n == 2
    with pytest.raises(ActorCrashed) as caught:
        crashing.result()
    assert isinstance(caught.value.cause, RuntimeError)
    assert caught.value.__cause__ is caught.value.cause
    assert "nothing of this request was committed" in str(caught.value).lower()
    assert [r.result().n for r in behind] == [3, 4, 5]  # handled by the new incarnation, in order
    assert counter.restarts == 1
    assert starts == [0, 2]  # on_start ran again, on the last committed state
    stats = counter.stats()
    assert stats.generation == 2 and stats.restarts == 1
    events = rt.stats().events
    assert events["failed"] == 1 and events["restarted"] == 1


def test_refusals_never_crash_even_with_on_error_restart(rt: Runtime) -> None:
    machine = StateMachine("a", {"a": ["b"], "b": []}, runtime=rt, on_error="restart")
    with pytest.raises(ValueError, match="cannot go from 'a' to 'zz'"):
        machine.transition("zz")
    assert machine.restarts == 0


@pytest.mark.parametrize(
    ("restart", "how", "restarted"),
    [
        ("permanent", "crash", True),
        ("transient", "crash", True),
        ("temporary", "crash", False),
        ("permanent", "normal", True),
        ("transient", "normal", False),
        ("temporary", "normal", False),
        ("permanent", "parent", False),
        ("transient", "parent", False),
        ("temporary", "parent", False),
    ],
)
def test_restart_types_against_each_way_of_stopping(
    rt: Runtime, restart: str, how: str, restarted: bool
) -> None:
    sup = Supervisor("s", runtime=rt)
    flow = MachineBuilder("a", TOGGLE)

    @flow.on_enter("b")
    def act(ctx):
        if ctx.payload.get("crash"):
            raise RuntimeError("crash")
        if ctx.payload.get("exit"):
            machine.stop()  # from its own hook: the actor stops on its own

    machine = StateMachine(
        flow, name="child", runtime=rt, supervisor=sup, restart=restart, on_error="restart"
    )
    if how == "crash":
        with pytest.raises(ActorCrashed):
            machine.transition("b", {"crash": True})
    elif how == "normal":
        machine.transition("b", {"exit": True})
    else:
        sup.stop()
    target = "a" if machine.current_state == "b" else "b"
    if restarted:
        assert machine.transition(target).state == target
        assert machine.restarts == 1 and machine.alive
        assert sup.children == ["child"]
    else:
        with pytest.raises(ActorStopped):
            machine.transition(target)
        assert machine.restarts == 0 and not machine.alive
        assert sup.children == []


def _three(rt: Runtime, strategy: str) -> tuple[Supervisor, list[StateManager]]:
    sup = Supervisor("three", strategy=strategy, runtime=rt, max_restarts=5)
    children = [
        StateManager({"n": 0}, name=f"c{i}", runtime=rt, supervisor=sup, on_error="restart")
        for i in range(3)
    ]
    for child in children:
        child.modify(bump)
    return sup, children


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [("one_for_one", [0, 1, 0]), ("one_for_all", [1, 1, 1]), ("rest_for_one", [0, 1, 1])],
)
def test_strategies_restart_the_right_children(
    rt: Runtime, strategy: str, expected: list[int]
) -> None:
    sup, children = _three(rt, strategy)
    with pytest.raises(ActorCrashed):
        children[1].modify(boom)
    for child in children:  # every child answers, restarted or not
        assert child.modify(bump).n == 2
    assert [c.restarts for c in children] == expected
    assert sup.restarts == sum(expected)


def test_one_for_all_keeps_each_siblings_committed_state_and_queue(rt: Runtime) -> None:
    _, children = _three(rt, "one_for_all")
    queued = [children[2].request_modify(bump) for _ in range(50)]
    with pytest.raises(ActorCrashed):
        children[0].modify(boom)
    assert [r.result().n for r in queued] == list(range(2, 52))
    assert children[2].get_state().n == 51
    assert children[2].restarts == 1


def test_passing_the_restart_limit_gives_up_and_escalates_to_a_fatal_failure(
    clock: ManualClock,
) -> None:
    fatal: list[BaseException] = []
    with Runtime("limit", timer=clock, max_restarts=0, fatal_handler=fatal.append) as runtime:
        seen = events_of(runtime)
        sup = Supervisor("s", runtime=runtime, max_restarts=2, within=10.0)
        child = StateManager({"n": 0}, runtime=runtime, supervisor=sup, on_error="restart")
        for _ in range(2):
            with pytest.raises(ActorCrashed):
                child.modify(boom)
        assert child.restarts == 2 and runtime.fatal is None
        with pytest.raises(ActorCrashed):
            child.modify(boom)  # a third restart within 10 s would be one too many
        assert isinstance(runtime.wait_fatal(5), SupervisorGaveUp)
        assert fatal == [runtime.fatal]
        assert sup.gave_up
        with pytest.raises(ActorStopped, match="gave up"):
            child.modify(bump)
        kinds = [(e.kind, e.supervisor) for e in seen if e.kind in ("gave_up", "escalated")]
        assert kinds == [("gave_up", "s"), ("escalated", "s"), ("gave_up", "root")]
        assert runtime.stats().fatal is not None


def test_a_give_up_escalated_to_the_root_is_fatal_at_once_from_the_crashing_turn(
    clock: ManualClock,
) -> None:
    """The crash that makes a supervisor give up is handled on the crashing
    actor's own turn; the root, giving up in turn, stops that supervisor's
    subtree, the crashing actor included. That stop must not wait for the
    turn it runs in (on a pool it waited out the 5 s stop timeout, holding
    a pooled worker): the fatal failure comes at once, well within 2 s."""
    with Runtime("escalate", timer=clock, max_restarts=0) as runtime:
        sup = Supervisor("workers", runtime=runtime, max_restarts=1, within=60.0)
        machine = StateMachine("a", {"a": ["b"], "b": ["a"]}, runtime=runtime)
        child = StateManager({"n": 0}, runtime=runtime, supervisor=sup, on_error="restart")
        machine.transition("b")
        with pytest.raises(ActorCrashed):
            child.modify(boom)  # restarted: the one restart allowed
        crashing = child.request_modify(boom)  # one too many: gives up, up to the root
        assert isinstance(runtime.wait_fatal(2), SupervisorGaveUp), (
            "the root's give-up waited for the turn it ran in"
        )
        with pytest.raises(ActorCrashed):
            crashing.result(timeout=10)
        assert sup.gave_up
        with pytest.raises(ActorStopped):
            child.modify(bump)
        with pytest.raises(ActorStopped):
            machine.transition("a")


def test_a_handler_stopping_its_own_supervisor_commits_its_request_then_stops_cleanly(
    rt: Runtime,
) -> None:
    """A stop run on the turn of an actor it stops cannot wait for that turn:
    the actor stops once its turn ends, and is not abandoned as if it had
    hung (before, the stop waited out its whole timeout, then fenced the very
    request that asked for it)."""
    sup = Supervisor("s", runtime=rt)
    child = StateManager({"n": 0}, runtime=rt, supervisor=sup)
    reports: list[ShutdownReport] = []

    def stop_my_supervisor(state: ImmutableState) -> ImmutableState:
        reports.append(sup.stop(timeout=2.0))
        return bump(state)

    assert child.request_modify(stop_my_supervisor).result(timeout=10).n == 1
    [report] = reports
    assert report.clean, report.describe()
    with pytest.raises(ActorStopped, match="supervisor 's' stopped"):
        child.modify(bump)


def test_restarts_outside_the_window_do_not_count(clock: ManualClock) -> None:
    with Runtime("window", timer=clock) as runtime:
        sup = Supervisor("s", runtime=runtime, max_restarts=1, within=5.0)
        child = StateManager({"n": 0}, runtime=runtime, supervisor=sup, on_error="restart")
        for _ in range(4):
            with pytest.raises(ActorCrashed):
                child.modify(boom)
            clock.advance(6.0)
        assert child.restarts == 4 and not sup.gave_up and runtime.fatal is None


@pytest.mark.parametrize(("inner", "outer"), [(2, 1), (1, 3), (3, 2)])
def test_restart_storm_gives_up_once_after_the_product_of_the_limits(
    clock: ManualClock, inner: int, outer: int
) -> None:
    with Runtime("storm", timer=clock, max_restarts=0) as runtime:
        seen = events_of(runtime)
        top = Supervisor("top", runtime=runtime, max_restarts=outer, within=60.0)
        mid = Supervisor("mid", parent=top, max_restarts=inner, within=60.0)
        child = StateManager({"n": 0}, runtime=runtime, supervisor=mid, on_error="restart")
        crashes = 0
        while runtime.fatal is None:
            assert crashes < 100, "the storm never ended"
            with pytest.raises(ActorCrashed):
                child.modify(boom)
            crashes += 1
        starts = 1 + child.restarts
        assert starts == (inner + 1) * (outer + 1) == crashes
        gave_up = [e.supervisor for e in seen if e.kind == "gave_up"]
        assert gave_up.count("top") == 1 and gave_up.count("root") == 1
        assert gave_up.count("mid") == outer + 1


def test_backoff_delays_grow_and_the_clock_decides_when_to_restart(clock: ManualClock) -> None:
    with Runtime("backoff", timer=clock) as runtime:
        backoff = Backoff(min=0.1, max=1.0, factor=2.0, jitter=0.0, reset_after=100.0)
        sup = Supervisor("s", runtime=runtime, max_restarts=10, within=1000.0, backoff=backoff)
        child = StateManager({"n": 0}, runtime=runtime, supervisor=sup, on_error="restart")
        delays = []
        for _ in range(5):
            with pytest.raises(ActorCrashed):
                child.modify(boom)
            queued = child.request_modify(bump)
            delays.append(clock.delays[-1])
            assert not queued.done()  # waits in the mailbox for the restart
            clock.advance(delays[-1])
            assert queued.result().n == child.get_state().n
        assert delays == [0.1, 0.2, 0.4, 0.8, 1.0]
        assert child.restarts == 5
        clock.advance(200.0)  # stable for longer than reset_after
        with pytest.raises(ActorCrashed):
            child.modify(boom)
        assert clock.delays[-1] == 0.1


def test_backoff_jitter_stays_within_its_bounds() -> None:
    import random

    backoff = Backoff(min=1.0, max=100.0, factor=3.0, jitter=0.25)
    rng = random.Random(7)
    for attempt in range(6):
        base = min(100.0, 3.0**attempt)
        delay = backoff.delay(attempt, rng)
        assert base * 0.75 <= delay <= min(100.0, base * 1.25)
    with pytest.raises(ValueError, match="jitter"):
        Backoff(jitter=1.5)


class EventWaiter:
    """Counts supervision events and waits, bounded, for a number of them."""

    def __init__(self, runtime: Runtime, kind: str) -> None:
        self.kind = kind
        self.count = 0
        self._cond = threading.Condition()
        runtime.subscribe(self._seen)

    def _seen(self, event: SupervisorEvent) -> None:
        if event.kind == self.kind:
            with self._cond:
                self.count += 1
                self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: self.count >= count, timeout), (
                f"only {self.count} {self.kind!r} events, expected {count}"
            )


def test_a_child_that_keeps_failing_to_start_and_a_supervisor_that_still_stops(
    clock: ManualClock,
) -> None:
    with Runtime("startfail", timer=clock) as runtime:
        failed = EventWaiter(runtime, "failed")
        attempts: list[int] = []

        def broken_setup(state: ImmutableState) -> None:
            attempts.append(1)
            raise ConnectionError("cannot reach the payment gateway")

        sup = Supervisor(
            "s",
            runtime=runtime,
            max_restarts=50,
            within=1000.0,
            backoff=Backoff(min=1.0, max=8.0, jitter=0.0),
        )
        child = StateManager({"n": 0}, runtime=runtime, supervisor=sup, on_start=broken_setup)
        waiting = child.request_modify(bump)
        failed.wait_for(1)
        for attempt in range(2, 6):
            clock.advance(8.0)  # the backoff has passed: the next start is tried
            failed.wait_for(attempt)
        assert len(attempts) == 5 and not waiting.done()
        assert clock.delays[-4:] == [2.0, 4.0, 8.0, 8.0]
        sup.stop(timeout=5)  # answered at once, though a restart is pending
        assert clock.pending() == 0
        assert isinstance(waiting.exception(timeout=5), ActorStopped)
        assert not child.alive
        assert runtime.stats().events["failed"] == 5


def test_a_hung_handler_is_fenced_and_can_never_commit(clock: ManualClock) -> None:
    with Runtime("fence", timer=clock) as runtime:
        counter = StateManager({"n": 0}, runtime=runtime, deadline=2.0)
        release, entered = threading.Event(), threading.Event()

        def hang(state: ImmutableState) -> ImmutableState:
            entered.set()
            assert release.wait(10)
            return state.update(n=999)

        hung = counter.request_modify(hang)
        assert entered.wait(10)
        behind = counter.request_modify(bump)
        clock.advance(2.5)  # past the deadline: the watchdog fires here
        with pytest.raises(ActorCrashed) as caught:
            hung.result()
        assert isinstance(caught.value.cause, DeadlineExceeded)
        assert "deadline of 2 s" in str(caught.value.cause)
        assert behind.result().n == 1  # the new incarnation took over the mailbox
        assert counter.restarts == 1
        release.set()  # the old incarnation wakes up and tries to commit n=999
        assert counter.modify(bump).n == 2
        assert counter.get_state().n == 2
        assert counter.stats().generation >= 2


def test_a_restart_decided_while_a_handler_hangs_takes_over_once_it_is_fenced(
    clock: ManualClock,
) -> None:
    with Runtime("fence-pair", timer=clock, default_timeout=10.0) as runtime:
        sup = Supervisor("pair", strategy="one_for_all", runtime=runtime, max_restarts=10)
        slow = StateManager({"n": 0}, name="slow", runtime=runtime, supervisor=sup, deadline=2.0)
        other = StateManager({"n": 0}, runtime=runtime, supervisor=sup, on_error="restart")
        release, entered = threading.Event(), threading.Event()

        def hang(state: ImmutableState) -> ImmutableState:
            entered.set()
            assert release.wait(10)
            return state.update(n=999)

        try:
            hung = slow.request_modify(hang)
            assert entered.wait(10)
            behind = slow.request_modify(bump)
            # The sibling's crash restarts both: slow's next incarnation must
            # wait for the hung handler's turn...
            with pytest.raises(ActorCrashed):
                other.modify(boom)
            clock.advance(2.5)  # ...until the watchdog fences the hung handler
            with pytest.raises(ActorCrashed) as caught:
                hung.result(timeout=5)
            assert isinstance(caught.value.cause, DeadlineExceeded)
            assert behind.result(timeout=5).n == 1  # taken over, on the fresh turn
        finally:
            release.set()
        assert slow.modify(bump).n == 2  # the hung handler's n=999 never commits
        assert slow.restarts == 1  # the fence of a replaced incarnation decides nothing


def test_children_start_in_order_and_stop_in_reverse(rt: Runtime) -> None:
    seen = events_of(rt)
    sup = Supervisor("ordered", runtime=rt)
    children = [
        StateManager({"n": 0}, name=name, runtime=rt, supervisor=sup)
        for name in ("first", "second", "third")
    ]
    replies = [c.request_update({"n": 1}) for c in children]
    sup.stop()
    assert all(r.result().n == 1 for r in replies)  # drained before each stopped
    mine = [(e.kind, e.child) for e in seen if e.supervisor == "ordered" and e.child]
    assert mine == [
        ("started", "first"),
        ("started", "second"),
        ("started", "third"),
        ("stopped", "third"),
        ("stopped", "second"),
        ("stopped", "first"),
    ]
    assert not any(c.alive for c in children)


def test_bad_supervisor_arguments_are_refused(rt: Runtime) -> None:
    with pytest.raises(ValueError, match="unknown strategy 'round_robin'"):
        Supervisor(strategy="round_robin", runtime=rt)
    with pytest.raises(ValueError, match="max_restarts must be an int >= 0"):
        Supervisor(max_restarts=-1, runtime=rt)
    with pytest.raises(ValueError, match="on_error must be 'fail' or 'restart'"):
        StateManager({}, runtime=rt, on_error="ignore")
    with pytest.raises(ValueError, match="restart must be"):
        StateManager({}, runtime=rt, restart="sometimes")
    with pytest.raises(ValueError, match="deadline must be > 0"):
        StateManager({}, runtime=rt, deadline=0)


def test_an_actor_thread_that_dies_is_replaced_by_a_new_one(rt: Runtime, each_host: str) -> None:
    threads: list[threading.Thread] = []
    counter = StateManager(
        {"n": 0}, runtime=rt, on_start=lambda state: threads.append(threading.current_thread())
    )
    assert counter.request_modify(bump).result().n == 1

    def die(state: ImmutableState) -> ImmutableState:
        raise SystemExit("the thread is told to exit")

    with pytest.raises(ActorCrashed) as caught:
        counter.request_modify(die).result()  # on_error="fail", yet this is a crash
    assert isinstance(caught.value.cause, SystemExit)
    assert counter.request_modify(bump).result().n == 2
    assert counter.restarts == 1
    assert len(threads) == 2
    if each_host == "pool":
        # The crash ended the incarnation, not the pooled thread: the pool
        # keeps all its workers, and the next incarnation runs on one of them.
        pool = rt.host.threads  # type: ignore[attr-defined]
        assert len(pool) == rt.host.workers and all(t.is_alive() for t in pool)
        assert set(threads) <= set(pool)
        return
    assert threads[0] is not threads[1]
    threads[0].join(5)
    assert not threads[0].is_alive()


def test_an_actor_restarted_with_its_supervisor_is_alive_again(rt: Runtime) -> None:
    outer = Supervisor("outer", runtime=rt, max_restarts=10)
    inner = Supervisor("inner", runtime=rt, parent=outer, max_restarts=0)
    counter = StateManager({"n": 0}, runtime=rt, supervisor=inner, on_error="restart")
    seen = events_of(rt)
    with pytest.raises(ActorCrashed):
        counter.modify(boom)  # inner gives up at once; outer restarts it, children and all
    kinds = [(e.supervisor, e.kind, e.child) for e in seen]
    assert ("inner", "gave_up", None) in kinds and ("outer", "restarted", "inner") in kinds
    assert counter.alive and rt.stats()[counter.name].alive
    assert counter.modify(bump).n == 1
    assert counter.alive and inner.restarts == 0 and outer.restarts == 1


def test_a_stop_that_lands_between_a_group_decision_and_its_retirement_still_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sibling's crash decides a ``one_for_all`` restart; before the decision
    retires the other child, that child is stopped from outside (removed from
    its supervisor, a stop request queued behind its running request). The
    retirement then leaves the queued stop to no incarnation, and the restart
    skips the removed child: the stop must still end, not wait out its timeout."""
    import stateward.actors._supervisor as supervisor_module

    wait = 10.0
    runtime = Runtime("window", default_timeout=wait)
    try:
        sup = Supervisor("pair", runtime=runtime, strategy="one_for_all", max_restarts=10)
        held = StateManager({"n": 0}, name="held", runtime=runtime, supervisor=sup)
        crasher = StateManager(
            {"n": 0}, name="crasher", runtime=runtime, supervisor=sup, on_error="restart"
        )
        entered, release = threading.Event(), threading.Event()

        def hold(state: ImmutableState) -> ImmutableState:
            entered.set()
            assert release.wait(wait)
            return state

        held_reply = held.request_modify(hold)
        assert entered.wait(wait)
        lifecycle = held._cell.lifecycle
        real_retire = supervisor_module.retire_child

        def stop_then_retire(child: Any) -> None:
            if child.target is lifecycle:  # handle.stop(), in the window, up to its wait
                sup._remove(lifecycle)
                lifecycle.request_stop("stopped by the test")  # queued: it runs a request
                assert held._cell.mailbox.qsize() == 1
            real_retire(child)

        monkeypatch.setattr(supervisor_module, "retire_child", stop_then_retire)

        def boom(state: ImmutableState) -> ImmutableState:
            raise RuntimeError("boom")

        with pytest.raises(Exception, match="boom"):
            crasher.modify(boom)
        release.set()
        held_reply.result(wait)
        assert lifecycle.wait_stopped(time.monotonic() + wait), "the stop never ended"
        assert not held.alive
        assert crasher.modify(bump).n == 1  # the sibling was restarted as decided
    finally:
        release.set()
        runtime.shutdown(timeout=wait)


def test_a_temporary_supervisor_that_gives_up_answers_the_crash_without_waiting_on_itself() -> None:
    """The crash is handled on the crashing actor's own thread (a thread per
    actor): its supervisor gives up, and its parent stops it, waiting for its
    children, the crashing actor among them. That wait must not wait on the
    very thread it runs on (it waited out the whole 5 s stop budget), so the
    caller is answered well within a 2 s bound."""
    with Runtime("give-up", workers=0, default_timeout=10.0) as runtime:
        sup = Supervisor("temp", runtime=runtime, max_restarts=0, restart="temporary")
        manager = StateManager({"n": 0}, runtime=runtime, supervisor=sup, on_error="restart")

        def boom(state: ImmutableState) -> ImmutableState:
            raise RuntimeError("boom")

        with pytest.raises(ActorCrashed):
            manager.modify(boom, timeout=2.0)
        assert sup.gave_up
