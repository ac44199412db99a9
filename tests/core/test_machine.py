"""The transition algorithm: order of hooks, vetoes, rollback, async hooks, history."""

from __future__ import annotations

import asyncio
import datetime as dt
import pickle
import re
from collections.abc import Awaitable, Iterator
from typing import Any

import pytest
from support import ORDER_FLOW, TOGGLE

from stateward.core import (
    FrozenStateError,
    HookFailure,
    HookReturnError,
    ImmutableState,
    InvalidTransition,
    MachineBuilder,
    MachineSnapshot,
    MachineSpec,
    Reject,
    StatewardError,
    TransitionContext,
    TransitionOutcome,
    TransitionRecord,
    TransitionRejected,
    apply_transition,
    apply_transition_async,
    decode,
    encode,
    run_after_commit,
    run_after_commit_async,
)

T0 = dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.UTC)


def ticking_clock(start: dt.datetime = T0) -> Iterator[dt.datetime]:
    at = start
    while True:
        yield at
        at += dt.timedelta(seconds=1)


def clock_from(ticks: Iterator[dt.datetime]) -> Any:
    return lambda: next(ticks)


def builder(**kwargs: Any) -> MachineBuilder:
    return MachineBuilder("pending", ORDER_FLOW, **kwargs)


def start(spec: MachineSpec, **data: Any) -> MachineSnapshot:
    return MachineSnapshot.initial(spec, data)


# -- moves by target and by event ---------------------------------------------------------------


def test_a_move_by_target_gives_a_new_snapshot() -> None:
    spec = builder().build()
    before = start(spec, total=10)
    outcome = apply_transition(spec, before, "paid", payload={"amount": 10}, clock=lambda: T0)
    after = outcome.snapshot
    assert (after.state, after.version, after.data) == ("paid", 1, ImmutableState(total=10))
    assert outcome.previous is before
    assert outcome.record == TransitionRecord(1, "pending", "paid", None, T0, ("amount",))
    assert after.history == (outcome.record,)
    assert before == MachineSnapshot("pending", 0, ImmutableState(total=10), ())
    assert outcome.context.payload == {"amount": 10}
    assert outcome.context.at == T0


def test_a_move_by_event() -> None:
    spec = builder(events={"cancel": "pending|paid -> cancelled"}).build()
    snap = apply_transition(spec, start(spec), "paid").snapshot
    outcome = apply_transition(spec, snap, event="cancel")
    assert outcome.snapshot.state == "cancelled"
    assert outcome.record.event == "cancel"
    assert outcome.context.event == "cancel"
    # Naming the event and its target together is fine.
    assert apply_transition(spec, snap, "cancelled", event="cancel").snapshot.state == "cancelled"


def test_snapshot_is_immutable() -> None:
    snap = start(builder().build(), a=1)
    with pytest.raises(AttributeError):
        snap.state = "paid"  # type: ignore[misc]
    with pytest.raises(FrozenStateError):
        snap.data.a = 2


def test_a_move_needs_a_target_or_an_event() -> None:
    spec = builder().build()
    with pytest.raises(TypeError, match="needs a target state or an event"):
        apply_transition(spec, start(spec))


# -- invalid moves ---------------------------------------------------------------------------


def test_a_disallowed_target_raises_invalid_transition() -> None:
    spec = builder().build()
    snap = start(spec)
    with pytest.raises(
        InvalidTransition,
        match=r"cannot go from 'pending' to 'shipped'; allowed targets from 'pending': "
        r"'cancelled', 'paid'$",
    ) as info:
        apply_transition(spec, snap, "shipped")
    err = info.value
    assert (err.state, err.target, err.event) == ("pending", "shipped", None)
    assert err.allowed == ("cancelled", "paid")
    assert isinstance(err, ValueError)
    assert isinstance(err, StatewardError)
    assert snap == start(spec)


def test_leaving_a_terminal_state_says_so() -> None:
    spec = builder().build()
    snap = MachineSnapshot("delivered", 3)
    with pytest.raises(InvalidTransition, match=r"none \('delivered' is a terminal state\)") as e:
        apply_transition(spec, snap, "pending")
    assert e.value.allowed == ()


def test_an_unknown_target_state() -> None:
    spec = builder().build()
    with pytest.raises(InvalidTransition, match="'refunded' is not a state of this machine"):
        apply_transition(spec, start(spec), "refunded")


