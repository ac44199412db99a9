"""A reply's lazily made wait lock, and an actor draining its queue in one go.

Two halves:

- `Reply`: the lock waiters block on is made by the first thread that has to
  wait. The interleavings that matter (an answer landing between a waiter's
  look at the status and its lock, two waiters, a done-callback registered
  while the answer is set) are forced with `PauseAt`, which stops one thread
  at one line of the library's code until the test lets it go on.
- An incarnation's turn (`Incarnation.run_turn`, run by its host's worker)
  takes the queued messages one after another, up to a budget, then hands the
  cell back. A stop, a crash, a fence by the deadline watchdog, a retire by
  a supervisor and an inline call each end or bypass that run: nothing may be
  handled twice, lost, handled by an incarnation that was retired or fenced,
  or handled out of its sender's order.

Every wait is bounded, and no test sleeps to let another thread get somewhere.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest
from support import Workers

from stateward.actors import (
    ActorCrashed,
    ActorStopped,
    ActorTimeout,
    DeadlineExceeded,
    ManualClock,
    Reply,
    Runtime,
    StateManager,
    Supervisor,
    SupervisorEvent,
)
from stateward.actors._runtime import stop_request
from stateward.core import ImmutableState
from stateward.core._messages import Modify

SEED = 20261123
WAIT = 10.0  # the bound on every wait that is expected to succeed


# -- helpers -----------------------------------------------------------------------------


class PauseAt:
    """Stop the thread that calls `run` when it reaches one line of ``func``.

    The line is the ``occurrence``-th line of ``func``'s source containing
    ``text``; the thread stops before running it (the first time only), sets
    `reached`, and goes on once `resume` is set. Uses `sys.settrace` in that
    thread alone.
    """

    def __init__(self, func: Callable[..., Any], text: str, occurrence: int = 0) -> None:
        lines, first = inspect.getsourcelines(func)
        matches = [first + i for i, line in enumerate(lines) if text in line]
        assert len(matches) > occurrence, f"{func.__qualname__} has no line {text!r} any more"
        self.lineno = matches[occurrence]
        self.code = func.__code__
        self.reached = threading.Event()
        self.resume = threading.Event()

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line" and frame.f_lineno == self.lineno and not self.reached.is_set():
            self.reached.set()
            assert self.resume.wait(WAIT), "the test never let the paused thread go on"
        return self._local

    def _global(self, frame: FrameType, event: str, arg: Any) -> Any:
        return self._local if frame.f_code is self.code else None

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        sys.settrace(self._global)
        try:
            return fn(*args)
        finally:
            sys.settrace(None)

    def wait_reached(self) -> None:
        assert self.reached.wait(WAIT), f"the thread never reached line {self.lineno}"


class WatchedLock:
    """A lock that tells when a chosen thread touches it (to know that a setter
    has got as far as the callback lock, or has not needed it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.watched: threading.Thread | None = None
        self.touched = threading.Event()

    def _note(self) -> None:
        if threading.current_thread() is self.watched:
            self.touched.set()

    def locked(self) -> bool:
        self._note()
        return self._lock.locked()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        self._note()
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class FakeCell:
    """What a `Reply` uses of its cell, for replies that no actor will answer:
    the test answers them itself, from the thread it chooses."""

    name = "fake"
    default_timeout = WAIT

    def __init__(self) -> None:
        self.callback_lock = WatchedLock()
        self.reports: list[tuple[str, str, BaseException]] = []

    def report(self, source: str, name: str, error: BaseException) -> None:
        self.reports.append((source, name, error))


def noop(state: Any) -> None:
    """The function of a request made by hand (never run)."""


def new_reply(cell: Any = None) -> Reply[Any]:
    return Reply(cell if cell is not None else FakeCell(), Modify((noop,)))


def answer_from_a_thread(reply: Reply[Any], value: Any, workers: Workers) -> threading.Event:
    """Set ``reply``'s result on a new thread; the event is set once that thread
    has either finished or reached the callback lock (where it may have to
    wait for a thread the test holds)."""
    cell = reply._cell
    progressed = cell.callback_lock.touched

    def setter() -> None:
        cell.callback_lock.watched = threading.current_thread()
        try:
            reply.set_result(value)
        finally:
            progressed.set()

    workers.start(setter, name="setter")
    return progressed


def hold(manager: StateManager) -> tuple[threading.Event, Reply[ImmutableState]]:
    """Keep ``manager``'s actor busy until the returned event is set."""
    entered, release = threading.Event(), threading.Event()

    def holding(state: ImmutableState) -> ImmutableState:
        entered.set()
        assert release.wait(WAIT), "the test never released the actor"
        return state

    reply = manager.request_modify(holding)
    assert entered.wait(WAIT)
    return release, reply


class Log:
    """What ran, in the order it ran, and on which thread (ops run one at a time)."""

    def __init__(self) -> None:
        self.numbers: list[int] = []
        self.threads: list[threading.Thread] = []

    def op(self, number: int, *, crash: bool = False) -> Callable[[ImmutableState], Any]:
        def fn(state: ImmutableState) -> ImmutableState:
            if crash:
                raise RuntimeError(f"crash at {number}")
            self.numbers.append(number)
            self.threads.append(threading.current_thread())
            return state.update(seen=[*state.seen, number])

        return fn


class Events:
    """Supervisor events of one kind, with a bounded wait for a count of them."""

    def __init__(self, runtime: Runtime, kind: str) -> None:
        self.kind = kind
        self.seen: list[SupervisorEvent] = []
        self._cond = threading.Condition()
        runtime.subscribe(self._on_event)

    def _on_event(self, event: SupervisorEvent) -> None:
        if event.kind == self.kind:
            with self._cond:
                self.seen.append(event)
                self._cond.notify_all()

    def wait_for(self, count: int) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.seen) >= count, WAIT), (
                f"{len(self.seen)} {self.kind!r} events, expected {count}"
            )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["thread", "pool"])
