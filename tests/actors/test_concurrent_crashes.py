"""Crashes at the same moment under one supervisor: each failure leads to one
restart decision, each actor keeps one live incarnation, and the requests that
did not crash anything are neither failed nor lost.

The stress runs are seeded and of fixed size. For a longer local run set
``STATEWARD_CRASH_ROUNDS`` (requests per thread, default 150).
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable

import pytest
from support import Workers, bump, join_new_threads

from stateward.actors import ActorCrashed, Runtime, StateManager, Supervisor
from stateward.core import ImmutableState

#: Every behaviour here holds on each host (thread per actor, and pooled).
pytestmark = pytest.mark.usefixtures("each_host")

ROUNDS = int(os.environ.get("STATEWARD_CRASH_ROUNDS", "150"))
THREADS = 4
CRASH_RATE = 0.1


def boom(state: ImmutableState) -> ImmutableState:
    raise RuntimeError("boom")


def appending(token: str) -> Callable[[ImmutableState], ImmutableState]:
    def append(state: ImmutableState) -> ImmutableState:
        return state.update(items=(*state["items"], token))

    return append


@pytest.mark.parametrize("strategy", ["one_for_all", "rest_for_one"])
def test_simultaneous_crashes_leave_one_incarnation_and_fail_no_innocent_request(
    strategy: str,
) -> None:
    before = set(threading.enumerate())
    runtime = Runtime(f"pair-{strategy}", default_timeout=10.0)
    prefix = f"stateward:{runtime.name}:"
    try:
        sup = Supervisor(
            "pair", strategy=strategy, runtime=runtime, max_restarts=1_000_000, within=1.0
        )
        children = [
            StateManager(
                {"items": ()}, name=f"child{i}", runtime=runtime, supervisor=sup, on_error="restart"
            )
            for i in range(2)
        ]
        acknowledged: list[list[str]] = [[], []]
        innocent_failures: list[BaseException] = []
        crashes = [0]
        lock = threading.Lock()

        def work(seed: int) -> None:
            rng = random.Random(seed)
            for k in range(ROUNDS):
                i = rng.randrange(2)
                if rng.random() < CRASH_RATE:
                    with pytest.raises(ActorCrashed) as caught:
                        children[i].modify(boom)
                    assert str(caught.value.cause) == "boom", caught.value
                    with lock:
                        crashes[0] += 1
                    continue
                token = f"{seed}:{k}"
                try:
                    children[i].modify(appending(token))
                except Exception as exc:
                    with lock:
                        innocent_failures.append(exc)
                else:
                    with lock:
                        acknowledged[i].append(token)

        workers = Workers()
        for seed in range(THREADS):
            workers.start(work, 1000 + seed, name=f"client-{seed}")
        workers.join(60)

        assert crashes[0] >= 20  # the seeds make crashes overlap
        assert innocent_failures == []
        for child, acked in zip(children, acknowledged, strict=True):
            items = list(child.get_state()["items"])
            assert len(items) == len(set(items)), "an acknowledged modify was applied twice"
            assert sorted(items) == sorted(acked), "the final state differs from the acks"
        for child in children:  # both still answer, from one live incarnation each
            assert child.modify(appending("last"))["items"][-1] == "last"
        for child in children:  # the threads of replaced incarnations end
            current = child._cell.thread
            replaced = [
                t
                for t in threading.enumerate()
                if t.name == prefix + child.name and t is not current
            ]
            for thread in replaced:
                thread.join(5)
            assert not [t for t in replaced if t.is_alive()], f"zombies of {child.name}"
        report = runtime.shutdown(timeout=10.0)
        assert report.clean, report.describe()
    finally:
        runtime.shutdown(timeout=10.0)
    alive = join_new_threads(before)
    assert alive == [], f"threads left after shutdown: {alive}"
    assert not [t.name for t in threading.enumerate() if t.name.startswith(prefix)]
    assert threading.active_count() == len([t for t in before if t.is_alive()])


def test_restarts_is_counted_before_the_crashed_caller_is_answered() -> None:
    rng = random.Random(4)
    with Runtime("counted", default_timeout=10.0) as runtime:
        sup = Supervisor("s", runtime=runtime, max_restarts=1_000_000, within=1.0)
        counter = StateManager({"n": 0}, runtime=runtime, supervisor=sup, on_error="restart")
        for _ in range(300):
            before = counter.restarts
            # Queued work in front makes the actor's own thread run the crash
            # (not the caller's, inline), so the answer crosses threads.
            queued = [counter.request_modify(bump) for _ in range(rng.randrange(3))]
            crashing = counter.request_modify(boom)
            # A done-callback runs the moment the answer is set (on the thread
            # that set it, just after waiters are woken: wait for it too).
            seen_at_answer: list[int] = []
            called = threading.Event()

            def seen(_: object, into: list[int] = seen_at_answer, ran: threading.Event = called):
                into.append(counter.restarts)
                ran.set()

            crashing.add_done_callback(seen)
            with pytest.raises(ActorCrashed):
                crashing.result()
            assert counter.restarts == before + 1
            assert called.wait(5)
            assert seen_at_answer == [before + 1]
            assert all(r.exception(timeout=5) is None for r in queued)