def test_an_unknown_event() -> None:
    spec = builder(events={"pay": "pending -> paid"}).build()
    with pytest.raises(
        InvalidTransition,
        match=r"event 'refund' cannot fire from state 'pending'.*events from 'pending': 'pay'; "
        r"there is no event named 'refund'",
    ) as info:
        apply_transition(spec, start(spec), event="refund")
    assert info.value.event == "refund"
    assert info.value.target is None
    assert info.value.allowed_events == ("pay",)


def test_an_event_that_cannot_fire_from_the_current_state() -> None:
    spec = builder(events={"ship": "paid -> shipped"}).build()
    with pytest.raises(InvalidTransition, match=r"event 'ship' cannot fire from state 'pending'"):
        apply_transition(spec, start(spec), event="ship")
    paid = MachineSnapshot("paid", 1)
    with pytest.raises(InvalidTransition, match=r"event 'ship' leads to 'shipped'") as info:
        apply_transition(spec, paid, "cancelled", event="ship")
    assert (info.value.target, info.value.event) == ("cancelled", "ship")


def test_the_machine_name_is_in_the_message() -> None:
    spec = builder(name="orders").build()
    with pytest.raises(InvalidTransition, match=r"^machine 'orders': cannot go"):
        apply_transition(spec, start(spec), "shipped")
    with pytest.raises(InvalidTransition, match=r"^machine 'order-7': cannot go") as info:
        apply_transition(spec, start(spec), "shipped", machine="order-7")
    assert info.value.machine == "order-7"


def test_transition_errors_survive_pickling() -> None:
    spec = builder(events={"pay": "pending -> paid"}, name="orders").build()
    with pytest.raises(InvalidTransition) as info:
        apply_transition(spec, start(spec), "shipped", event="pay")
    back = pickle.loads(pickle.dumps(info.value))
    assert type(back) is InvalidTransition
    assert (back.state, back.target, back.event, back.allowed, back.machine) == (
        "pending",
        "shipped",
        "pay",
        ("cancelled", "paid"),
        "orders",
    )
    assert str(back) == str(info.value)

    rejected = TransitionRejected(
        "pending", "paid", ["paid"], guard="amount_positive", reason="no money", event="pay"
    )
    back_rejected = pickle.loads(pickle.dumps(rejected))
    assert type(back_rejected) is TransitionRejected
    assert (back_rejected.guard, back_rejected.reason) == ("amount_positive", "no money")
    assert (back_rejected.state, back_rejected.target, back_rejected.event) == (
        "pending",
        "paid",
        "pay",
    )
    assert str(back_rejected) == str(rejected)


# -- the order of hooks ------------------------------------------------------------------------


def test_hooks_run_in_the_documented_order() -> None:
    calls: list[str] = []
    b = builder(events={"pay": "pending -> paid"})

    @b.after_commit
    def after(ctx: TransitionContext) -> None:
        calls.append("after_commit")

    @b.on_enter("paid")
    def enter(ctx: TransitionContext) -> None:
        calls.append("enter")

    @b.event("pay")
    def effect(ctx: TransitionContext) -> None:
        calls.append("effect")

    @b.on_exit("pending")
    def leave(ctx: TransitionContext) -> None:
        calls.append("exit")

    @b.guard
    def guard(ctx: TransitionContext) -> None:
        calls.append("guard")

    @b.pre_transition
    def pre(ctx: TransitionContext) -> None:
        calls.append("pre_transition")

    spec = b.build()
    outcome = apply_transition(spec, start(spec), event="pay")
    assert calls == ["pre_transition", "guard", "exit", "effect", "enter"]
    calls.append("commit")
    assert run_after_commit(outcome) == ()
    assert calls == ["pre_transition", "guard", "exit", "effect", "enter", "commit", "after_commit"]


def test_hooks_of_one_kind_run_by_order_then_registration() -> None:
    calls: list[str] = []
    b = builder()
    b.guard(order=2)(lambda ctx: calls.append("b"))
    b.guard(order=1)(lambda ctx: calls.append("a"))
    b.guard(order=2)(lambda ctx: calls.append("c"))
    spec = b.build()
    apply_transition(spec, start(spec), "paid")
    assert calls == ["a", "b", "c"]


