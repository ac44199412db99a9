"""Durable timers in core: state timeouts, hook timers, firing fenced by identity,
and how snapshots and journal deltas carry them."""

from __future__ import annotations

import datetime as dt

import pytest

from stateward.core import (
    ImmutableState,
    InvalidArgument,
    MachineBuilder,
    MachineDefinitionError,
    MachineSnapshot,
    MachineSpec,
    Reject,
    apply_creation,
    apply_transition,
)
from stateward.core._behaviours import machine_behaviour
from stateward.core._codec import decode, encode
from stateward.core._messages import Move
from stateward.core._persist import MachineCodec
from stateward.core._timer_fire import Fire, TimerFiring

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
EVENTS = {
    "pay": "pending -> paid",
    "expire": "pending -> cancelled",
    "remind": "pending|paid -> pending|paid",
    "ship": "paid -> shipped",
    "poke": "paid -> paid",
}


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def clock_at(seconds: float):  # type: ignore[no-untyped-def]
    return lambda: at(seconds)


def orders(**kwargs: object) -> MachineSpec:
    return MachineSpec(
        "pending",
        events={
            "pay": "pending -> paid",
            "expire": "pending -> cancelled",
            "ship": "paid -> shipped",
            "poke": "paid -> paid",
            "nudge": "pending -> pending",
            "back": "paid -> pending",
        },
        timeouts={"pending": (1800, "expire")},
        **kwargs,  # type: ignore[arg-type]
    )


def fire(spec: MachineSpec, snapshot: MachineSnapshot, timer_id: str, seconds: float):  # type: ignore[no-untyped-def]
    behaviour = machine_behaviour(spec, clock=clock_at(seconds))
    return behaviour(snapshot, Fire((timer_id,)))


# -- state timeouts -----------------------------------------------------------------------


def test_a_state_timeout_is_pending_from_the_creation_with_an_absolute_utc_due_time() -> None:
    spec = orders()
    snapshot = MachineSnapshot.initial(spec, at=at(0))
    (timer,) = snapshot.timers
    assert (timer.kind, timer.name, timer.event, timer.version) == ("state", "pending", "expire", 0)
    assert timer.due == at(1800)
    assert timer.due.tzinfo is dt.UTC
    assert timer.id == "state:pending@0"


def test_a_state_timeout_is_cancelled_when_its_state_is_left() -> None:
    spec = orders()
    snapshot = MachineSnapshot.initial(spec, at=at(0))
    paid = apply_transition(spec, snapshot, event="pay", clock=clock_at(10)).snapshot
    assert paid.timers == ()


def test_an_external_self_transition_restarts_the_state_timeout() -> None:
    spec = orders()
    snapshot = MachineSnapshot.initial(spec, at=at(0))
    again = apply_transition(spec, snapshot, event="nudge", clock=clock_at(100)).snapshot
    (timer,) = again.timers
    assert (timer.due, timer.version) == (at(1900), 1)


def test_a_fired_state_timeout_moves_the_machine_and_is_removed_in_the_same_transition() -> None:
    spec = orders()
    snapshot = MachineSnapshot.initial(spec, at=at(0))
    outcome = fire(spec, snapshot, "state:pending@0", 1800)
    assert outcome.snapshot.state == "cancelled"
    assert outcome.snapshot.version == 1
    assert outcome.snapshot.timers == ()
    assert outcome.snapshot.history[-1].event == "expire"
    assert isinstance(outcome.reply, TimerFiring) and outcome.reply.error is None
    # fired once: the same id again finds nothing and changes nothing
    again = fire(spec, outcome.snapshot, "state:pending@0", 1801)
    assert again.snapshot is outcome.snapshot
    assert again.reply.timer is None


def test_a_timer_set_in_an_older_state_never_fires_in_a_newer_one() -> None:
    spec = orders()
    first = MachineSnapshot.initial(spec, at=at(0))
    # left, then entered again: a new timeout, set by version 2
    paid = apply_transition(spec, first, event="pay", clock=clock_at(1)).snapshot
    back = apply_transition(spec, paid, event="back", clock=clock_at(2))
    assert back.snapshot.timers[0].id == "state:pending@2"
    dropped = fire(spec, back.snapshot, "state:pending@0", 1800)
    assert dropped.snapshot is back.snapshot  # no change, no version


