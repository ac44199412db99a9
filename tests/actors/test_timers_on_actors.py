"""Durable timers on the actors: armed on the runtime's one timer, re-armed on
every commit, restart, activation and recovery, fired once.

Time is driven by a `ManualClock`, and the runtime's wall clock follows it
(``Runtime(timer=clock, clock=clock.wall_clock)``): advancing the clock puts
each due timer's `Fire` in its machine's mailbox (on the advancing thread);
the machine runs it on its own worker, so the tests wait for the commit
(``wait_until``), within a bound.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stateward.actors import ManualClock, Runtime, SQLiteStore, StateMachine
from stateward.core import InvalidTransition, MachineBuilder, MachineSpec
from stateward.core._timer_fire import Fire, TimerFiring

pytestmark = pytest.mark.usefixtures("each_host")

WAIT = 10.0
EVENTS = {
    "pay": "pending -> paid",
    "expire": "pending -> cancelled",
    "ship": "paid -> shipped",
    "remind": "paid -> paid",
}


def orders() -> MachineSpec:
    return MachineSpec("pending", events=EVENTS, timeouts={"pending": (1800, "expire")})


@pytest.fixture(params=["memory", "sqlite"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def runtime(clock: ManualClock, store_kind: str, tmp_path: Path) -> Iterator[Runtime]:
    store = SQLiteStore(tmp_path / "timers.db") if store_kind == "sqlite" else None
    rt = Runtime("timers", timer=clock, clock=clock.wall_clock, store=store, default_timeout=WAIT)
    yield rt
    rt.shutdown(timeout=WAIT).check()


def test_a_state_timeout_fires_when_due_and_not_before(
    runtime: Runtime, clock: ManualClock
) -> None:
    machine = StateMachine(orders(), name="order-1", runtime=runtime)
    clock.advance(1799)
    assert machine.current_state == "pending"
    clock.advance(1)
    snapshot = machine.wait_until("cancelled", timeout=WAIT)
    assert snapshot.version == 1
    assert snapshot.history[-1].event == "expire"
    assert snapshot.history[-1].at == clock.wall_clock()
    assert runtime.machine_timers.pending() == 0


def test_a_timeout_cancelled_by_a_later_state_never_fires(
    runtime: Runtime, clock: ManualClock
) -> None:
    machine = StateMachine(orders(), name="order-1", runtime=runtime)
    machine.trigger("pay")
    assert runtime.machine_timers.pending() == 0  # disarmed by the commit, before its reply
    clock.advance(3600)
    assert machine.trigger("ship").version == 2  # nothing came in between
    assert [r.event for r in machine.history] == ["pay", "ship"]


def test_named_timers_event_timeouts_and_delayed_events_from_hooks(
    runtime: Runtime, clock: ManualClock
) -> None:
    builder = MachineBuilder("pending", events=EVENTS)

    @builder.on_enter("paid", event="pay")
    def paid(ctx):  # type: ignore[no-untyped-def]
        ctx.start_timer("reminder", 60, "remind", {"n": 1})
        ctx.set_event_timeout(30, "expire")  # cancelled by the reminder's transition
        ctx.send_later(120, "ship")

    machine = StateMachine(builder.build(), name="order-1", runtime=runtime)
    machine.trigger("pay")
    assert runtime.machine_timers.pending() == 3
    clock.advance(25)
    machine.trigger("remind")  # any event cancels the event timeout
    clock.advance(40)  # 65 s: the named timer
    machine.wait_until(lambda s: s.version == 3, timeout=WAIT)
    clock.advance(60)  # 125 s: the delayed event
    shipped = machine.wait_until("shipped", timeout=WAIT)
    assert [(r.event, r.payload_keys) for r in shipped.history] == [
        ("pay", ()),
        ("remind", ()),
        ("remind", ("n",)),
        ("ship", ()),
    ]
    assert shipped.timers == ()
    assert runtime.machine_timers.pending() == 0


def test_a_fire_for_a_timer_no_longer_pending_commits_nothing(runtime: Runtime) -> None:
    machine = StateMachine(orders(), name="order-1", runtime=runtime)
    reply = machine._request(Fire(("state:pending@7",)), None)
    firing = reply.result(WAIT)
    assert isinstance(firing, TimerFiring) and firing.timer is None
    assert machine.version == 0
    assert machine.snapshot.timers[0].id == "state:pending@0"


def test_a_refused_timer_event_is_used_up_and_reported(clock: ManualClock) -> None:
    builder = MachineBuilder("pending", events=EVENTS, timeouts={"pending": (10, "expire")})

    @builder.guard("cancelled")
    def never(ctx):  # type: ignore[no-untyped-def]
        """orders are never cancelled here"""
        return False

    reported = threading.Event()
    with Runtime(
        "refused", timer=clock, clock=clock.wall_clock, error_handler=lambda r: reported.set()
    ) as rt:
        machine = StateMachine(builder.build(), name="order-1", runtime=rt)
        clock.advance(10)
        used = machine.wait_until(lambda s: s.version == 1, timeout=WAIT)
        assert (used.state, used.timers, used.history[-1].internal) == ("pending", (), True)
        assert reported.wait(WAIT)
        (report,) = rt.errors()
        assert (report.actor, report.source) == ("order-1", "timer")
        assert "orders are never cancelled here" in str(report.error)
        assert rt.machine_timers.pending() == 0


def test_a_passivated_machine_keeps_its_timer_armed_and_is_activated_by_it(
    clock: ManualClock, tmp_path: Path
) -> None:
    store = SQLiteStore(tmp_path / "passive.db")
    with Runtime(
        "passive", timer=clock, clock=clock.wall_clock, store=store, idle_after=10_000
    ) as rt:
        machine = StateMachine(orders(), name="order-1", runtime=rt)
        machine.trigger("pay")
        later = MachineBuilder("paid", events=EVENTS)

        @later.on_enter("paid", event="remind")
        def again(ctx):  # type: ignore[no-untyped-def]
            ctx.send_later(5, "ship")

        other = StateMachine(later.build(), name="order-2", runtime=rt)
        other.trigger("remind")
        assert rt.passivate_idle() == 2
        assert rt.stats()["order-2"].passive and rt.stats()["order-1"].passive
        assert rt.machine_timers.pending() == 1
        clock.advance(5)
        shipped = other.wait_until("shipped", timeout=WAIT)
        assert shipped.version == 2
        assert rt.stats().activations == 1  # order-2 only: order-1 has no timer
        assert machine.version == 1


def test_recovery_arms_the_stored_timers_and_an_overdue_one_fires_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "reboot.db"
    first = ManualClock()
    with Runtime("before", timer=first, clock=first.wall_clock, store=SQLiteStore(path)) as rt:
        StateMachine(orders(), name="due", runtime=rt)
        paid = StateMachine(orders(), name="paid", runtime=rt)
        paid.trigger("pay")
    # three hours later, the timeout (30 minutes) fell due while nothing ran
    after = ManualClock(wall=first.wall_clock() + dt.timedelta(hours=3))
    with Runtime("after", timer=after, clock=after.wall_clock, store=SQLiteStore(path)) as rt:
        due = StateMachine(orders(), name="due", runtime=rt)
        paid = StateMachine(orders(), name="paid", runtime=rt)
        assert rt.machine_timers.pending() == 1
        after.advance(0)
        cancelled = due.wait_until("cancelled", timeout=WAIT)
        assert cancelled.version == 1
        after.advance(3600)
        assert due.version == 1 and paid.version == 1
        assert [r.event for r in due.history] == ["expire"]
        assert rt.machine_timers.pending() == 0


def test_a_restart_re_arms_what_the_recovered_snapshot_holds(
    runtime: Runtime, clock: ManualClock
) -> None:
    builder = MachineBuilder("pending", events={**EVENTS, "boom": "paid -> paid"})
    crashes = []

    @builder.on_enter("paid", event="boom")
    def boom(ctx):  # type: ignore[no-untyped-def]
        crashes.append(1)
        raise RuntimeError("boom")

    @builder.on_enter("paid", event="pay")
    def paid(ctx):  # type: ignore[no-untyped-def]
        ctx.start_timer("reminder", 60, "ship")

    machine = StateMachine(builder.build(), name="order-1", runtime=runtime, on_error="restart")
    machine.trigger("pay")
    with pytest.raises(Exception, match="boom"):
        machine.trigger("boom")
    assert runtime.machine_timers.pending() == 1
    clock.advance(60)
    assert machine.wait_until("shipped", timeout=WAIT).version == 2


def test_pending_timers_cost_no_thread_each(each_host: str) -> None:
    spec = MachineSpec("pending", events=EVENTS, timeouts={"pending": (3600, "expire")})
    before = threading.active_count()
    with Runtime("threads", workers=2 if each_host == "pool" else 0) as rt:
        machines = [StateMachine(spec, name=f"m{i}", runtime=rt) for i in range(200)]
        assert rt.machine_timers.pending() == 200
        grown = threading.active_count() - before
        assert all(m.current_state == "pending" for m in machines)
    if each_host == "pool":
        assert grown <= 2 + 1  # the pool, and the one timer thread


def test_an_overdue_timer_fires_at_recovery_on_the_system_clock(tmp_path: Path) -> None:
    """With the real timer thread and wall clock: recovered, it fires at once."""
    path = tmp_path / "overdue.db"
    an_hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    manual = ManualClock()
    with Runtime("past", store=SQLiteStore(path), timer=manual, clock=lambda: an_hour_ago) as rt:
        StateMachine(orders(), name="order-1", runtime=rt)
    with Runtime("now", store=SQLiteStore(path)) as rt:
        machine = StateMachine(orders(), name="order-1", runtime=rt)
        assert machine.wait_until("cancelled", timeout=WAIT).version == 1


def test_a_timeout_racing_a_cancelling_event_takes_effect_exactly_once_or_never(
    clock: ManualClock,
) -> None:
    """Threads pay orders while the clock passes their timeout: each order
    ends paid (the timeout dropped) or cancelled (the payment refused), never
    both, at version 1. Fixed counts; the interleaving is the scheduler's."""
    count, threads = 60, 3
    spec = orders()
    errors: list[BaseException] = []
    with Runtime("race", timer=clock, clock=clock.wall_clock, default_timeout=WAIT) as rt:
        machines = [StateMachine(spec, name=f"order-{i}", runtime=rt) for i in range(count)]
        go = threading.Barrier(threads + 1)

        def pay(part: list[StateMachine]) -> None:
            try:
                go.wait(WAIT)
                for machine in part:
                    try:
                        machine.trigger("pay")
                    except InvalidTransition:
                        pass  # expired first
            except BaseException as exc:
                errors.append(exc)

        workers = [
            threading.Thread(target=pay, args=(machines[i::threads],)) for i in range(threads)
        ]
        for worker in workers:
            worker.start()
        go.wait(WAIT)
        clock.advance(1800)
        for worker in workers:
            worker.join(WAIT)
        assert not any(worker.is_alive() for worker in workers)
        if errors:
            raise errors[0]
        for machine in machines:
            final = machine.wait_until(lambda s: s.version >= 1, timeout=WAIT)
            assert final.state in ("paid", "cancelled")
            assert final.timers == ()
        assert rt.machine_timers.pending() == 0
        assert [m.version for m in machines] == [1] * count