def test_hooks_run_only_for_the_moves_they_filter() -> None:
    calls: list[str] = []
    b = builder(events={"cancel": "pending|paid -> cancelled"})
    b.guard("paid")(lambda ctx: calls.append("into paid"))
    b.on_exit("paid")(lambda ctx: calls.append("out of paid"))
    b.on_enter(source="paid", to="cancelled")(lambda ctx: calls.append("paid->cancelled"))
    b.pre_transition(event="cancel")(lambda ctx: calls.append("cancel event"))
    spec = b.build()
    snap = apply_transition(spec, start(spec), "paid").snapshot
    assert calls == ["into paid"]
    # A move named by its target is the event that makes it: "cancel" here.
    assert apply_transition(spec, start(spec), "cancelled").record.event == "cancel"
    assert calls == ["into paid", "cancel event"]
    apply_transition(spec, snap, event="cancel")
    assert calls == ["into paid", "cancel event", "cancel event", "out of paid", "paid->cancelled"]


def test_a_move_by_target_runs_the_effect_of_the_one_event_that_makes_it() -> None:
    b = MachineBuilder("unknown", {"unknown": ["alive", "dead"], "alive": [], "dead": []})

    @b.event("rip", "unknown", "dead")
    def rip(ctx):
        return {"time_of_death": ctx.at}

    spec = b.build()
    outcome = apply_transition(spec, start(spec), "dead", clock=lambda: T0)
    assert outcome.record.event == "rip"
    assert outcome.snapshot.data == {"time_of_death": T0}
    # A plain mapping move with no event stays a plain move.
    assert apply_transition(spec, start(spec), "alive").record.event is None


def test_a_move_by_target_that_several_events_make_must_name_one() -> None:
    spec = MachineSpec("a", events=["go: a -> b", "jump: a -> b"])
    with pytest.raises(InvalidTransition, match="events 'go', 'jump' all lead there"):
        apply_transition(spec, start(spec), "b")
    assert apply_transition(spec, start(spec), event="jump").record.event == "jump"


def test_pre_transition_enriches_the_payload_for_later_hooks() -> None:
    seen: list[ImmutableState] = []
    b = builder()

    @b.pre_transition
    def add_total(ctx: TransitionContext) -> dict[str, int]:
        return {"total": ctx.payload["amount"] * 2}

    @b.pre_transition
    def nothing(ctx: TransitionContext) -> None:
        return None

    @b.guard
    def look(ctx: TransitionContext) -> None:
        seen.append(ctx.payload)

    spec = b.build()
    outcome = apply_transition(spec, start(spec), "paid", payload={"amount": 5})
    assert seen == [ImmutableState(amount=5, total=10)]
    assert outcome.context.payload == {"amount": 5, "total": 10}
    assert outcome.record.payload_keys == ("amount", "total")


def test_exit_effect_and_enter_change_the_data_in_turn() -> None:
    seen: list[dict[str, Any]] = []
    b = builder(events={"pay": "pending -> paid"})

    @b.on_exit
    def leave(ctx: TransitionContext) -> dict[str, Any]:
        seen.append(ctx.data.to_dict())
        return {"left": ctx.source}

    @b.event("pay")
    def pay(ctx: TransitionContext) -> dict[str, Any]:
        seen.append(ctx.data.to_dict())
        return {"paid": ctx.payload["amount"]}

    @b.on_enter
    def arrive(ctx: TransitionContext) -> bool:
        seen.append(ctx.data.to_dict())
        return True  # True means "no changes"

    spec = b.build()
    before = start(spec, n=1)
    outcome = apply_transition(spec, before, event="pay", payload={"amount": 3})
    assert seen == [{"n": 1}, {"n": 1, "left": "pending"}, {"n": 1, "left": "pending", "paid": 3}]
    assert outcome.snapshot.data == {"n": 1, "left": "pending", "paid": 3}
    assert before.data == {"n": 1}


def test_the_context_describes_the_move() -> None:
    got: list[TransitionContext] = []
    b = builder(name="orders")
    b.guard(got.append)
    spec = b.build()
    snap = MachineSnapshot("paid", 4, ImmutableState(x=1))
    apply_transition(spec, snap, "shipped", payload={"p": 1}, clock=lambda: T0)
    (ctx,) = got
    assert (ctx.source, ctx.target, ctx.event, ctx.version, ctx.machine, ctx.at) == (
        "paid",
        "shipped",
        None,
        5,
        "orders",
        T0,
    )
    assert ctx.payload == {"p": 1}
    assert ctx.data == {"x": 1}