def timed(clock: ManualClock, request: pytest.FixtureRequest) -> Iterator[Runtime]:
    """A runtime whose timers (deadlines, backoff) run on a manual clock, on
    each host: a thread per incarnation (``workers=0``), where an incarnation
    is told by its thread, and the (default) pool, where it is not."""
    workers = 0 if request.param == "thread" else None
    runtime = Runtime("timed", default_timeout=WAIT, timer=clock, workers=workers)
    yield runtime
    runtime.shutdown(timeout=WAIT)


@pytest.fixture
def timed_on_threads(clock: ManualClock) -> Iterator[Runtime]:
    """`timed` with a thread per incarnation only (``workers=0``): for a test
    that waits for a fenced incarnation's thread to end, which a pooled
    worker never does."""
    runtime = Runtime("timed", default_timeout=WAIT, timer=clock, workers=0)
    yield runtime
    runtime.shutdown(timeout=WAIT)


def on_threads(runtime: Runtime) -> bool:
    """Whether each incarnation of ``runtime``'s actors has a thread of its own."""
    return runtime.host is runtime.dedicated_host


# -- replies: no lock unless someone waits -------------------------------------------------


def test_a_reply_answered_before_any_wait_never_makes_a_lock(runtime: Runtime) -> None:
    manager = StateManager({"n": 0}, runtime=runtime)
    answered = threading.Event()
    ok = manager.request_update({"n": 1}, callback=lambda r: answered.set())
    assert answered.wait(WAIT)
    assert ok._done is None
    assert ok.result(timeout=WAIT) == {"n": 1}
    assert ok.exception(timeout=WAIT) is None
    assert asyncio.run(ok.wait(timeout=WAIT)) == {"n": 1}
    assert ok._done is None

    failed_answered = threading.Event()
    failed = manager.request_modify(
        lambda s: s.update(n=1 / 0), callback=lambda r: failed_answered.set()
    )
    assert failed_answered.wait(WAIT)
    assert isinstance(failed.exception(timeout=WAIT), ZeroDivisionError)
    with pytest.raises(ZeroDivisionError):
        failed.result(timeout=WAIT)
    assert failed._done is None


