"""Compound (nested) states: the definition and its errors, moves defined on a
parent, entering a compound state, the exit and enter order of hooks, internal
transitions inside a compound source, configurations in records."""

from __future__ import annotations

import re
from typing import Any

import pytest

from stateward.core import (
    InvalidTransition,
    MachineBuilder,
    MachineDefinitionError,
    MachineSnapshot,
    MachineSpec,
    TransitionContext,
    TransitionRejected,
    apply_creation,
    apply_transition,
)

EVENTS = {
    "power": "off -> on",
    "off": "on -> off",
    "work": "idle -> busy",
    "rest": "busy -> idle",
    "jam": "busy -> stuck",
    "fix": "stuck -> on",
}
COMPOUND = {"on": ["idle", "working"], "working": ["busy", "stuck"]}


def build(**extra: Any) -> MachineBuilder:
    return MachineBuilder("off", events=dict(EVENTS), compound=COMPOUND, **extra)


def walk(spec: MachineSpec, *events: str, start: MachineSnapshot | None = None) -> MachineSnapshot:
    snap = start if start is not None else MachineSnapshot.initial(spec)
    for event in events:
        snap = apply_transition(spec, snap, event=event).snapshot
    return snap


def recorder(builder: MachineBuilder, states: list[str], calls: list[str]) -> None:
    for state in states:
        builder.on_exit(state)(lambda ctx, s=state: calls.append(f"exit {s}"))
        builder.on_enter(state)(lambda ctx, s=state: calls.append(f"enter {s}"))


# -- the definition ---------------------------------------------------------------------


def test_the_tree_queries() -> None:
    spec = build().build()
    assert spec.is_hierarchical and not spec.has_parallel
    assert spec.parent("busy") == "working" and spec.parent("on") is None
    assert spec.children("on") == ("idle", "working")
    assert spec.ancestors("stuck") == ("working", "on")
    assert spec.is_compound("working") and not spec.is_compound("busy")
    assert not spec.is_parallel("on")
    assert spec.initial_configuration == {"off"}
    assert spec.states == ("off", "on", "idle", "working", "busy", "stuck")
    flat = MachineSpec("a", {"a": ["b"], "b": []})
    assert not flat.is_hierarchical and flat.parent("a") is None and flat.children("a") == ()
    assert flat.initial_configuration == {"a"} and flat.history_states == {}


def test_an_initial_compound_state_enters_its_initial_descendants() -> None:
    spec = MachineSpec("on", events=EVENTS, compound=COMPOUND)
    snap = MachineSnapshot.initial(spec)
    assert snap.state == "idle" and snap.configuration == {"on", "idle"}
    chosen = MachineSpec(
        "on",
        events=EVENTS,
        compound={
            "on": {"initial": "working", "states": ["idle", "working"]},
            "working": ["busy", "stuck"],
        },
    )
    snap = MachineSnapshot.initial(chosen)
    assert snap.state == "busy" and snap.configuration == {"on", "working", "busy"}


@pytest.mark.parametrize(
    ("kwargs", "culprit"),
    [
        ({"compound": {"a": ["x"], "b": ["x"]}}, "'x' has two parents, 'a' and 'b'"),
        ({"compound": {"a": ["b"], "b": ["a"]}}, "form a cycle"),
        ({"compound": {"a": []}}, "compound state 'a' has no children"),
        (
            {"compound": {"a": {"initial": "z", "states": ["x"]}}},
            "its initial child 'z' is not one of its children",
        ),
        ({"compound": {"a": ["x"]}, "history": {"h": "x"}}, "its parent 'x' is an atomic state"),
        ({"compound": {"a": ["x"]}, "history": {"h": "nowhere"}}, "'nowhere' is not a state"),
        ({"compound": {"a": ["x"]}, "history": {"x": "a"}}, "history state 'x' is also a state"),
        ({"compound": {"a": ["x"]}, "history": {"h": ("a", "wide")}}, "history['h'] must be"),
        (
            {"compound": {"a": ["x"]}, "parallel": {"a": ["y"]}},
            "'a' is both compound and parallel",
        ),
        ({"compound": {"a": "x"}}, "compound['a'] must be a list"),
        ({"compound": {"a": ["x", "x"]}}, "names a state twice"),
        ({"compound": ["a"]}, "compound= must be a mapping"),
    ],
)
def test_a_bad_tree_is_refused_naming_the_culprit(kwargs: dict[str, Any], culprit: str) -> None:
    with pytest.raises(MachineDefinitionError, match=re.escape(culprit)):
        MachineSpec("a", events={"go": "a -> a"}, **kwargs)