# -- vetoes and errors before the commit --------------------------------------------------------


def test_a_guard_returning_false_vetoes_with_its_docstring() -> None:
    calls: list[str] = []
    b = builder()

    @b.guard("paid")
    def amount_positive(ctx: TransitionContext) -> bool:
        """The amount must be positive.

        More detail that is not part of the reason.
        """
        return ctx.payload.get("amount", 0) > 0

    b.on_enter(lambda ctx: calls.append("enter"))
    spec = b.build()
    snap = start(spec)
    with pytest.raises(
        TransitionRejected,
        match=r"transition 'pending' -> 'paid' rejected by '.*amount_positive': "
        r"The amount must be positive\.$",
    ) as info:
        apply_transition(spec, snap, "paid", payload={"amount": 0})
    err = info.value
    assert err.guard.endswith("amount_positive")
    assert err.reason == "The amount must be positive."
    assert (err.state, err.target) == ("pending", "paid")
    assert isinstance(err, InvalidTransition)
    assert calls == []
    assert snap == start(spec)
    assert apply_transition(spec, snap, "paid", payload={"amount": 1}).snapshot.state == "paid"


def test_a_guard_without_docstring_says_it_returned_false() -> None:
    b = builder()
    b.guard(name="no_doc")(lambda ctx: False)
    spec = b.build()
    with pytest.raises(TransitionRejected, match="rejected by 'no_doc': returned False") as info:
        apply_transition(spec, start(spec), "paid")
    assert info.value.reason == "returned False"


def test_only_false_vetoes() -> None:
    b = builder()
    for value in (None, 0, "", True, []):
        b.guard(lambda ctx, value=value: value)
    spec = b.build()
    assert apply_transition(spec, start(spec), "paid").snapshot.state == "paid"


@pytest.mark.parametrize("kind", ["pre_transition", "guard", "on_exit", "on_enter"])
def test_reject_vetoes_from_any_hook_before_the_commit(kind: str) -> None:
    b = builder(events={"pay": "pending -> paid"})

    def stock_check(ctx: TransitionContext) -> None:
        raise Reject("out of stock")

    getattr(b, kind)(stock_check)
    spec = b.build()
    snap = start(spec, n=1)
    with pytest.raises(
        TransitionRejected,
        match=r"^transition 'pending' -> 'paid' \(event 'pay'\) rejected by "
        r"'.*stock_check': out of stock$",
    ) as info:
        apply_transition(spec, snap, event="pay")
    assert info.value.reason == "out of stock"
    assert info.value.event == "pay"
    assert isinstance(info.value.__cause__, Reject)
    assert snap == start(spec, n=1)


def test_an_effect_or_enter_hook_can_veto_by_returning_false() -> None:
    b = builder(events={"pay": "pending -> paid"})

    @b.event("pay")
    def charge(ctx: TransitionContext) -> bool:
        """Card declined"""
        return False

    spec = b.build()
    with pytest.raises(TransitionRejected, match=r"rejected by '.*charge': Card declined") as info:
        apply_transition(spec, start(spec), event="pay")
    assert info.value.guard.endswith("charge")

    b2 = builder()
    b2.on_enter("paid", name="enter_paid")(lambda ctx: False)
    spec2 = b2.build()
    with pytest.raises(TransitionRejected, match="rejected by 'enter_paid'"):
        apply_transition(spec2, start(spec2), "paid")


