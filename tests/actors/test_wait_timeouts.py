"""Every timeout a caller passes is either kept or refused up front.

A finite wait longer than the platform's longest timed wait
(``threading.TIMEOUT_MAX``, some 292 years) used to pass the checks and then
fail inside the wait with a raw ``OverflowError``: ``runtime.shutdown(1e300)``
did so after it had begun stopping actors, leaving their threads behind;
``handle.stop(1e300)`` after queuing the stop; ``reply.result(1e300)`` and
every ``result()`` of a runtime made with ``default_timeout=1e300``. Such a
wait is now kept (as the longest wait there is). ``shutdown(inf)`` failed the
same way: like every other timeout it must be finite, and is refused before
anything stops. ``reply.result(-1)`` waited forever (to a lock a negative
timeout means no limit) and ``result(nan)`` raised a raw ValueError: a reply
checks its timeout as the handles do.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator

import pytest

from stateward.actors import Runtime, StateManager, Supervisor
from stateward.core import ArgumentTypeError, ArgumentValueError, ImmutableState

HUGE = [1e300, 10**30]


@pytest.fixture
def counter() -> Iterator[StateManager]:
    runtime = Runtime("timeouts", default_timeout=10.0)
    yield StateManager({"n": 0}, name="counter", runtime=runtime)
    report = runtime.shutdown(10.0)
    assert report.clean, report.describe()


@pytest.mark.usefixtures("each_host")
@pytest.mark.parametrize("timeout", HUGE)
def test_a_huge_shutdown_timeout_is_kept(timeout: float) -> None:
    before = set(threading.enumerate())
    runtime = Runtime("patient")
    counter = StateManager({"n": 0}, name="counter", runtime=runtime)
    queued = counter.request_update({"n": 1})
    report = runtime.shutdown(timeout)
    assert report.clean and queued.result(1).n == 1
    left = [t for t in threading.enumerate() if t not in before]
    for thread in left:
        thread.join(5)
    assert not [t.name for t in left if t.is_alive()]


def test_an_endless_shutdown_timeout_is_refused_before_anything_stops(
    counter: StateManager,
) -> None:
    with pytest.raises(ValueError, match="timeout"):
        counter.runtime.shutdown(math.inf)
    assert counter.update_state({"n": 1}).n == 1


@pytest.mark.parametrize("timeout", HUGE)
def test_a_huge_stop_timeout_is_kept(counter: StateManager, timeout: float) -> None:
    queued = counter.request_update({"n": 1})
    counter.stop(timeout)
    assert queued.result(1).n == 1 and not counter.alive


@pytest.mark.parametrize("timeout", HUGE)
def test_a_huge_call_timeout_is_kept(counter: StateManager, timeout: float) -> None:
    assert counter.update_state({"n": 1}, timeout=timeout).n == 1
    assert counter.request_update({"n": 2}).result(timeout).n == 2


@pytest.mark.parametrize("timeout", HUGE)
def test_a_huge_default_timeout_is_kept(timeout: float) -> None:
    runtime = Runtime("too-patient", default_timeout=timeout)
    try:
        counter = StateManager({"n": 0}, name="counter", runtime=runtime)
        assert counter.request_update({"n": 1}).result().n == 1
    finally:
        runtime.shutdown(5)


def test_an_endless_default_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="default_timeout"):
        Runtime("endless", default_timeout=math.inf)


@pytest.mark.parametrize("timeout", [math.inf, -1.0, math.nan])
def test_a_reply_refuses_a_timeout_it_cannot_keep_without_waiting(
    counter: StateManager, timeout: float
) -> None:
    release = threading.Event()

    def hold(state: ImmutableState) -> ImmutableState:
        assert release.wait(10), "the test never released the actor"
        return state.update(n=7)

    reply = counter.request_modify(hold)
    outcome: list[BaseException] = []

    def wait() -> None:
        try:
            reply.result(timeout)
        except BaseException as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    waiter.join(5)
    waited_on = waiter.is_alive()
    release.set()
    waiter.join(5)
    assert not waited_on, f"result({timeout!r}) waited for the answer instead of refusing"
    assert len(outcome) == 1 and isinstance(outcome[0], ArgumentValueError), outcome
    assert reply.result(5).n == 7


def test_a_reply_timeout_of_the_wrong_type_is_refused(counter: StateManager) -> None:
    with pytest.raises(ArgumentTypeError, match="timeout"):
        counter.request_update({"n": 1}).result("5")  # type: ignore[arg-type]


def test_an_endless_supervisor_shutdown_timeout_is_refused_when_it_is_made() -> None:
    runtime = Runtime("supervised")
    try:
        with pytest.raises(ValueError, match="shutdown_timeout"):
            Supervisor("endless", runtime=runtime, shutdown_timeout=math.inf)
    finally:
        runtime.shutdown(5)