def test_with_a_transitions_mapping_an_unknown_child_is_refused() -> None:
    with pytest.raises(MachineDefinitionError, match="unknown state 'ghost'"):
        MachineSpec("a", {"a": ["b"], "b": []}, compound={"a": ["b", "ghost"]})


def test_history_states_are_targets_never_sources() -> None:
    with pytest.raises(MachineDefinitionError, match="leaves history state 'h'"):
        MachineSpec(
            "a", events={"go": "h -> a", "in": "x -> a"}, compound={"a": ["x"]}, history={"h": "a"}
        )


def test_an_internal_transition_must_target_its_source_or_a_state_inside_it() -> None:
    MachineSpec("on", events={"poke": {"move": "on -> busy", "internal": True}}, compound=COMPOUND)
    with pytest.raises(MachineDefinitionError, match="a state inside it"):
        MachineSpec(
            "on", events={"x": {"move": "idle -> busy", "internal": True}}, compound=COMPOUND
        )
    with pytest.raises(MachineDefinitionError, match="its target must be its source;"):
        MachineSpec("a", events={"x": {"move": "a -> b", "internal": True}})


def test_to_builder_keeps_the_tree() -> None:
    spec = build(history={"h": "on"}).build()
    again = spec.to_builder().build()
    assert again.children("on") == ("idle", "working")
    assert again.history_states == {"h": ("on", "shallow")}


# -- moves ----------------------------------------------------------------------------


def test_a_move_defined_on_a_parent_applies_from_every_state_inside_it() -> None:
    spec = build().build()
    for events in (("power",), ("power", "work"), ("power", "work", "jam")):
        snap = walk(spec, *events)
        assert "on" in snap.configuration
        assert apply_transition(spec, snap, event="off").snapshot.configuration == {"off"}


def test_targeting_a_compound_state_enters_its_initial_child_recursively() -> None:
    spec = MachineSpec("off", events={"deep": "off -> working", **EVENTS}, compound=COMPOUND)
    snap = walk(spec, "deep")
    assert snap.state == "busy" and snap.configuration == {"on", "working", "busy"}


def test_a_states_own_alternatives_come_before_its_ancestors() -> None:
    def allowed(ctx: TransitionContext) -> bool:
        return bool(ctx.payload.get("ok"))

    spec = MachineSpec(
        "on",
        events={"go": [{"move": "idle -> done", "guards": allowed}, "on -> off"]},
        states=["off", "done"],
        compound={"on": ["idle", "done"]},
    )
    start = MachineSnapshot.initial(spec)
    assert apply_transition(spec, start, event="go", payload={"ok": True}).snapshot.state == "done"
    assert apply_transition(spec, start, event="go").snapshot.state == "off"
    # a child's unguarded move overrides its parent's: no ambiguity
    override = MachineSpec(
        "on",
        events={"go": ["idle -> done", "on -> off"]},
        states=["off"],
        compound={"on": ["idle", "done"]},
    )
    assert (
        apply_transition(override, MachineSnapshot.initial(override), event="go").snapshot.state
        == "done"
    )


def test_exit_hooks_run_innermost_first_and_enter_hooks_outermost_first() -> None:
    calls: list[str] = []
    b = MachineBuilder("off", events={"deep": "off -> stuck", **EVENTS}, compound=COMPOUND)
    recorder(b, ["off", "on", "idle", "working", "busy", "stuck"], calls)
    spec = b.build()
    snap = walk(spec, "deep")
    assert calls == ["exit off", "enter on", "enter working", "enter stuck"]
    calls.clear()
    apply_transition(spec, snap, event="off")
    assert calls == ["exit stuck", "exit working", "exit on", "enter off"]
    calls.clear()
    apply_transition(spec, snap, event="fix")  # stuck -> on: on is left and entered again
    assert calls == ["exit stuck", "exit working", "exit on", "enter on", "enter idle"]


def test_hooks_registered_on_no_state_run_once_per_move() -> None:
    calls: list[str] = []
    b = build()
    recorder(b, ["on", "working", "busy"], calls)
    b.on_exit(lambda ctx: calls.append("exit any"))
    b.on_enter(lambda ctx: calls.append("enter any"))
    b.after_commit(lambda ctx: calls.append(f"after {ctx.source}->{ctx.target}"))
    spec = b.build()
    snap = walk(spec, "power", "work")
    calls.clear()
    apply_transition(spec, snap, event="off")
    assert calls == ["exit busy", "exit any", "exit working", "exit on", "enter any"]