def test_state_timeouts_accept_the_mapping_form_with_a_payload() -> None:
    spec = MachineSpec(
        "pending",
        events={"expire": "pending -> cancelled"},
        timeouts={"pending": {"after": 5, "event": "expire", "payload": {"why": "late"}}},
    )
    snapshot = MachineSnapshot.initial(spec, at=at(0))
    outcome = fire(spec, snapshot, snapshot.timers[0].id, 5)
    assert outcome.snapshot.history[-1].payload_keys == ("why",)
    assert spec.timeouts["pending"].payload == ImmutableState(why="late")


def test_the_builder_and_to_builder_keep_the_timeouts() -> None:
    builder = MachineBuilder(
        "pending", events=EVENTS, timeouts={"pending": (60, "remind", {"n": 1})}
    )
    spec = builder.build()
    rebuilt = spec.to_builder().build()
    assert rebuilt.timeouts == spec.timeouts
    assert spec.timeouts["pending"].seconds == 60.0


@pytest.mark.parametrize(
    ("timeouts", "words"),
    [
        ({"nowhere": (5, "expire")}, "unknown state 'nowhere'"),
        ({"pending": (5, "vanish")}, "unknown event 'vanish'"),
        ({"pending": (5, "ship")}, "cannot fire from 'pending'"),
        ({"pending": (0, "expire")}, "finite number > 0"),
        ({"pending": (-1, "expire")}, "finite number > 0"),
        ({"pending": (float("inf"), "expire")}, "finite number > 0"),
        ({"pending": (float("nan"), "expire")}, "finite number > 0"),
        ({"pending": (True, "expire")}, "finite number > 0"),
        ({"pending": ("5", "expire")}, "finite number > 0"),
        ({"pending": 5}, "must be (seconds, event)"),
        ({"pending": {"after": 5}}, "'after' and 'event'"),
        ({"pending": (5, "expire", [1])}, "payload must be a mapping"),
        ([("pending", 5)], "must be a mapping"),
    ],
)
def test_a_bad_timeout_is_refused_with_a_clear_definition_error(
    timeouts: object, words: str
) -> None:
    with pytest.raises(MachineDefinitionError, match=words.replace("(", r"\(").replace(")", r"\)")):
        MachineSpec(
            "pending",
            events={"expire": "pending -> cancelled", "ship": "cancelled -> shipped"},
            timeouts=timeouts,  # type: ignore[arg-type]
        )


# -- timers from hooks ---------------------------------------------------------------------


def hooked(**hooks: object) -> MachineSpec:
    builder = MachineBuilder("pending", events=EVENTS)
    for kind, fn in hooks.items():
        if kind == "enter_paid":
            builder.on_enter("paid")(fn)  # type: ignore[arg-type]
        elif kind == "guard_paid":
            builder.guard("paid")(fn)  # type: ignore[arg-type]
        elif kind == "after_paid":
            builder.after_commit(fn)  # type: ignore[arg-type]
        elif kind == "enter_any":
            builder.on_enter(fn)  # type: ignore[arg-type]
    return builder.build()


def test_a_hook_starts_a_named_timer_that_outlives_state_changes_until_it_fires() -> None:
    def enter(ctx):  # type: ignore[no-untyped-def]
        if ctx.event == "pay":
            ctx.start_timer("reminder", 60, "remind", {"n": 1})

    spec = hooked(enter_any=enter)
    paid = apply_transition(spec, MachineSnapshot.initial(spec), event="pay", clock=clock_at(0))
    (timer,) = paid.snapshot.timers
    assert (timer.kind, timer.name, timer.due, timer.version) == ("named", "reminder", at(60), 1)
    shipped = apply_transition(spec, paid.snapshot, event="ship", clock=clock_at(1)).snapshot
    assert shipped.timers == paid.snapshot.timers  # the very tuple: unchanged
    assert shipped.timers is paid.snapshot.timers


def test_starting_a_named_timer_again_replaces_it_and_the_old_one_never_fires() -> None:
    def enter(ctx):  # type: ignore[no-untyped-def]
        ctx.start_timer("reminder", 60, "remind")

    spec = hooked(enter_any=enter)
    first = apply_transition(spec, MachineSnapshot.initial(spec), event="pay", clock=clock_at(0))
    second = apply_transition(spec, first.snapshot, event="poke", clock=clock_at(30))
    (timer,) = second.snapshot.timers
    assert (timer.id, timer.due) == ("named:reminder@2", at(90))
    assert fire(spec, second.snapshot, "named:reminder@1", 60).snapshot is second.snapshot


