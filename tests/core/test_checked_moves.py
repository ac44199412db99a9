"""Checked moves: each allowed move is resolved once per spec and kept; a refused or
unknown move is never kept, and says the same thing every time it is asked."""

from __future__ import annotations

import re
from typing import Any

import pytest
from support import BOTH, DRIVERS, ORDER_FLOW_UNTIL_SHIPPED

from stateward.core import (
    ImmutableState,
    InvalidTransition,
    MachineBuilder,
    MachineDefinitionError,
    MachineSnapshot,
    MachineSpec,
    TransitionContext,
    TransitionRejected,
    apply_transition,
)

ORDER_EVENTS = {
    "pay": "pending -> paid",
    "cancel": "pending|paid -> cancelled",
    "abort": "paid -> cancelled",  # with cancel: paid -> cancelled is ambiguous by target
    "ship": "paid -> shipped",
}
STATES = list(ORDER_FLOW_UNTIL_SHIPPED)
TARGETS: list[str | None] = [None, *STATES, "nowhere"]
EVENTS: list[str | None] = [None, *ORDER_EVENTS, "nope"]


def orders() -> MachineBuilder:
    b = MachineBuilder("pending", ORDER_FLOW_UNTIL_SHIPPED, events=ORDER_EVENTS, name="o")

    @b.on_enter("paid")
    def count(ctx: TransitionContext) -> dict[str, int]:
        return {"paid": ctx.data.get("paid", 0) + 1}

    @b.event("ship")
    def ship(ctx: TransitionContext) -> dict[str, bool]:
        return {"shipped": True}

    @b.guard("cancelled")
    def allowed(ctx: TransitionContext) -> bool:
        """Cancelling is switched off."""
        return not ctx.payload.get("refuse", False)

    @b.after_commit
    def after(ctx: TransitionContext) -> None:
        pass

    return b


def attempt(
    spec: MachineSpec, state: str, target: str | None, event: str | None, driver: str
) -> tuple[Any, ...]:
    snap = MachineSnapshot(state, 3, ImmutableState(paid=1))
    try:
        out = DRIVERS[driver](spec, snap, target=target, event=event, payload={"k": 1})
    except Exception as exc:
        return (type(exc), str(exc), getattr(exc, "__notes__", None))
    return (out.snapshot, out.record, out.context, out.after_commit)


@pytest.mark.parametrize("driver", BOTH)
def test_the_table_gives_what_a_fresh_spec_gives_and_keeps_only_allowed_moves(
    driver: str,
) -> None:
    builder = orders()
    warm = builder.build()
    allowed: set[tuple[str, str | None, str | None]] = set()
    refused: set[tuple[str, str | None, str | None]] = set()
    for _ in range(2):  # the second round reads every allowed move from the table
        for state in STATES:
            for target in TARGETS:
                for event in EVENTS:
                    fresh = builder.build()
                    want = attempt(fresh, state, target, event, driver)
                    assert attempt(warm, state, target, event, driver) == want
                    key = (state, target, event)
                    if isinstance(want[0], type):
                        refused.add(key)
                        assert key not in warm._moves
                    else:
                        allowed.add(key)
                        assert key in warm._moves
    assert set(warm._moves) == allowed
    assert not allowed & refused
    # Spot checks of what the table settled: a move by target names its event.
    assert ("pending", "paid", None) in allowed
    assert ("paid", "cancelled", None) in refused  # two events lead there
    assert ("paid", "shipped", "pay") in refused
    again = attempt(warm, "pending", "paid", None, driver)
    assert again[1].event == "pay"
    assert again[0].data == {"paid": 2}


#: What the version before the table said to each refused request, word for word.
ALLOWED_FROM_PENDING = "allowed targets from 'pending': 'cancelled', 'paid'"
EVENTS_FROM_PENDING = "events from 'pending': 'cancel', 'pay'"
REFUSALS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    (
        "pending",
        {"target": "shipped"},
        InvalidTransition,
        f"machine 'o': cannot go from 'pending' to 'shipped'; {ALLOWED_FROM_PENDING}",
    ),
    (
        "pending",
        {"event": "nope"},
        InvalidTransition,
        f"machine 'o': event 'nope' cannot fire from state 'pending'; {ALLOWED_FROM_PENDING}; "
        f"{EVENTS_FROM_PENDING}; there is no event named 'nope'",
    ),
    (
        "pending",
        {"event": "ship"},
        InvalidTransition,
        f"machine 'o': event 'ship' cannot fire from state 'pending'; {ALLOWED_FROM_PENDING}; "
        f"{EVENTS_FROM_PENDING}",
    ),
    (
        "pending",
        {"target": "nowhere"},
        InvalidTransition,
        f"machine 'o': cannot go from 'pending' to 'nowhere'; {ALLOWED_FROM_PENDING}; "
        "'nowhere' is not a state of this machine",
    ),
    (
        "pending",
        {"target": "cancelled", "event": "pay"},
        InvalidTransition,
        "machine 'o': cannot go from 'pending' to 'cancelled' (event 'pay'); "
        f"{ALLOWED_FROM_PENDING}; {EVENTS_FROM_PENDING}; event 'pay' leads to 'paid'",
    ),
    ("pending", {}, TypeError, "a transition needs a target state or an event"),
    (
        "paid",
        {"target": "cancelled"},
        InvalidTransition,
        "machine 'o': cannot go from 'paid' to 'cancelled'; allowed targets from 'paid': "
        "'cancelled', 'shipped'; events 'cancel', 'abort' all lead there: "
        "name one with trigger(event)",
    ),
    (
        "bogus",
        {"event": "cancel"},
        MachineDefinitionError,
        "'bogus' is not a state of this machine; states: 'pending', 'paid', 'shipped', 'cancelled'",
    ),
]


@pytest.mark.parametrize("driver", list(DRIVERS))
def test_a_refused_move_says_the_same_every_time_and_is_never_kept(driver: str) -> None:
    spec = orders().build()
    for state, kwargs, error, message in REFUSALS:
        for _ in range(3):
            with pytest.raises(error) as info:
                DRIVERS[driver](spec, MachineSnapshot(state), **kwargs)
            assert str(info.value) == message
        assert spec._moves == {}
    DRIVERS[driver](spec, MachineSnapshot("pending"), target="paid")
    for state, kwargs, error, message in REFUSALS:
        with pytest.raises(error, match=re.escape(message)):
            DRIVERS[driver](spec, MachineSnapshot(state), **kwargs)
    assert list(spec._moves) == [("pending", "paid", None)]


def test_a_vetoed_move_is_still_allowed_and_a_later_try_passes() -> None:
    spec = orders().build()
    snap = MachineSnapshot.initial(spec)
    for _ in range(2):
        with pytest.raises(TransitionRejected, match="Cancelling is switched off"):
            apply_transition(spec, snap, event="cancel", payload={"refuse": True})
    assert apply_transition(spec, snap, event="cancel").snapshot.state == "cancelled"


def test_each_spec_has_its_own_table() -> None:
    first = orders().build()
    apply_transition(first, MachineSnapshot.initial(first), "paid")
    second = first.to_builder().build()
    assert second._moves == {}
    b = MachineBuilder("pending", ORDER_FLOW_UNTIL_SHIPPED, events=ORDER_EVENTS)

    @b.on_enter("paid")
    def other(ctx: TransitionContext) -> dict[str, str]:
        return {"by": "other"}

    third = b.build()
    snap = MachineSnapshot.initial(third)
    assert apply_transition(third, snap, "paid").snapshot.data == {"by": "other"}
    assert apply_transition(first, snap, "paid").snapshot.data == {"paid": 1}