def test_a_filter_on_a_guard_names_any_state_the_move_leaves_or_enters() -> None:
    b = build()
    seen: list[str] = []

    @b.guard(source="on")
    def leaving_on(ctx: TransitionContext) -> bool:
        seen.append(f"{ctx.source}->{ctx.target}")
        return True

    spec = b.build()
    snap = walk(spec, "power", "work")  # work stays inside on: not a move out of it
    assert seen == []
    apply_transition(spec, snap, event="off")
    assert seen == ["busy->off"]


def test_an_internal_transition_to_a_state_inside_its_source_does_not_leave_it() -> None:
    calls: list[str] = []
    b = MachineBuilder(
        "on",
        events={
            **EVENTS,
            "poke": {"move": "on -> stuck", "internal": True},
            "reset": "on -> stuck",
        },
        compound=COMPOUND,
    )
    recorder(b, ["on", "idle", "working", "stuck"], calls)
    spec = b.build()
    out = apply_transition(spec, MachineSnapshot.initial(spec), event="poke")
    assert calls == ["exit idle", "enter working", "enter stuck"]
    assert out.record.kind == "internal" and out.snapshot.state == "stuck"
    calls.clear()
    out = apply_transition(spec, MachineSnapshot.initial(spec), event="reset")  # external
    assert calls == ["exit idle", "exit on", "enter on", "enter working", "enter stuck"]
    assert out.record.kind == "external"


def test_an_internal_transition_on_a_compound_state_to_itself_leaves_nothing() -> None:
    calls: list[str] = []
    b = MachineBuilder(
        "on", events={**EVENTS, "tick": {"move": "on -> on", "internal": True}}, compound=COMPOUND
    )
    recorder(b, ["on", "idle"], calls)
    spec = b.build()
    out = apply_transition(spec, MachineSnapshot.initial(spec), event="tick")
    assert (
        calls == [] and out.snapshot.configuration == {"on", "idle"} and out.snapshot.version == 1
    )


def test_records_carry_the_configurations_before_and_after() -> None:
    spec = build().build()
    snap = walk(spec, "power", "work", "jam", "off")
    moves = [(sorted(r.configuration_before), sorted(r.configuration_after)) for r in snap.history]
    assert moves == [
        (["off"], ["idle", "on"]),
        (["idle", "on"], ["busy", "on", "working"]),
        (["busy", "on", "working"], ["on", "stuck", "working"]),
        (["on", "stuck", "working"], ["off"]),
    ]
    assert [r.to_state for r in snap.history] == ["idle", "busy", "stuck", "off"]


def test_flat_records_and_snapshots_stay_as_they_were() -> None:
    spec = MachineSpec("a", {"a": ["b"], "b": []})
    out = apply_transition(spec, MachineSnapshot.initial(spec), "b")
    assert out.record.configuration_before == {"a"} and out.record.configuration_after == {"b"}
    assert len(out.record.to_tuple()) == 6 and out.snapshot.chart is None
    assert out.snapshot.configuration == {"b"}
    assert set(out.snapshot.to_state()) == {"state", "version", "data", "history"}


def test_the_questions_of_a_leaf_answer_for_its_ancestors_too() -> None:
    spec = build().build()
    snap = walk(spec, "power", "work")
    assert spec.allowed_events("busy") == ("jam", "off", "rest")
    assert spec.allows("busy", "off") and spec.allowed_targets("busy") == {"off", "idle", "stuck"}
    with pytest.raises(InvalidTransition) as refused:
        apply_transition(spec, snap, event="power")
    assert refused.value.allowed_events == ("jam", "off", "rest")


def test_a_move_by_target_finds_the_ancestor_that_allows_it() -> None:
    spec = MachineSpec(
        "off",
        {"off": ["on"], "on": ["off"], "idle": ["busy"], "busy": []},
        compound={"on": ["idle", "busy"]},
    )
    snap = apply_transition(spec, MachineSnapshot.initial(spec), "on").snapshot
    snap = apply_transition(spec, snap, "busy").snapshot
    assert snap.configuration == {"on", "busy"}
    assert apply_transition(spec, snap, "off").snapshot.configuration == {"off"}


def test_creation_runs_the_enter_hooks_of_the_initial_configuration() -> None:
    calls: list[str] = []
    b = MachineBuilder(
        "on",
        events=EVENTS,
        compound={
            "on": {"initial": "working", "states": ["idle", "working"]},
            "working": ["busy", "stuck"],
        },
    )
    recorder(b, ["on", "working", "busy"], calls)

    @b.guard("working")
    def may_work(ctx: TransitionContext) -> bool:
        return not ctx.payload.get("forbid")

    spec = b.build()
    created = apply_creation(spec)
    assert calls == ["enter on", "enter working", "enter busy"]
    assert created.snapshot.configuration == {"on", "working", "busy"}
    with pytest.raises(TransitionRejected):
        apply_creation(spec, {"forbid": True})