def test_timers_re_armed_by_every_commit_do_not_pile_up_in_the_timer(
    clock: ManualClock,
) -> None:
    """An event timeout set again by each transition cancels the last one's
    callback: the timer's heap keeps about as many entries as are pending,
    not one per transition (cancelled entries used to stay until their due
    time, an hour on)."""
    builder = MachineBuilder("idle", events={"poke": "idle -> idle", "doze": "idle -> idle"})

    @builder.on_enter("idle", event="poke")
    def keep_awake(ctx):  # type: ignore[no-untyped-def]
        ctx.set_event_timeout(3600, "doze")

    with Runtime("churn", timer=clock, clock=clock.wall_clock) as rt:
        machine = StateMachine(builder.build(), name="m", runtime=rt)
        for _ in range(3000):
            machine.trigger("poke")
        assert rt.machine_timers.pending() == 1
        assert clock.pending() == 1
        heap = clock._heap.entries  # internal: what the cancelled callbacks cost
        assert len(heap) <= 2 * 1024 + 1
        clock.advance(3600)
        assert machine.wait_until(lambda s: s.version == 3001, timeout=WAIT).history[-1].event == (
            "doze"
        )


class _GatedClock(ManualClock):
    """A ManualClock whose next call_later, once ``hold`` is set, waits for
    ``go_on`` first (having set ``inside``): a commit arming a timer pauses there."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = False
        self.inside = threading.Event()
        self.go_on = threading.Event()

    def call_later(self, delay, fn):  # type: ignore[no-untyped-def]
        if self.hold:
            self.hold = False
            self.inside.set()
            self.go_on.wait(WAIT)
        return super().call_later(delay, fn)


def test_a_timer_falling_due_while_a_commit_arms_another_does_not_deadlock() -> None:
    """The clock runs due callbacks holding its lock, and they take the
    runtime's timer table: arming must not hold that table while it asks
    the clock (it did: each waited for the other's lock, for ever)."""
    clock = _GatedClock()
    builder = MachineBuilder("idle", events={"poke": "idle -> idle", "ring": "idle -> idle"})

    @builder.on_enter("idle", event="poke")
    def set_alarm(ctx):  # type: ignore[no-untyped-def]
        ctx.start_timer("alarm", 10, "ring")

    errors: list[BaseException] = []
    with Runtime("gated", timer=clock, clock=clock.wall_clock, default_timeout=WAIT) as rt:
        due = StateMachine(builder.build(), name="due", runtime=rt)
        due.trigger("poke")  # its alarm: due in 10 s
        arming = StateMachine(builder.build(), name="arming", runtime=rt)
        clock.hold = True

        def poke() -> None:
            try:
                arming.trigger("poke")  # its commit arms a timer: paused in call_later
            except BaseException as exc:
                errors.append(exc)

        poker = threading.Thread(target=poke)
        poker.start()
        assert clock.inside.wait(WAIT)
        advancer = threading.Thread(target=clock.advance, args=(10,))
        advancer.start()
        advancer.join(5)
        finished = not advancer.is_alive()
        clock.go_on.set()
        poker.join(WAIT)
        assert finished, "advancing the clock waited for a commit arming a timer"
        assert not poker.is_alive() and not errors
        assert due.wait_until(lambda s: s.version == 2, timeout=WAIT).history[-1].event == "ring"
