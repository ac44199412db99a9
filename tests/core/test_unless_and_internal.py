"""``unless=`` (negated guards) in every form that takes guards, and internal
versus self transitions: which hooks run and what the history says."""

from __future__ import annotations

from typing import Any

import pytest

from stateward.core import (
    Event,
    Hook,
    HookReturnError,
    MachineBuilder,
    MachineDefinitionError,
    MachineSnapshot,
    MachineSpec,
    TransitionContext,
    TransitionRecord,
    TransitionRejected,
    apply_transition,
    decode,
    encode,
)


def busy(ctx: TransitionContext) -> bool:
    """the hero is busy"""
    return ctx.data.get("busy") is True


def go(spec: MachineSpec, **data: Any) -> str:
    return apply_transition(spec, MachineSnapshot.initial(spec, data), event="nap").snapshot.state


def test_unless_in_the_mapping_form() -> None:
    spec = MachineSpec(
        "awake",
        events={"nap": [{"move": "awake -> asleep", "unless": busy}, "awake -> working"]},
    )
    assert go(spec) == "asleep"
    assert go(spec, busy=True) == "working"


def test_unless_on_an_event_object_and_the_builder() -> None:
    spec = MachineSpec("awake", events=[Event("nap", frozenset({"awake"}), "asleep", unless=busy)])
    assert go(spec) == "asleep"
    with pytest.raises(TransitionRejected, match="rejected by 'busy': the hero is busy"):
        go(spec, busy=True)
    b = MachineBuilder("awake", states=["asleep"]).add_event(
        "nap", "awake -> asleep", unless=[busy]
    )
    with pytest.raises(TransitionRejected):
        go(b.build(), busy=True)


def test_unless_as_a_decorated_guard_hook() -> None:
    b = MachineBuilder("awake", events={"nap": "awake -> asleep"})

    @b.unless("asleep")
    def asleep_already(ctx: TransitionContext) -> bool:
        return ctx.payload.get("dreaming", False) is True

    b.unless(busy)  # bare form: every move
    spec = b.build()
    assert [h.negated for h in spec.hooks] == [True, True]
    assert go(spec) == "asleep"
    with pytest.raises(TransitionRejected, match="'busy'"):
        go(spec, busy=True)
    snap = MachineSnapshot.initial(spec)
    with pytest.raises(
        TransitionRejected, match=r"rejected by .*asleep_already.*unless: returned True"
    ):
        apply_transition(spec, snap, event="nap", payload={"dreaming": True})


def test_an_unless_guard_must_answer_a_bool() -> None:
    def vague(ctx: TransitionContext) -> Any:
        return ctx.data.get("busy")  # None when the key is missing

    spec = MachineSpec("awake", events={"nap": {"move": "awake -> asleep", "unless": vague}})
    with pytest.raises(HookReturnError, match=r"returned None; return True .veto. or False"):
        go(spec)


def test_only_a_guard_can_be_negated() -> None:
    with pytest.raises(MachineDefinitionError, match="only a guard can be negated"):
        Hook("enter", busy, "busy", negated=True)


# -- internal and self transitions ----------------------------------------------------


def counting_spec(internal: bool) -> tuple[MachineSpec, list[str]]:
    calls: list[str] = []
    b = MachineBuilder("idle", {"idle": ["busy"], "busy": []})
    b.add_event("poke", "idle -> idle", internal=internal)

    @b.on_exit("idle")
    def leave(ctx: TransitionContext) -> None:
        calls.append("exit")

    @b.on_enter("idle")
    def arrive(ctx: TransitionContext) -> None:
        calls.append("enter")

    @b.event("poke")
    def poked(ctx: TransitionContext) -> dict[str, Any]:
        calls.append("effect")
        return {"pokes": ctx.data.get("pokes", 0) + 1}

    @b.guard(event="poke")
    def allowed(ctx: TransitionContext) -> bool:
        calls.append("guard")
        return True

    @b.after_commit(event="poke")
    def done(ctx: TransitionContext) -> None:
        calls.append("after")

    return b.build(), calls


def test_a_self_transition_runs_exit_and_enter() -> None:
    from stateward.core import run_after_commit

    spec, calls = counting_spec(internal=False)
    out = apply_transition(spec, MachineSnapshot.initial(spec), event="poke")
    run_after_commit(out)
    assert calls == ["guard", "exit", "effect", "enter", "after"]
    assert (out.record.kind, out.record.internal) == ("self", False)
    assert len(out.record.to_tuple()) == 6


def test_an_internal_transition_runs_only_its_own_hooks() -> None:
    from stateward.core import run_after_commit

    spec, calls = counting_spec(internal=True)
    out = apply_transition(spec, MachineSnapshot.initial(spec), event="poke")
    run_after_commit(out)
    assert calls == ["guard", "effect", "after"]
    assert (out.snapshot.state, out.snapshot.version, out.snapshot.data["pokes"]) == ("idle", 1, 1)
    assert (out.record.kind, out.snapshot.history[-1].kind) == ("internal", "internal")
    moved = apply_transition(spec, out.snapshot, "busy")
    assert moved.record.kind == "external"


def test_an_internal_transition_must_stay_in_its_state() -> None:
    with pytest.raises(MachineDefinitionError, match="write 'b -> b'"):
        MachineSpec("a", events={"go": {"move": "a -> b", "internal": True}})
    with pytest.raises(MachineDefinitionError, match="internal must be True or False"):
        MachineSpec("a", events={"go": {"move": "a -> a", "internal": "yes"}})


def test_the_internal_flag_survives_a_snapshot_and_old_records_still_load() -> None:
    spec, _ = counting_spec(internal=True)
    out = apply_transition(spec, MachineSnapshot.initial(spec), event="poke")
    back = MachineSnapshot.from_state(decode(encode(out.snapshot.to_state())))
    assert back.history[-1].kind == "internal"
    old = out.record.to_tuple()[:6]  # a record written before internal transitions existed
    assert TransitionRecord.from_tuple(old).kind == "self"
    assert TransitionRecord.from_tuple(out.record.to_tuple()) == out.record
