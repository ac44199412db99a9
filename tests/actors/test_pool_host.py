"""The pooled host: a few worker threads serve many cells, fairly, in order,
and an actor that asks for it gets a thread of its own.

The supervision, fault-injection, concurrency, crash and shutdown suites run
on the pooled host too (the ``each_host`` fixture); these tests are about the
pool itself.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import pykka
import pytest
from support import TOGGLE, Workers, join_new_threads

from stateward.actors import Runtime, StateMachine, StateManager
from stateward.actors._pool_host import DEFAULT_WORKERS, POOL_TURN_BUDGET, PoolHost
from stateward.core import ArgumentTypeError, ArgumentValueError, ImmutableState

WAIT = 10.0


def logging_to(log: list[str], label: str) -> Callable[[ImmutableState], ImmutableState]:
    def note(state: ImmutableState) -> ImmutableState:
        log.append(label)
        return state

    return note


def test_a_busy_cell_delays_other_cells_by_at_most_one_turn_of_its_backlog() -> None:
    # One worker, so the order in which it runs messages is the whole story.
    with Runtime("fair", workers=1, default_timeout=WAIT) as runtime:
        busy = StateManager({"n": 0}, name="busy", runtime=runtime)
        others = [StateManager({"n": 0}, name=f"o{i}", runtime=runtime) for i in range(100)]
        log: list[str] = []
        entered, release = threading.Event(), threading.Event()

        def hold(state: ImmutableState) -> ImmutableState:
            entered.set()
            assert release.wait(WAIT)
            return state

        held = busy.request_modify(hold)  # the only worker is now in busy's turn
        assert entered.wait(WAIT)
        backlog = [busy.request_modify(logging_to(log, "busy")) for _ in range(10_000)]
        singles = [o.request_modify(logging_to(log, o.name)) for o in others]
        release.set()
        held.result(timeout=WAIT)
        for reply in [*singles, *backlog]:
            reply.result(timeout=WAIT)

        # busy's turn goes on for the rest of its budget, then it goes to the
        # back of the run queue, behind the 100 cells woken meanwhile.
        first_other = next(i for i, who in enumerate(log) if who != "busy")
        assert first_other == POOL_TURN_BUDGET - 1  # the held message was the first
        assert log[first_other : first_other + 100] == [o.name for o in others]
        assert log.count("busy") == 10_000


def test_ten_thousand_cells_run_on_the_pools_threads_and_leave_none_behind() -> None:
    before = set(threading.enumerate())
    workers = 4
    runtime = Runtime("many", workers=workers, default_timeout=30.0)
    machines = [StateMachine("a", TOGGLE, name=f"m{i}", runtime=runtime) for i in range(10_000)]
    replies = [m.request_transition("b") for m in machines]
    assert all(r.result(timeout=30.0).state == "b" for r in replies)
    # The pool's workers plus the runtime's timer thread, whatever the number of cells.
    new = set(threading.enumerate()) - before
    assert len(new) <= workers + 1, sorted(t.name for t in new)
    assert set(runtime.host.threads) <= new  # type: ignore[attr-defined]
    assert machines[1234].transition("a").state == "a"  # an idle cell: inline
    report = runtime.shutdown(timeout=30.0)
    assert report.clean, report.describe()
    assert not any(m.alive for m in machines)
    assert join_new_threads(before) == []


def test_each_cells_messages_run_in_the_order_each_sender_sent_them(workers: Workers) -> None:
    senders, per_sender, cells = 8, 200, 4
    rng = random.Random(14)
    with Runtime("order", workers=2, default_timeout=WAIT) as runtime:
        managers = [StateManager({"seen": []}, name=f"c{i}", runtime=runtime) for i in range(cells)]
        plans = [[rng.randrange(cells) for _ in range(per_sender)] for _ in range(senders)]
        start = threading.Barrier(senders)

        def send(sender: int) -> None:
            start.wait(WAIT)
            replies = [
                managers[cell].request_modify(
                    lambda s, item=(sender, seq): s.update(seen=[*s.seen, item])
                )
                for seq, cell in enumerate(plans[sender])
            ]
            for reply in replies:
                reply.result(timeout=WAIT)

        for sender in range(senders):
            workers.start(send, sender)
        workers.join(WAIT * 3)

        for index, manager in enumerate(managers):
            seen = manager.get_state().seen
            for sender in range(senders):
                mine = [seq for who, seq in seen if who == sender]
                expected = [seq for seq, cell in enumerate(plans[sender]) if cell == index]
                assert mine == expected, f"cell {index}, sender {sender}"
        assert sum(len(m.get_state().seen) for m in managers) == senders * per_sender


def test_a_dedicated_actor_runs_on_a_thread_of_its_own_and_holds_no_pooled_worker() -> None:
    with Runtime("mixed", workers=1, default_timeout=WAIT) as runtime:
        slow = StateManager({"n": 0}, name="slow", runtime=runtime, dedicated=True)
        quick = StateManager({"n": 0}, name="quick", runtime=runtime)
        ran_on: dict[str, threading.Thread] = {}
        entered, release = threading.Event(), threading.Event()

        def block(state: ImmutableState) -> ImmutableState:
            ran_on["slow"] = threading.current_thread()
            entered.set()
            assert release.wait(WAIT)
            return state.update(n=1)

        def note(state: ImmutableState) -> ImmutableState:
            ran_on["quick"] = threading.current_thread()
            return state.update(n=state.n + 1)

        held = slow.request_modify(block)
        assert entered.wait(WAIT)
        # The only pooled worker is free: the dedicated actor blocks its own thread.
        assert quick.request_modify(note).result(timeout=WAIT).n == 1
        release.set()
        assert held.result(timeout=WAIT).n == 1
        pool = runtime.host.threads  # type: ignore[attr-defined]
        assert ran_on["slow"].name == "stateward:mixed:slow"
        assert ran_on["slow"] not in pool
        assert ran_on["quick"] in pool and len(pool) == 1


def test_a_blocking_hook_on_a_one_worker_pool_delays_the_other_cells_until_it_returns() -> None:
    # What dedicated=True is for: without it the blocked hook holds the pool.
    with Runtime("held", workers=1, default_timeout=WAIT) as runtime:
        slow = StateManager({"n": 0}, name="slow", runtime=runtime)
        quick = StateManager({"n": 0}, name="quick", runtime=runtime)
        entered, release = threading.Event(), threading.Event()

        def block(state: ImmutableState) -> ImmutableState:
            entered.set()
            assert release.wait(WAIT)
            return state

        held = slow.request_modify(block)
        assert entered.wait(WAIT)
        waiting = quick.request_modify(lambda s: s.update(n=1))
        assert not waiting.done()  # queued behind the held worker, not lost
        release.set()
        held.result(timeout=WAIT)
        assert waiting.result(timeout=WAIT).n == 1


def test_a_users_pykka_stop_all_leaves_the_pool_running() -> None:
    with Runtime("pykka-pool", workers=2, default_timeout=WAIT) as runtime:
        manager = StateManager({"n": 0}, runtime=runtime)
        pykka.ActorRegistry.stop_all(timeout=WAIT)
        replies = [manager.request_modify(lambda s: s.update(n=s.n + 1)) for _ in range(10)]
        assert [r.result(timeout=WAIT).n for r in replies] == list(range(1, 11))
        assert all(t.is_alive() for t in runtime.host.threads)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("workers", "error"),
    [
        (-1, ArgumentValueError),
        (-2, ArgumentValueError),
        (2.0, ArgumentTypeError),
        (True, ArgumentTypeError),
        ("4", ArgumentTypeError),
    ],
)
def test_a_bad_worker_count_is_refused_before_any_thread_starts(
    workers: object, error: type[Exception]
) -> None:
    before = set(threading.enumerate())
    with pytest.raises(error, match=r"Runtime\(\): 'workers' must be an int >= 0"):
        Runtime("bad", workers=workers)  # type: ignore[arg-type]
    assert set(threading.enumerate()) == before
    with pytest.raises(error, match=r"PoolHost\(\): 'workers' must be an int >= 1"):
        PoolHost(workers)  # type: ignore[arg-type]
    with pytest.raises(ArgumentValueError, match=r"PoolHost\(\): 'workers' must be an int >= 1"):
        PoolHost(0)  # Runtime(workers=0) means no pool at all


def test_a_runtime_runs_its_actors_on_a_pool_of_four_threads_unless_told_otherwise() -> None:
    with Runtime("default-pool", default_timeout=WAIT) as runtime:
        assert isinstance(runtime.host, PoolHost) and runtime.host.workers == DEFAULT_WORKERS == 4
        machines = [StateMachine("a", TOGGLE, name=f"m{i}", runtime=runtime) for i in range(20)]
        replies = [m.request_transition("b") for m in machines]
        assert all(r.result(timeout=WAIT).state == "b" for r in replies)
        names = sorted(t.name for t in runtime.host.threads)
        assert names == [f"stateward:default-pool:worker-{i}" for i in range(DEFAULT_WORKERS)]
    with Runtime("per-actor", workers=0, default_timeout=WAIT) as runtime:
        assert runtime.host is runtime.dedicated_host  # workers=0: a thread per actor
        manager = StateManager({"n": 0}, name="m", runtime=runtime)
        seen: list[str] = []

        def note(state: ImmutableState) -> ImmutableState:
            seen.append(threading.current_thread().name)
            return state

        held = manager.request_modify(note)
        manager.request_modify(note).result(timeout=WAIT)
        held.result(timeout=WAIT)
        assert seen == ["stateward:per-actor:m"] * 2


def test_a_pool_holds_no_thread_while_no_actor_is_on_it() -> None:
    """The pool's threads start with its first actor and end with its last
    one: an idle pool (the process-wide default runtime's between uses, or a
    host swapped out before use) leaves no thread running."""
    before = set(threading.enumerate())
    runtime = Runtime("lazy", workers=3, default_timeout=WAIT)
    try:
        assert set(threading.enumerate()) == before
        for round_ in range(2):  # and again after the threads have ended
            machine = StateMachine("a", TOGGLE, name=f"m{round_}", runtime=runtime)
            assert machine.request_transition("b").result(timeout=WAIT).state == "b"
            threads = runtime.host.threads  # type: ignore[attr-defined]
            assert len(threads) == 3
            machine.stop(timeout=WAIT)
            for thread in threads:
                thread.join(WAIT)
                assert not thread.is_alive(), thread.name
            assert runtime.host.threads == []  # type: ignore[attr-defined]
    finally:
        assert runtime.shutdown(timeout=WAIT).clean
    assert join_new_threads(before) == []


def test_dedicated_must_be_a_bool(runtime: Runtime) -> None:
    with pytest.raises(ArgumentTypeError, match="'dedicated' must be True or False"):
        StateManager({"n": 0}, runtime=runtime, dedicated="yes")  # type: ignore[arg-type]
    assert runtime.names() == []


def test_a_turn_that_holds_a_pooled_worker_too_long_is_reported_with_the_actors_name(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with Runtime("slow", workers=1, default_timeout=WAIT) as runtime:
        quick = StateManager({"n": 0}, name="quick", runtime=runtime)
        quick.request_modify(lambda s: s.update(n=1)).result(timeout=WAIT)
        assert not [r for r in caplog.records if "held a pooled worker" in r.getMessage()]

        entered, release = threading.Event(), threading.Event()

        def block(state: ImmutableState) -> ImmutableState:
            entered.set()
            assert release.wait(WAIT)
            return state

        # The threshold drops below the time the hook is held: no sleep needed.
        monkeypatch.setattr("stateward.actors._pool_host.SLOW_TURN_S", 0.0)
        blocker = StateManager({"n": 0}, name="blocker", runtime=runtime)
        held = blocker.request_modify(block)
        assert entered.wait(WAIT)
        release.set()
        held.result(timeout=WAIT)
        runtime.shutdown(timeout=WAIT)  # the report comes once the turn ends
    reports = [r for r in caplog.records if "held a pooled worker" in r.getMessage()]
    assert any("'blocker'" in r.getMessage() for r in reports)
    assert all(r.levelname == "WARNING" for r in reports)
    assert "dedicated=True" in reports[0].getMessage()


def test_a_pooled_runtime_names_its_quantum_and_workers_and_a_thread_per_actor_none() -> None:
    with Runtime("pooled", workers=2) as pooled, Runtime("threads", workers=0) as threads:
        assert pooled.quantum == POOL_TURN_BUDGET
        assert threads.quantum is None
        assert (pooled.workers, threads.workers) == (2, 0)