def test_many_threads_waiting_on_one_reply_all_get_the_answer(
    runtime: Runtime, workers: Workers
) -> None:
    manager = StateManager({"n": 0}, runtime=runtime)
    release, held = hold(manager)
    reply = manager.request_update({"n": 7})
    results: list[Any] = []
    pauses = [PauseAt(Reply._wait, "if done.acquire(") for _ in range(16)]
    for pause in pauses:
        workers.start(lambda p=pause: results.append(p.run(reply.result, WAIT)))
    for pause in pauses:
        pause.wait_reached()  # every one is past its look at the status, lock in hand
    assert reply._done is not None and not reply.done()
    for pause in pauses:
        pause.resume.set()
    release.set()
    workers.join(timeout=WAIT)
    assert results == [{"n": 7}] * 16
    assert held.result(timeout=WAIT) == {"n": 0}


def test_waiters_and_answer_racing_from_a_barrier_all_get_the_answer(workers: Workers) -> None:
    rng = random.Random(SEED)
    for _ in range(300):
        reply = new_reply()
        waiters = rng.randint(1, 6)
        failed = rng.random() < 0.5  # answered with an error, read with exception()
        barrier = threading.Barrier(waiters + 1, timeout=WAIT)
        results: list[Any] = []

        def wait(
            reply: Reply[Any] = reply,
            barrier: threading.Barrier = barrier,
            failed: bool = failed,
            results: list[Any] = results,
        ) -> None:
            barrier.wait()
            if failed:
                results.append(reply.exception(timeout=WAIT))
            else:
                results.append(reply.result(timeout=WAIT))

        for _ in range(waiters):
            workers.start(wait)
        barrier.wait()
        error = ValueError("no")
        if failed:
            reply.set_exception(error)
        else:
            reply.set_result(1)
        workers.join(timeout=WAIT)
        assert results == [error if failed else 1] * waiters


@pytest.mark.parametrize(
    ("text", "occurrence"),
    [
        ("fresh = threading.Lock()", 0),  # has looked at the status, no lock yet
        ("self._done = done = fresh", 0),  # installing it, under the callback lock
        ("if self._status != _PENDING", 1),  # installed, about to look again
        ("if done.acquire(", 0),  # looked again: still pending
    ],
)
def test_an_answer_set_while_the_waiter_makes_its_lock_is_seen(
    text: str, occurrence: int, workers: Workers
) -> None:
    reply = new_reply()
    pause = PauseAt(Reply._wait, text, occurrence)
    got: list[Any] = []
    workers.start(lambda: got.append(pause.run(reply.result, WAIT)))
    pause.wait_reached()
    progressed = answer_from_a_thread(reply, 42, workers)
    assert progressed.wait(WAIT)
    pause.resume.set()
    workers.join(timeout=WAIT)
    assert got == [42]


@pytest.mark.parametrize("second", ["result", "exception"])
def test_a_second_waiter_that_finds_the_first_ones_lock_after_the_answer_returns_at_once(
    second: str, workers: Workers
) -> None:
    # The answer is set after both waiters looked at the status and before
    # either made a lock: the setter sees no lock and releases nothing. The
    # first waiter then installs one (and sees the answer); the second finds
    # that lock already there and must look at the status again instead of
    # blocking on a lock nobody will release.
    reply = new_reply()
    first = PauseAt(Reply._wait, "done = self._done")
    then = PauseAt(Reply._wait, "done = self._done")
    got: dict[str, Any] = {}
    first_pool, second_pool = Workers(), Workers()
    first_pool.start(lambda: got.setdefault("first", first.run(reply.result, WAIT)))
    second_pool.start(lambda: got.setdefault("second", then.run(getattr(reply, second), 2 * WAIT)))
    first.wait_reached()
    then.wait_reached()
    reply.set_result(42)  # no lock yet: nothing to release
    assert reply._done is None
    first.resume.set()
    first_pool.join(timeout=WAIT)  # the first waiter made the lock, saw the answer
    assert reply._done is not None and reply._done.locked()
    then.resume.set()
    second_pool.join(timeout=WAIT)  # well before the second waiter's own timeout
    assert got == {"first": 42, "second": 42 if second == "result" else None}