def test_an_error_in_a_hook_reaches_the_caller_unchanged() -> None:
    boom = ValueError("boom")
    calls: list[str] = []
    b = builder()

    @b.on_exit
    def breaks(ctx: TransitionContext) -> None:
        raise boom

    b.on_enter(lambda ctx: calls.append("enter"))
    b.after_commit(lambda ctx: calls.append("after"))
    spec = b.build()
    snap = start(spec, x=[1])
    with pytest.raises(ValueError, match="boom") as info:
        apply_transition(spec, snap, "paid")
    assert info.value is boom
    notes = boom.__notes__  # add_note() names the hook
    assert any("exit hook '" in note and "'pending' -> 'paid'" in note for note in notes)
    assert calls == []
    assert snap == start(spec, x=[1])


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("pre_transition", ["not", "a", "mapping"], "return None or a mapping of payload"),
        ("on_exit", 42, "return None, a mapping of changes to the machine's data, or False"),
        ("on_enter", "text", "return None, a mapping of changes"),
    ],
)
def test_a_hook_returning_something_unusable(kind: str, value: object, message: str) -> None:
    b = builder()
    getattr(b, kind)(name="odd")(lambda ctx: value)
    spec = b.build()
    snap = start(spec)
    with pytest.raises(
        HookReturnError, match=re.escape(f"hook 'odd' returned {value!r}; {message}")
    ) as e:
        apply_transition(spec, snap, "paid")
    assert (e.value.hook, e.value.value) == ("odd", value)
    assert isinstance(e.value, TypeError)
    assert snap == start(spec)
    back = pickle.loads(pickle.dumps(e.value))
    assert (back.hook, back.kind, back.value, str(back)) == (
        "odd",
        e.value.kind,
        value,
        str(e.value),
    )


def test_an_unencodable_payload_or_data_change_is_refused() -> None:
    b = builder()
    b.on_enter(lambda ctx: {"bad": object()})
    spec = b.build()
    with pytest.raises(TypeError, match="payload_thing"):
        apply_transition(spec, start(spec), "paid", payload={"payload_thing": object()})
    with pytest.raises(TypeError, match=r"^bad: object cannot be stored"):
        apply_transition(spec, start(spec), "paid")


# -- after-commit hooks ------------------------------------------------------------------------


def test_after_commit_errors_are_returned_and_the_others_still_run() -> None:
    calls: list[str] = []
    first_error = RuntimeError("mail server down")
    b = builder()

    @b.after_commit(order=1)
    def notify(ctx: TransitionContext) -> None:
        calls.append("notify")
        raise first_error

    @b.after_commit(order=2)
    def audit(ctx: TransitionContext) -> None:
        calls.append("audit")

    @b.after_commit(order=3, name="metrics")
    def metrics(ctx: TransitionContext) -> None:
        calls.append("metrics")
        raise KeyError("gauge")

    spec = b.build()
    outcome = apply_transition(spec, start(spec), "paid")
    assert calls == []  # nothing runs before the caller commits
    failures = run_after_commit(outcome)
    assert calls == ["notify", "audit", "metrics"]
    assert [f.hook for f in failures] == [notify.__qualname__, "metrics"]
    assert all(isinstance(f, HookFailure) and f.kind == "after_commit" for f in failures)
    assert failures[0].error is first_error
    assert isinstance(failures[1].error, KeyError)
    assert outcome.snapshot.state == "paid"


def test_after_commit_hooks_get_the_final_context() -> None:
    got: list[TransitionContext] = []
    b = builder()
    b.pre_transition(lambda ctx: {"added": 1})
    b.on_enter(lambda ctx: {"entered": True})
    b.after_commit(got.append)
    b.after_commit("cancelled")(lambda ctx: pytest.fail("filtered out"))
    spec = b.build()
    outcome = apply_transition(spec, start(spec), "paid")
    assert len(outcome.after_commit) == 1
    assert run_after_commit(outcome) == ()
    (ctx,) = got
    assert ctx.payload == {"added": 1}
    assert ctx.data == {"entered": True}
    assert ctx is outcome.context


# -- async hooks ---------------------------------------------------------------------------------


def async_spec(calls: list[str]) -> MachineSpec:
    b = builder()

    @b.pre_transition
    async def fetch(ctx: TransitionContext) -> dict[str, int]:
        await asyncio.sleep(0)
        calls.append("pre")
        return {"fetched": 1}

    @b.guard
    async def check(ctx: TransitionContext) -> bool:
        """Not enough stock"""
        await asyncio.sleep(0)
        calls.append("guard")
        return ctx.payload.get("ok", True)

    @b.on_enter
    def sync_enter(ctx: TransitionContext) -> dict[str, int]:
        calls.append("enter")
        return {"n": ctx.payload["fetched"]}

    @b.after_commit
    async def publish(ctx: TransitionContext) -> None:
        await asyncio.sleep(0)
        calls.append("after")

    @b.after_commit
    async def broken(ctx: TransitionContext) -> None:
        await asyncio.sleep(0)
        raise OSError("no network")

    return b.build()


