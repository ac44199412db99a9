"""A transition's payload: any empty form is the empty state, a given one is frozen
and kept, and its keys (pre-transition additions included) are recorded, sorted."""

from __future__ import annotations

from typing import Any

import pytest
from support import DRIVERS, FLOW

from stateward.core import ImmutableState, MachineBuilder, MachineSnapshot, TransitionContext


@pytest.mark.parametrize("driver", list(DRIVERS))
@pytest.mark.parametrize(
    "payload", [None, {}, ImmutableState()], ids=["none", "empty-dict", "empty-state"]
)
def test_an_empty_payload_of_any_form(driver: str, payload: Any) -> None:
    seen: list[ImmutableState] = []
    b = MachineBuilder("a", FLOW)

    @b.guard
    def look(ctx: TransitionContext) -> bool:
        seen.append(ctx.payload)
        return True

    spec = b.build()
    out = DRIVERS[driver](spec, MachineSnapshot.initial(spec), target="b", payload=payload)
    assert out.record.payload_keys == ()
    assert out.context.payload == ImmutableState()
    assert isinstance(out.context.payload, ImmutableState)
    assert seen == [ImmutableState()]


@pytest.mark.parametrize("driver", list(DRIVERS))
def test_payloads_are_frozen_kept_and_their_keys_recorded_sorted(driver: str) -> None:
    b = MachineBuilder("a", FLOW)
    spec = b.build()
    snap = MachineSnapshot.initial(spec)
    given = ImmutableState(z=1, a=2)
    assert DRIVERS[driver](spec, snap, target="b", payload=given).context.payload is given
    raw = {"z": [1], "a": 2}
    out = DRIVERS[driver](spec, snap, target="b", payload=raw)
    raw["z"].append(2)
    raw["q"] = 3
    assert out.context.payload == {"z": [1], "a": 2}
    assert isinstance(out.context.payload, ImmutableState)
    assert out.record.payload_keys == ("a", "z")

    @b.pre_transition
    def enrich(ctx: TransitionContext) -> dict[str, int]:
        return {"m": 0}

    enriched = b.build()
    out = DRIVERS[driver](enriched, snap, target="b", payload=given)
    assert out.record.payload_keys == ("a", "m", "z")
    assert given == {"z": 1, "a": 2}