def test_a_done_callback_added_while_the_answer_is_set_runs_exactly_once(
    workers: Workers,
) -> None:
    reply = new_reply()
    calls: list[Reply[Any]] = []
    pause = PauseAt(Reply.add_done_callback, "if self._callbacks is None")
    workers.start(lambda: pause.run(reply.add_done_callback, calls.append))
    pause.wait_reached()  # it saw the reply pending and holds the callback lock
    progressed = answer_from_a_thread(reply, 1, workers)
    assert progressed.wait(WAIT)
    pause.resume.set()
    workers.join(timeout=WAIT)
    assert calls == [reply]
    reply.add_done_callback(calls.append)  # done: runs at once, here
    assert calls == [reply, reply]
    assert reply._cell.reports == []


def test_an_await_that_registers_while_the_answer_is_set_wakes_up(workers: Workers) -> None:
    reply = new_reply()
    pause = PauseAt(Reply.add_done_callback, "if self._callbacks is None")
    got: list[Any] = []

    async def main() -> None:
        got.append(await reply.wait(timeout=WAIT))

    workers.start(lambda: pause.run(asyncio.run, main()))
    pause.wait_reached()
    progressed = answer_from_a_thread(reply, "answer", workers)
    assert progressed.wait(WAIT)
    pause.resume.set()
    workers.join(timeout=2 * WAIT)
    assert got == ["answer"]


def test_a_timed_out_wait_withdraws_a_queued_request_which_never_runs(
    runtime: Runtime,
) -> None:
    manager = StateManager({"n": 0, "seen": []}, runtime=runtime)
    log = Log()
    release, held = hold(manager)
    before = manager.request_modify(log.op(1))
    withdrawn = manager.request_modify(log.op(2))
    after = manager.request_modify(log.op(3))
    with pytest.raises(ActorTimeout) as caught:
        withdrawn.result(timeout=0.05)
    assert caught.value.started is False
    release.set()
    assert held.result(timeout=WAIT) == {"n": 0, "seen": []}
    assert before.result(timeout=WAIT).seen == [1]
    assert after.result(timeout=WAIT).seen == [1, 3]
    assert log.numbers == [1, 3]
    assert withdrawn.done()  # answered with the timeout: it will never run
    assert withdrawn.exception(timeout=0) is caught.value
    assert manager.version == 3  # the holding modify, 1 and 3


def test_a_withdrawal_answers_the_other_waiters_and_the_callbacks(
    runtime: Runtime, workers: Workers
) -> None:
    manager = StateManager({"n": 0, "seen": []}, runtime=runtime)
    log = Log()
    release, held = hold(manager)
    queued = manager.request_modify(log.op(1))
    called: list[BaseException | None] = []
    queued.add_done_callback(lambda reply: called.append(reply.exception(timeout=0)))
    pause = PauseAt(Reply._wait, "if done.acquire(True, seconds):")
    seen: list[BaseException | None] = []
    workers.start(lambda: seen.append(pause.run(queued.exception, WAIT)), name="other waiter")
    pause.wait_reached()  # the other waiter is about to block for up to WAIT
    with pytest.raises(ActorTimeout) as caught:
        queued.result(timeout=0.05)
    pause.resume.set()
    workers.join(WAIT)
    assert seen == [caught.value]  # the withdrawal itself, not a timeout of its own
    assert called == [caught.value]
    release.set()
    assert held.result(timeout=WAIT) == {"n": 0, "seen": []}
    assert manager.request_modify(log.op(2)).result(timeout=WAIT).seen == [2]
    assert log.numbers == [2]


