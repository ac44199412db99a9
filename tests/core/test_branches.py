"""Conditional branches: an event's ordered alternatives from one source, each
with guards; the first whose guards all pass is taken, an unguarded last one is
the else; when none passes, the refusal names every alternative and why."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import pytest

from stateward.core import (
    Event,
    InvalidTransition,
    MachineBuilder,
    MachineDefinitionError,
    MachineSnapshot,
    MachineSpec,
    Reject,
    TransitionContext,
    TransitionRejected,
    apply_transition,
    apply_transition_async,
)


def exhausted(ctx: TransitionContext) -> bool:
    """the hero is not exhausted"""
    return ctx.data.get("exhausted") is True


def rich(ctx: TransitionContext) -> bool:
    return ctx.payload.get("coins", 0) > 10


def spec_with(branches: list[Any], **kw: Any) -> MachineSpec:
    return MachineSpec(
        "sweaty",
        {"sweaty": [], "asleep": [], "shopping": [], "hanging out": []},
        events={"clean_up": branches},
        **kw,
    )


def start(spec: MachineSpec, **data: Any) -> MachineSnapshot:
    return MachineSnapshot.initial(spec, data)


def test_the_first_alternative_whose_guards_pass_is_taken() -> None:
    spec = spec_with(
        [
            {"move": "sweaty -> asleep", "guards": exhausted},
            {"move": "sweaty -> shopping", "guards": [rich]},
            "sweaty -> hanging out",
        ]
    )
    assert apply_transition(spec, start(spec, exhausted=True), event="clean_up").snapshot.state == (
        "asleep"
    )
    both = apply_transition(
        spec, start(spec, exhausted=True), event="clean_up", payload={"coins": 99}
    )
    assert both.snapshot.state == "asleep"  # the first that passes, not the last
    assert (
        apply_transition(spec, start(spec), event="clean_up", payload={"coins": 99}).snapshot.state
        == "shopping"
    )
    fallback = apply_transition(spec, start(spec), event="clean_up")
    assert fallback.snapshot.state == "hanging out"  # the unguarded last one is the else
    assert (fallback.record.event, fallback.record.to_state) == ("clean_up", "hanging out")


def test_every_guard_of_an_alternative_must_pass() -> None:
    calls: list[str] = []

    def first(ctx: TransitionContext) -> bool:
        calls.append("first")
        return True

    def second(ctx: TransitionContext) -> bool:
        calls.append("second")
        return False

    spec = spec_with(
        [{"move": "sweaty -> asleep", "guards": [first, second]}, "sweaty -> shopping"]
    )
    assert apply_transition(spec, start(spec), event="clean_up").snapshot.state == "shopping"
    assert calls == ["first", "second"]


def test_when_no_alternative_passes_the_refusal_names_each_and_why() -> None:
    def broke(ctx: TransitionContext) -> None:
        raise Reject("no money left")

    spec = spec_with(
        [
            {"move": "sweaty -> asleep", "guards": exhausted},
            {"move": "sweaty -> shopping", "guards": broke},
        ],
        name="hero",
    )
    before = start(spec)
    with pytest.raises(TransitionRejected) as info:
        apply_transition(spec, before, event="clean_up")
    error = info.value
    assert [tuple(b) for b in error.alternatives] == [
        ("asleep", "exhausted", "the hero is not exhausted"),
        (
            "shopping",
            "test_when_no_alternative_passes_the_refusal_names_each_and_why.<locals>.broke",
            "no money left",
        ),
    ]
    assert error.alternatives[0].target == "asleep"
    assert (error.state, error.target, error.event) == ("sweaty", None, "clean_up")
    assert str(error).startswith("machine 'hero': event 'clean_up' from 'sweaty': no alternative")
    assert "-> 'asleep' refused by 'exhausted': the hero is not exhausted" in str(error)
    assert "no money left" in str(error)
    assert isinstance(error, InvalidTransition) and isinstance(error, ValueError)
    again = pickle.loads(pickle.dumps(error))
    assert again.alternatives == error.alternatives and str(again) == str(error)


def test_a_single_guarded_event_refuses_as_before() -> None:
    spec = spec_with([{"move": "sweaty -> asleep", "guards": exhausted}])
    with pytest.raises(TransitionRejected) as info:
        apply_transition(spec, start(spec), event="clean_up")
    assert info.value.alternatives == ()
    assert (info.value.target, info.value.guard) == ("asleep", "exhausted")


def test_each_alternative_starts_from_the_request_payload() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    b = MachineBuilder(
        "sweaty",
        {"sweaty": [], "asleep": [], "hanging out": []},
        events={
            "clean_up": [{"move": "sweaty -> asleep", "guards": exhausted}, "sweaty -> hanging out"]
        },
    )

    @b.pre_transition
    def stamp(ctx: TransitionContext) -> dict[str, Any]:
        seen.append((ctx.target, ctx.payload.to_dict()))
        return {"to": ctx.target}

    spec = b.build()
    out = apply_transition(spec, start(spec), event="clean_up", payload={"by": "x"})
    assert out.snapshot.state == "hanging out"
    assert seen == [("asleep", {"by": "x"}), ("hanging out", {"by": "x"})]
    assert out.context.payload.to_dict() == {"by": "x", "to": "hanging out"}


def test_guard_hooks_that_apply_to_an_alternative_are_its_guards_too() -> None:
    b = MachineBuilder(
        "sweaty",
        {"sweaty": [], "asleep": [], "hanging out": []},
        events=["clean_up: sweaty -> asleep", "clean_up: sweaty -> hanging out"],
    )

    @b.guard("asleep", event="clean_up")
    def tired(ctx: TransitionContext) -> bool:
        return ctx.data.get("exhausted") is True

    spec = b.build()
    assert apply_transition(spec, start(spec), event="clean_up").snapshot.state == "hanging out"
    assert apply_transition(spec, start(spec, exhausted=True), event="clean_up").snapshot.state == (
        "asleep"
    )


def test_a_refusal_after_the_choice_does_not_fall_through() -> None:
    # Exit and enter hooks veto the chosen move; they do not choose.
    b = MachineBuilder(
        "sweaty",
        {"sweaty": [], "asleep": [], "hanging out": []},
        events={
            "clean_up": [{"move": "sweaty -> asleep", "guards": exhausted}, "sweaty -> hanging out"]
        },
    )

    @b.on_enter("asleep")
    def no_beds(ctx: TransitionContext) -> bool:
        return False

    spec = b.build()
    with pytest.raises(TransitionRejected) as info:
        apply_transition(spec, start(spec, exhausted=True), event="clean_up")
    assert (info.value.target, info.value.alternatives) == ("asleep", ())
    assert info.value.guard.endswith("no_beds")


def test_a_move_by_target_runs_only_the_alternative_that_leads_there() -> None:
    spec = spec_with([{"move": "sweaty -> asleep", "guards": exhausted}, "sweaty -> hanging out"])
    with pytest.raises(TransitionRejected) as info:
        apply_transition(spec, start(spec), "asleep")
    assert (info.value.guard, info.value.event) == ("exhausted", "clean_up")
    assert apply_transition(spec, start(spec), "hanging out").record.event == "clean_up"
    named = apply_transition(spec, start(spec, exhausted=True), "asleep", event="clean_up")
    assert named.snapshot.state == "asleep"
    with pytest.raises(
        InvalidTransition, match="event 'clean_up' leads to 'asleep' or 'hanging out'"
    ):
        apply_transition(spec, start(spec), "shopping", event="clean_up")


def test_async_guards_choose_on_both_drivers() -> None:
    async def tired(ctx: TransitionContext) -> bool:
        await asyncio.sleep(0)
        return ctx.data.get("exhausted") is True

    async def busy(ctx: TransitionContext) -> bool:
        await asyncio.sleep(0)
        return ctx.data.get("busy") is True

    spec = spec_with(
        [
            {"move": "sweaty -> asleep", "guards": tired, "unless": busy},
            "sweaty -> hanging out",
        ]
    )
    assert spec.has_async_hooks
    tired_free = start(spec, exhausted=True)
    tired_busy = start(spec, exhausted=True, busy=True)
    assert apply_transition(spec, tired_free, event="clean_up").snapshot.state == "asleep"
    assert apply_transition(spec, tired_busy, event="clean_up").snapshot.state == "hanging out"

    async def both() -> tuple[str, str]:
        free = await apply_transition_async(spec, tired_free, event="clean_up")
        held = await apply_transition_async(spec, tired_busy, event="clean_up")
        return free.snapshot.state, held.snapshot.state

    assert asyncio.run(both()) == ("asleep", "hanging out")


# -- the definition -----------------------------------------------------------------


def test_an_unguarded_alternative_before_another_is_refused_with_the_fix() -> None:
    with pytest.raises(MachineDefinitionError) as info:
        spec_with(["sweaty -> asleep", {"move": "sweaty -> hanging out", "guards": rich}])
    message = str(info.value)
    assert "ambiguous event 'clean_up': from 'sweaty' it leads both to 'asleep' and to " in message
    assert "give the move to 'asleep' guards= or unless=" in message
    assert (info.value.state, info.value.event) == ("sweaty", "clean_up")


def test_alternatives_to_one_target_with_different_guards_are_allowed() -> None:
    spec = spec_with(
        [
            {"move": "sweaty -> asleep", "guards": exhausted},
            {"move": "sweaty -> asleep", "guards": rich},
            "sweaty -> hanging out",
        ]
    )
    assert len(spec.alternatives("clean_up", "sweaty")) == 3
    assert spec.events_between("sweaty", "asleep") == ("clean_up",)
    out = apply_transition(spec, start(spec), event="clean_up", payload={"coins": 11})
    assert out.snapshot.state == "asleep"


def test_the_mapping_form_refuses_unknown_keys_and_a_missing_move() -> None:
    with pytest.raises(MachineDefinitionError, match=r"a mapping needs 'move'.*got keys 'mvoe'"):
        spec_with([{"mvoe": "sweaty -> asleep"}])
    with pytest.raises(MachineDefinitionError, match="guards must be a function or a list"):
        spec_with([{"move": "sweaty -> asleep", "guards": "exhausted"}, "sweaty -> hanging out"])
    with pytest.raises(MachineDefinitionError, match="guards must be functions, got 3"):
        Event("go", frozenset({"a"}), "b", guards=[exhausted, 3])  # type: ignore[list-item]
    with pytest.raises(MachineDefinitionError, match="lists an Event named 'other'"):
        spec_with([Event("other", frozenset({"sweaty"}), "asleep", guards=(exhausted,))])


def test_a_pair_of_state_names_is_still_one_move() -> None:
    spec = MachineSpec("a", events={"go": ["a", "b"], "back": (["b", "c"], "a")})
    assert spec.alternatives("go", "a") == (Event("go", frozenset({"a"}), "b"),)
    assert spec.allowed_targets("c") == {"a"}


def test_the_builder_adds_alternatives_in_order() -> None:
    b = MachineBuilder("sweaty", states=["asleep", "hanging out"])
    b.add_event("clean_up", "sweaty -> asleep", guards=exhausted).add_event(
        "clean_up", "sweaty -> hanging out"
    )

    @b.event("clean_up")
    def wash(ctx: TransitionContext) -> dict[str, Any]:
        return {"clean": True}

    spec = b.build()
    out = apply_transition(spec, start(spec), event="clean_up")
    assert (out.snapshot.state, out.snapshot.data["clean"]) == ("hanging out", True)
    again = spec.to_builder().build()
    assert again.alternatives("clean_up", "sweaty") == spec.alternatives("clean_up", "sweaty")


def test_the_event_decorator_defines_a_guarded_alternative() -> None:
    b = MachineBuilder("sweaty", states=["asleep", "hanging out"])

    @b.event("clean_up", "sweaty", "asleep", guards=exhausted)
    def lie_down(ctx: TransitionContext) -> dict[str, Any]:
        return {"lying": True}

    b.add_event("clean_up", "sweaty -> hanging out")
    spec = b.build()
    assert apply_transition(spec, start(spec, exhausted=True), event="clean_up").snapshot.data[
        "lying"
    ]
    assert apply_transition(spec, start(spec), event="clean_up").snapshot.state == "hanging out"
    with pytest.raises(MachineDefinitionError, match="need the move"):
        b.event("clean_up", guards=exhausted)