def test_async_hooks_through_apply_transition_on_a_private_loop() -> None:
    calls: list[str] = []
    spec = async_spec(calls)
    outcome = apply_transition(spec, start(spec), "paid")
    assert calls == ["pre", "guard", "enter"]
    assert outcome.snapshot.data == {"n": 1}
    failures = run_after_commit(outcome)
    assert calls == ["pre", "guard", "enter", "after"]
    assert [type(f.error) for f in failures] == [OSError]


def test_an_async_guard_vetoes_too() -> None:
    calls: list[str] = []
    spec = async_spec(calls)
    snap = start(spec)
    with pytest.raises(TransitionRejected, match="Not enough stock"):
        apply_transition(spec, snap, "paid", payload={"ok": False})
    with pytest.raises(TransitionRejected, match="Not enough stock"):
        asyncio.run(apply_transition_async(spec, snap, "paid", payload={"ok": False}))
    assert "enter" not in calls


def test_apply_transition_async_awaits_on_the_running_loop() -> None:
    calls: list[str] = []
    spec = async_spec(calls)

    async def main() -> tuple[TransitionOutcome, tuple[HookFailure, ...]]:
        outcome = await apply_transition_async(spec, start(spec), "paid", clock=lambda: T0)
        return outcome, await run_after_commit_async(outcome)

    outcome, failures = asyncio.run(main())
    assert calls == ["pre", "guard", "enter", "after"]
    assert outcome.snapshot.state == "paid"
    assert outcome.record.at == T0
    assert [f.hook for f in failures] == [spec.hooks[-1].name]


def test_an_async_hook_error_reaches_the_caller() -> None:
    b = builder()

    @b.on_exit
    async def breaks(ctx: TransitionContext) -> None:
        await asyncio.sleep(0)
        raise LookupError("gone")

    spec = b.build()
    with pytest.raises(LookupError, match="gone"):
        apply_transition(spec, start(spec), "paid")
    with pytest.raises(LookupError, match="gone"):
        asyncio.run(apply_transition_async(spec, start(spec), "paid"))


def test_apply_transition_with_an_async_hook_inside_a_running_loop_is_refused() -> None:
    calls: list[str] = []
    spec = async_spec(calls)

    async def main() -> None:
        apply_transition(spec, start(spec), "paid")

    with pytest.raises(
        RuntimeError,
        match=r"async hook cannot run from apply_transition\(\) inside a running event loop; "
        r"use 'await apply_transition_async\(\.\.\.\)'",
    ):
        asyncio.run(main())
    assert calls == []


def test_sync_hooks_work_with_apply_transition_inside_a_running_loop() -> None:
    spec = builder().build()

    async def main() -> str:
        return apply_transition(spec, start(spec), "paid").snapshot.state

    assert asyncio.run(main()) == "paid"


def test_run_after_commit_inside_a_running_loop_reports_async_hooks() -> None:
    calls: list[str] = []
    spec = async_spec(calls)
    outcome = apply_transition(spec, start(spec), "paid")

    async def main() -> tuple[HookFailure, ...]:
        return run_after_commit(outcome)

    failures = asyncio.run(main())
    assert len(failures) == 2
    assert all(isinstance(f.error, RuntimeError) for f in failures)
    assert "after" not in calls


def test_a_custom_async_runner() -> None:
    calls: list[str] = []
    spec = async_spec(calls)
    loop = asyncio.new_event_loop()
    ran: list[object] = []

    def runner(awaitable: Awaitable[Any]) -> Any:
        ran.append(awaitable)
        return loop.run_until_complete(awaitable)

    try:
        outcome = apply_transition(spec, start(spec), "paid", run_async=runner)
        assert len(ran) == 2  # pre_transition and guard
        run_after_commit(outcome, run_async=runner)
        assert len(ran) == 4
    finally:
        loop.close()
    assert calls == ["pre", "guard", "enter", "after"]


# -- history ------------------------------------------------------------------------------------


def walk(spec: MachineSpec, targets: list[str], **kwargs: Any) -> MachineSnapshot:
    snap = start(spec)
    for target in targets:
        snap = apply_transition(spec, snap, target, **kwargs).snapshot
    return snap