def test_an_await_that_timed_out_on_a_loop_since_closed_reports_nothing_later(
    runtime: Runtime,
) -> None:
    manager = StateManager({"n": 0}, runtime=runtime)
    release, held = hold(manager)

    async def impatient() -> None:
        with pytest.raises(ActorTimeout):
            await held.wait(timeout=0.05)

    asyncio.run(impatient())  # the loop is closed when this returns
    release.set()
    assert held.result(timeout=WAIT) == {"n": 0}
    assert manager.stats().hook_errors == 0


def test_a_waiter_that_timed_out_on_a_started_request_leaves_a_lock_the_answer_releases(
    runtime: Runtime,
) -> None:
    manager = StateManager({"n": 0}, runtime=runtime)
    release, held = hold(manager)
    with pytest.raises(ActorTimeout) as caught:
        held.result(timeout=0.05)
    assert caught.value.started is True
    assert held._done is not None and held._done.locked()
    release.set()
    assert held.result(timeout=WAIT) == {"n": 0}
    assert held.exception(timeout=WAIT) is None


# -- the actor draining its queue ------------------------------------------------------------


def test_a_stop_behind_1000_pipelined_requests_answers_them_in_order_then_refuses(
    runtime: Runtime,
) -> None:
    manager = StateManager({"n": 0, "seen": []}, name="piped", runtime=runtime)
    log = Log()
    release, held = hold(manager)
    replies = [manager.request_modify(log.op(i)) for i in range(1000)]
    stop = stop_request(manager._cell, "stopped by the test")
    late = [manager.request_update({"n": i}) for i in range(5)]  # behind the stop
    release.set()
    held.result(timeout=WAIT)
    for i, reply in enumerate(replies):
        assert len(reply.result(timeout=WAIT).seen) == i + 1
    assert stop.result(timeout=WAIT) is None
    for reply in late:
        error = reply.exception(timeout=WAIT)
        assert isinstance(error, ActorStopped) and error.reason == "stopped by the test"
    assert log.numbers == list(range(1000))
    # One incarnation did them all (on a pool, its turns may run on any worker).
    assert manager.restarts == 0 and manager.stats().generation == 1
    if runtime.host is runtime.dedicated_host:
        assert len(set(log.threads)) == 1
    assert manager._cell.stopped.wait(WAIT)
    with pytest.raises(ActorStopped):
        manager.request_update({"n": 1}).result(timeout=WAIT)
    assert manager.get_state().seen == list(range(1000))


def test_a_crash_in_a_drained_batch_leaves_the_rest_to_the_next_incarnation(
    timed: Runtime,
) -> None:
    sup = Supervisor("batch", runtime=timed, max_restarts=10, within=60.0)
    manager = StateManager({"seen": []}, runtime=timed, supervisor=sup, on_error="restart")
    log = Log()
    release, held = hold(manager)
    old_thread = manager._cell.thread
    replies = [manager.request_modify(log.op(i, crash=i == 40)) for i in range(100)]
    release.set()
    held.result(timeout=WAIT)
    for i, reply in enumerate(replies):
        if i == 40:
            with pytest.raises(ActorCrashed, match="crash at 40"):
                reply.result(timeout=WAIT)
        else:
            reply.result(timeout=WAIT)
    expected = [i for i in range(100) if i != 40]
    assert log.numbers == expected
    assert manager.get_state().seen == expected
    if on_threads(timed):
        assert all(t is old_thread for t in log.threads[:40])
        new_threads = set(log.threads[40:])
        assert len(new_threads) == 1 and old_thread not in new_threads
    assert manager.restarts == 1