def test_cancel_timer_removes_a_named_timer_and_ignores_an_unknown_name() -> None:
    def enter(ctx):  # type: ignore[no-untyped-def]
        if ctx.event == "pay":
            ctx.start_timer("reminder", 60, "remind")
        else:
            ctx.cancel_timer("reminder")
            ctx.cancel_timer("never-set")

    spec = hooked(enter_any=enter)
    paid = apply_transition(spec, MachineSnapshot.initial(spec), event="pay", clock=clock_at(0))
    poked = apply_transition(spec, paid.snapshot, event="poke", clock=clock_at(1))
    assert poked.snapshot.timers == ()


def test_an_event_timeout_is_cancelled_by_any_next_transition() -> None:
    def enter(ctx):  # type: ignore[no-untyped-def]
        if ctx.event == "pay":
            ctx.set_event_timeout(30, "ship")

    spec = hooked(enter_any=enter)
    paid = apply_transition(spec, MachineSnapshot.initial(spec), event="pay", clock=clock_at(0))
    (timer,) = paid.snapshot.timers
    assert (timer.kind, timer.event, timer.due) == ("event", "ship", at(30))
    poked = apply_transition(spec, paid.snapshot, event="poke", clock=clock_at(1))
    assert poked.snapshot.timers == ()
    # not poked: it fires
    shipped = fire(spec, paid.snapshot, timer.id, 30)
    assert shipped.snapshot.state == "shipped"


def test_send_later_sends_each_delayed_event_once() -> None:
    def enter(ctx):  # type: ignore[no-untyped-def]
        if ctx.event == "pay":
            ctx.send_later(5, "poke")
            ctx.send_later(10, "ship")

    spec = hooked(enter_any=enter)
    paid = apply_transition(spec, MachineSnapshot.initial(spec), event="pay", clock=clock_at(0))
    first, second = paid.snapshot.timers
    assert (first.id, second.id) == ("later:1@1", "later:2@1")
    poked = fire(spec, paid.snapshot, first.id, 5)
    assert poked.snapshot.state == "paid"
    assert [t.id for t in poked.snapshot.timers] == ["later:2@1"]
    shipped = fire(spec, poked.snapshot, second.id, 10)
    assert (shipped.snapshot.state, shipped.snapshot.timers) == ("shipped", ())


def test_a_vetoed_transition_sets_no_timer() -> None:
    def guard(ctx):  # type: ignore[no-untyped-def]
        ctx.start_timer("reminder", 60, "remind")
        raise Reject("not now")

    spec = hooked(guard_paid=guard)
    snapshot = MachineSnapshot.initial(spec)
    with pytest.raises(Exception, match="not now"):
        apply_transition(spec, snapshot, event="pay", clock=clock_at(0))
    assert snapshot.timers == ()


def test_a_refused_alternative_leaves_no_timer_behind() -> None:
    builder = MachineBuilder(
        "pending",
        events=["go: pending -> paid", "go: pending -> shipped", "remind: * -> pending"],
    )

    @builder.guard("paid", event="go")
    def first_branch(ctx):  # type: ignore[no-untyped-def]
        ctx.start_timer("from-refused", 60, "remind")
        return False

    spec = builder.build()
    outcome = apply_transition(spec, MachineSnapshot.initial(spec), event="go", clock=clock_at(0))
    assert outcome.snapshot.state == "shipped"
    assert outcome.snapshot.timers == ()


def test_a_hook_timer_of_an_unknown_event_refuses_the_transition() -> None:
    def enter(ctx):  # type: ignore[no-untyped-def]
        ctx.start_timer("reminder", 60, "no-such-event")

    spec = hooked(enter_paid=enter)
    with pytest.raises(InvalidArgument, match="no-such-event"):
        apply_transition(spec, MachineSnapshot.initial(spec), event="pay", clock=clock_at(0))