def test_history_is_bounded_by_history_limit() -> None:
    spec = MachineSpec("a", TOGGLE, history_limit=3)
    snap = walk(spec, ["b", "a", "b", "a", "b"])
    assert snap.version == 5
    assert [r.version for r in snap.history] == [3, 4, 5]
    assert [(r.from_state, r.to_state) for r in snap.history] == [
        ("a", "b"),
        ("b", "a"),
        ("a", "b"),
    ]


@pytest.mark.parametrize(("limit", "kept"), [(0, []), (1, [4]), (2, [3, 4]), (10, [1, 2, 3, 4])])
def test_history_limits(limit: int, kept: list[int]) -> None:
    spec = MachineSpec("a", TOGGLE, history_limit=limit)
    snap = walk(spec, ["b", "a", "b", "a"])
    assert snap.version == 4
    assert [r.version for r in snap.history] == kept


def test_records_carry_version_states_event_time_and_payload_keys() -> None:
    spec = MachineSpec("a", TOGGLE, events={"flip": "a -> b"})
    clock = clock_from(ticking_clock())
    snap = apply_transition(spec, start(spec), event="flip", payload={"z": 1, "y": 2}, clock=clock)
    snap = apply_transition(spec, snap.snapshot, "a", clock=clock)
    assert snap.snapshot.history == (
        TransitionRecord(1, "a", "b", "flip", T0, ("y", "z")),
        TransitionRecord(2, "b", "a", None, T0 + dt.timedelta(seconds=1), ()),
    )


def test_the_default_clock_is_utc_now() -> None:
    spec = MachineSpec("a", TOGGLE)
    before = dt.datetime.now(dt.UTC)
    record = apply_transition(spec, start(spec), "b").record
    assert record.at.tzinfo is dt.UTC
    assert record.at >= before


def test_record_tuple_round_trip() -> None:
    record = TransitionRecord(3, "a", "b", "go", T0, ("k",))
    assert TransitionRecord.from_tuple(record.to_tuple()) == record
    assert TransitionRecord.from_tuple(decode(encode(record.to_tuple()))) == record


# -- snapshots ----------------------------------------------------------------------------------


def test_initial_snapshot() -> None:
    spec = builder().build()
    snap = MachineSnapshot.initial(spec, {"items": [1]})
    assert (snap.state, snap.version, snap.history) == ("pending", 0, ())
    assert type(snap.data) is ImmutableState
    assert snap.data.items == [1]
    data = ImmutableState(a=1)
    assert MachineSnapshot.initial(spec, data).data is data
    assert MachineSnapshot.initial(spec).data == ImmutableState()


def test_snapshot_round_trips_through_the_codec() -> None:
    spec = MachineSpec("a", TOGGLE, events={"flip": "a -> b"}, history_limit=5)
    snap = MachineSnapshot.initial(spec, {"nested": {"k": [1, (2, 3)]}, "when": T0})
    clock = clock_from(ticking_clock())
    snap = apply_transition(spec, snap, event="flip", payload={"p": 1}, clock=clock).snapshot
    snap = apply_transition(spec, snap, "a", clock=clock).snapshot
    form = snap.to_state()
    assert type(form) is ImmutableState
    back = MachineSnapshot.from_state(decode(encode(form)))
    assert back == snap
    assert type(back.data) is ImmutableState
    assert type(back.data.nested["k"][1]) is tuple
    assert back.history[0].at == T0
    assert back.history[0].payload_keys == ("p",)


def test_from_state_accepts_a_plain_mapping() -> None:
    snap = MachineSnapshot.from_state({"state": "a", "version": 2, "data": {"x": 1}, "history": []})
    assert snap == MachineSnapshot("a", 2, ImmutableState(x=1), ())


def test_a_refused_transition_carries_no_internal_exception() -> None:
    # The move table is a cache: a miss once showed a chained KeyError
    # ('paid', 'paid', None) above the InvalidTransition in every traceback.
    spec = MachineSpec("pending", ORDER_FLOW)
    paid = apply_transition(spec, MachineSnapshot.initial(spec), "paid").snapshot
    for target in ("paid", "pending", "nowhere"):
        with pytest.raises(InvalidTransition) as caught:
            apply_transition(spec, paid, target)
        assert caught.value.__context__ is None
        assert caught.value.__cause__ is None
        with pytest.raises(InvalidTransition) as again:  # the second time, too
            apply_transition(spec, paid, target)
        assert again.value.__context__ is None