def test_seeded_crashes_in_drained_batches_lose_nothing_and_keep_the_order(
    timed: Runtime,
) -> None:
    rng = random.Random(SEED)
    sup = Supervisor("seeded", runtime=timed, max_restarts=1000, within=60.0)
    manager = StateManager({"seen": []}, runtime=timed, supervisor=sup, on_error="restart")
    log = Log()
    expected: list[int] = []
    crashes = 0
    for batch in range(5):
        release, held = hold(manager)
        numbers = range(batch * 200, batch * 200 + 200)
        crashing = set(rng.sample(numbers, 3))
        crashes += len(crashing)
        replies = [(n, manager.request_modify(log.op(n, crash=n in crashing))) for n in numbers]
        release.set()
        held.result(timeout=WAIT)
        for n, reply in replies:
            error = reply.exception(timeout=WAIT)
            if n in crashing:
                assert isinstance(error, ActorCrashed)
            else:
                assert error is None
                expected.append(n)
    assert log.numbers == expected
    assert manager.get_state().seen == expected
    assert manager.restarts == crashes


def test_a_fenced_incarnation_handles_nothing_more(
    timed_on_threads: Runtime, clock: ManualClock
) -> None:
    manager = StateManager({"n": 0, "seen": []}, runtime=timed_on_threads, deadline=2.0)
    log = Log()
    entered, release = threading.Event(), threading.Event()

    def hang(state: ImmutableState) -> ImmutableState:
        entered.set()
        assert release.wait(WAIT)
        return state.update(n=999)

    hung = manager.request_modify(hang)
    assert entered.wait(WAIT)
    hung_thread = manager._cell.thread
    behind = [manager.request_modify(log.op(i)) for i in range(50)]
    clock.advance(2.5)  # the watchdog fences the hung incarnation
    with pytest.raises(ActorCrashed) as caught:
        hung.result(timeout=WAIT)
    assert isinstance(caught.value.cause, DeadlineExceeded)
    assert [len(r.result(timeout=WAIT).seen) for r in behind] == list(range(1, 51))
    # Keep the next incarnation busy with more queued behind it, then let the
    # fenced one finish its op: it may neither commit nor take any of them.
    release_next, held_next = hold(manager)
    more = [manager.request_modify(log.op(i)) for i in range(50, 100)]
    release.set()
    assert hung_thread is not None
    hung_thread.join(WAIT)
    assert not hung_thread.is_alive()
    assert manager.stats().queue_depth == 50
    release_next.set()
    assert held_next.result(timeout=WAIT).seen == list(range(50))
    assert [len(r.result(timeout=WAIT).seen) for r in more] == list(range(51, 101))
    assert log.numbers == list(range(100))
    assert hung_thread not in log.threads
    assert manager.get_state().n == 0 and manager.get_state().seen == list(range(100))


def test_an_incarnation_retired_by_a_one_for_all_restart_stops_mid_batch(
    timed: Runtime,
) -> None:
    restarted = Events(timed, "restarted")
    sup = Supervisor("all", strategy="one_for_all", runtime=timed, max_restarts=10, within=60.0)
    crasher = StateManager({"n": 0}, runtime=timed, supervisor=sup, on_error="restart")
    sibling = StateManager({"seen": []}, runtime=timed, supervisor=sup)
    log = Log()
    release, held = hold(sibling)
    old_thread = sibling._cell.thread
    behind = [sibling.request_modify(log.op(i)) for i in range(50)]

    def boom(state: ImmutableState) -> ImmutableState:
        raise RuntimeError("boom")

    with pytest.raises(ActorCrashed):
        crasher.modify(boom, timeout=WAIT)
    restarted.wait_for(2)  # the sibling was retired and its next incarnation waits
    release.set()  # the retired one finishes its op and takes nothing more
    assert held.result(timeout=WAIT) == {"seen": []}
    assert [len(r.result(timeout=WAIT).seen) for r in behind] == list(range(1, 51))
    assert log.numbers == list(range(50))
    if on_threads(timed):
        assert old_thread not in log.threads
    assert sibling.restarts == 1 and crasher.restarts == 1