@pytest.mark.parametrize(
    "call",
    [
        lambda ctx: ctx.start_timer("", 5, "remind"),
        lambda ctx: ctx.start_timer("x", -1, "remind"),
        lambda ctx: ctx.start_timer("x", float("inf"), "remind"),
        lambda ctx: ctx.start_timer("x", "5", "remind"),
        lambda ctx: ctx.start_timer("x", 5, None),
        lambda ctx: ctx.send_later(5, "remind", payload=[1]),
        lambda ctx: ctx.cancel_timer(3),
    ],
)
def test_a_bad_timer_request_raises_invalid_argument_at_the_call(call: object) -> None:
    spec = hooked(enter_paid=call)
    with pytest.raises(InvalidArgument):
        apply_transition(spec, MachineSnapshot.initial(spec), event="pay", clock=clock_at(0))


def test_creation_hooks_set_timers_and_the_initial_timeout_is_pending() -> None:
    builder = MachineBuilder("pending", events=EVENTS, timeouts={"pending": (100, "remind")})

    @builder.on_enter("pending")
    def created(ctx):  # type: ignore[no-untyped-def]
        if ctx.source is None:
            ctx.send_later(5, "pay")

    spec = builder.build()
    outcome = apply_creation(spec, clock=clock_at(0))
    assert [t.id for t in outcome.snapshot.timers] == ["state:pending@0", "later:1@0"]


# -- a firing whose transition does not happen ---------------------------------------------


def test_a_refused_timer_event_uses_the_timer_up_and_reports_why() -> None:
    def guard(ctx):  # type: ignore[no-untyped-def]
        """payment is not due"""
        return False

    def enter(ctx):  # type: ignore[no-untyped-def]
        ctx.send_later(5, "pay")

    builder = MachineBuilder("pending", events={**EVENTS, "start": "pending -> pending"})
    builder.on_enter("pending", event="start")(enter)
    builder.guard("paid")(guard)
    spec = builder.build()
    started = apply_transition(
        spec, MachineSnapshot.initial(spec), event="start", clock=clock_at(0)
    )
    outcome = fire(spec, started.snapshot, started.snapshot.timers[0].id, 5)
    assert outcome.snapshot.state == "pending"
    assert outcome.snapshot.version == 2
    assert outcome.snapshot.timers == ()
    record = outcome.snapshot.history[-1]
    assert (record.event, record.internal) == ("pay", True)
    assert "payment is not due" in str(outcome.reply.error)


# -- the behaviour -------------------------------------------------------------------------


def test_the_behaviour_calls_its_timers_callback_after_commit_only_when_timers_change() -> None:
    spec = orders()
    seen: list[MachineSnapshot] = []
    behaviour = machine_behaviour(spec, clock=clock_at(0), timers=seen.append)
    start = MachineSnapshot.initial(spec, at=at(0))
    paid = behaviour(start, Move((None, "pay", None)))
    assert paid.after is not None
    assert seen == []  # only once committed
    for hook in paid.after.after_commit:
        hook.fn(paid.after.context)
    assert seen == [paid.snapshot]
    shipped = behaviour(paid.snapshot, Move((None, "ship", None)))
    assert shipped.after is None  # no timer before or after: nothing to arm


# -- documents and deltas ------------------------------------------------------------------


def test_documents_carry_timers_only_for_a_machine_that_has_some() -> None:
    flat = MachineSpec("a", {"a": ["b"], "b": []})
    plain = MachineSnapshot.initial(flat)
    assert "timers" not in plain.to_state()
    spec = orders()
    timed = MachineSnapshot.initial(spec, at=at(0))
    codec = MachineCodec(spec)
    back = codec.from_document("m", decode(encode(codec.document(timed))))
    assert back == timed


def test_deltas_carry_timers_only_when_a_commit_changes_them() -> None:
    flat = MachineSpec("a", {"a": ["b"], "b": []})
    codec = MachineCodec(flat)
    start = MachineSnapshot.initial(flat)
    moved = apply_transition(flat, start, "b", clock=clock_at(0)).snapshot
    assert len(codec.delta(start, moved)) == 3  # what it wrote before timers existed

    spec = orders()
    timed = MachineCodec(spec)
    first = MachineSnapshot.initial(spec, at=at(0))
    paid = apply_transition(spec, first, event="pay", clock=clock_at(1)).snapshot
    delta = decode(encode(timed.delta(first, paid)))
    assert timed.apply(first, delta) == paid
    shipped = apply_transition(spec, paid, event="ship", clock=clock_at(2)).snapshot
    assert len(timed.delta(paid, shipped)) == 3  # no timer changed
    replayed = timed.apply(timed.apply(first, delta), timed.delta(paid, shipped))
    assert replayed == shipped