def test_a_stop_of_its_own_mid_batch_hands_the_rest_to_the_restarted_incarnation(
    timed: Runtime,
) -> None:
    sup = Supervisor("own", runtime=timed, max_restarts=10, within=60.0)
    manager = StateManager({"seen": []}, runtime=timed, supervisor=sup)
    log = Log()
    release, held = hold(manager)
    first = [manager.request_modify(log.op(i)) for i in range(10)]
    exit_stop = stop_request(manager._cell, "stopped itself", terminal=False, exit=True)
    second = [manager.request_modify(log.op(i)) for i in range(10, 20)]
    release.set()
    held.result(timeout=WAIT)
    assert exit_stop.result(timeout=WAIT) is None
    for i, reply in enumerate([*first, *second]):
        assert len(reply.result(timeout=WAIT).seen) == i + 1
    assert log.numbers == list(range(20))
    if on_threads(timed):
        assert len(set(log.threads[:10])) == 1 and len(set(log.threads[10:])) == 1
        assert log.threads[0] is not log.threads[10]
    assert manager.restarts == 1 and manager.alive


def test_a_blocking_call_made_while_the_actor_drains_is_queued_not_run_inline(
    workers: Workers,
) -> None:
    with Runtime("inline", inline_calls=True, default_timeout=WAIT) as runtime:
        manager = StateManager({"seen": []}, runtime=runtime)
        log = Log()
        release, held = hold(manager)
        queued = [manager.request_modify(log.op(i)) for i in range(20)]
        sent = PauseAt(Reply._wait, "if self._status != _PENDING")
        got: list[Any] = []
        workers.start(
            lambda: got.append(sent.run(lambda: manager.modify(log.op(20), timeout=WAIT)))
        )
        sent.wait_reached()  # the blocking call has been queued (it could not run inline)
        sent.resume.set()
        release.set()
        held.result(timeout=WAIT)
        workers.join(timeout=WAIT)
        assert [len(r.result(timeout=WAIT).seen) for r in queued] == list(range(1, 21))
        assert got[0].seen == list(range(21))
        assert log.numbers == list(range(21))
        # Each ran on one of the runtime's workers, none inline on a caller's thread.
        pool_threads = runtime.host.threads  # type: ignore[attr-defined]
        assert all(t in pool_threads for t in log.threads)


def test_blocking_and_pipelined_senders_keep_their_order_with_inline_calls(
    workers: Workers,
) -> None:
    senders, per_sender = 4, 500
    with Runtime("mixed", inline_calls=True, default_timeout=WAIT) as runtime:
        start = {f"s{s}": [] for s in range(senders)}
        manager = StateManager(start, runtime=runtime)
        barrier = threading.Barrier(senders, timeout=WAIT)

        def append(sender: int, number: int) -> Callable[[ImmutableState], Any]:
            key = f"s{sender}"
            return lambda state: state.update({key: [*state[key], number]})

        def sender(index: int) -> None:
            rng = random.Random(SEED + index)
            pending: list[Reply[ImmutableState]] = []
            barrier.wait()
            for number in range(per_sender):
                if rng.random() < 0.5:
                    manager.modify(append(index, number), timeout=WAIT)
                else:
                    pending.append(manager.request_modify(append(index, number)))
                if len(pending) > 16:
                    pending.pop(0).result(timeout=WAIT)
            for reply in pending:
                reply.result(timeout=WAIT)

        for index in range(senders):
            workers.start(sender, index)
        workers.join(timeout=60)
        state = manager.get_state()
        for index in range(senders):
            assert state[f"s{index}"] == list(range(per_sender))
        assert manager.version == senders * per_sender
