"""Parallel states: regions active together, one event for every region in one
transaction, conflicts between regions, ``done.state.<name>``, and what
``current_state`` and the configuration say."""

from __future__ import annotations

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
    apply_transition,
    decode,
    encode,
)
from stateward.core._chartplan import configuration_allows, configuration_events
from stateward.core._persist import MachineCodec

EVENTS: dict[str, Any] = {
    "play": "off -> running",
    "stop": "running -> off",
    "next": ["a1 -> a2", "v1 -> v2"],
    "finish": ["a2 -> adone", "v2 -> vdone"],
    "seek": "off -> v2",
}
TREE: dict[str, Any] = {
    "compound": {"audio": ["a1", "a2", "adone"], "video": ["v1", "v2", "vdone"]},
    "parallel": {"running": ["audio", "video"]},
}
STATES = ["off", "running", "audio", "a1", "a2", "adone", "video", "v1", "v2", "vdone"]


def builder(**events: Any) -> MachineBuilder:
    return MachineBuilder("off", events={**EVENTS, **events}, states=["finished"], **TREE)


def recorder(b: MachineBuilder, calls: list[str]) -> None:
    for state in [*STATES, "finished"]:
        b.on_exit(state)(lambda ctx, s=state: calls.append(f"exit {s}"))
        b.on_enter(state)(lambda ctx, s=state: calls.append(f"enter {s}"))


def walk(spec: MachineSpec, *events: str) -> MachineSnapshot:
    snap = MachineSnapshot.initial(spec)
    for event in events:
        snap = apply_transition(spec, snap, event=event).snapshot
    return snap


def test_entering_a_parallel_state_enters_every_region() -> None:
    spec = builder().build()
    assert spec.has_parallel and spec.is_parallel("running") and not spec.is_compound("running")
    snap = walk(spec, "play")
    assert snap.configuration == {"running", "audio", "a1", "video", "v1"}
    assert snap.state == "running"  # the innermost state containing every active leaf
    started = MachineSpec("running", events=EVENTS, **TREE)
    assert started.initial_configuration == {"running", "audio", "a1", "video", "v1"}


def test_entering_a_state_in_one_region_enters_the_others_initial_states() -> None:
    snap = walk(builder().build(), "seek")
    assert snap.configuration == {"running", "audio", "a1", "video", "v2"}


def test_a_parallel_state_needs_regions() -> None:
    with pytest.raises(MachineDefinitionError, match="parallel state 'p' has no regions"):
        MachineSpec("p", events={"x": "p -> p"}, parallel={"p": []})


def test_one_event_moves_every_region_in_one_transaction() -> None:
    calls: list[str] = []
    b = builder()
    recorder(b, calls)
    spec = b.build()
    snap = walk(spec, "play")
    calls.clear()
    out = apply_transition(spec, snap, event="next")
    assert out.snapshot.configuration == {"running", "audio", "a2", "video", "v2"}
    assert out.snapshot.version == 2 and len(out.snapshot.history) == 2
    assert calls == ["exit v1", "exit a1", "enter a2", "enter v2"]
    assert out.record.configuration_before == snap.configuration
    assert out.record.configuration_after == out.snapshot.configuration
    assert out.record.from_state == out.record.to_state == "running"


def test_effects_run_in_document_order_between_exits_and_enters() -> None:
    calls: list[str] = []
    effects = [
        {"move": "a1 -> a2", "effect": lambda ctx: calls.append("effect audio")},
        {"move": "v1 -> v2", "effect": lambda ctx: calls.append("effect video")},
    ]
    b = builder(next=effects)
    recorder(b, calls)
    spec = b.build()
    snap = walk(spec, "play")
    calls.clear()
    apply_transition(spec, snap, event="next")
    assert calls == ["exit v1", "exit a1", "effect audio", "effect video", "enter a2", "enter v2"]


def test_a_region_whose_guards_refuse_stays_and_the_others_move() -> None:
    def video_ready(ctx: TransitionContext) -> bool:
        """video is not ready"""
        return bool(ctx.payload.get("video"))

    spec = MachineSpec(
        "off",
        events={**EVENTS, "next": ["a1 -> a2", {"move": "v1 -> v2", "guards": video_ready}]},
        **TREE,
    )
    snap = walk(spec, "play")
    moved = apply_transition(spec, snap, event="next").snapshot
    assert moved.configuration == {"running", "audio", "a2", "video", "v1"}
    both = apply_transition(spec, snap, event="next", payload={"video": True}).snapshot
    assert both.configuration == {"running", "audio", "a2", "video", "v2"}
    with pytest.raises(TransitionRejected, match="video is not ready"):
        apply_transition(spec, moved, event="next")  # audio has no 'next' from a2
    guarded = MachineSpec(
        "off",
        events={
            **EVENTS,
            "next": [
                {"move": "a1 -> a2", "guards": lambda ctx: False},
                {"move": "v1 -> v2", "guards": video_ready},
            ],
        },
        **TREE,
    )
    with pytest.raises(TransitionRejected) as refused:
        apply_transition(guarded, walk(guarded, "play"), event="next")
    assert [b.target for b in refused.value.alternatives] == ["a2", "v2"]
    assert refused.value.alternatives[1].reason == "video is not ready"


def test_a_move_that_leaves_the_parallel_state_preempts_later_regions() -> None:
    calls: list[str] = []
    b = builder(jump=["a1 -> off", "v1 -> v2"])
    recorder(b, calls)
    spec = b.build()
    snap = walk(spec, "play")
    calls.clear()
    out = apply_transition(spec, snap, event="jump")
    assert out.snapshot.configuration == {"off"}
    assert "enter v2" not in calls
    assert calls[-1] == "enter off"


def test_done_state_event_fires_in_the_same_transaction() -> None:
    calls: list[str] = []
    b = builder(**{"done.state.running": "running -> finished"})
    recorder(b, calls)
    b.after_commit(lambda ctx: calls.append(f"after {ctx.event} -> {ctx.target}"))
    spec = b.build()
    snap = walk(spec, "play", "next")
    calls.clear()
    out = apply_transition(spec, snap, event="finish")
    assert out.snapshot.configuration == {"finished"}
    assert out.snapshot.version == 3 and out.record.event == "finish"
    assert out.record.configuration_before == snap.configuration
    assert out.record.configuration_after == {"finished"}
    assert calls[:4] == ["exit v2", "exit a2", "enter adone", "enter vdone"]
    assert calls[-1] == "enter finished"
    assert [c for c in calls if c.startswith("after")] == []  # after-commit: not run here


def test_done_state_event_whose_guards_refuse_leaves_the_regions_done() -> None:
    spec = builder(
        **{
            "done.state.running": {
                "move": "running -> finished",
                "guards": lambda ctx: bool(ctx.payload.get("go")),
            }
        }
    ).build()
    snap = walk(spec, "play", "next")
    out = apply_transition(spec, snap, event="finish")
    assert out.snapshot.configuration == {"running", "audio", "adone", "video", "vdone"}
    go = apply_transition(spec, snap, event="finish", payload={"go": True})
    assert go.snapshot.configuration == {"finished"}


def test_the_questions_answer_for_every_region() -> None:
    spec = builder().build()
    snap = walk(spec, "play")
    assert configuration_allows(spec, snap, "v2") and configuration_allows(spec, snap, "off")
    assert not configuration_allows(spec, snap, "adone")
    assert configuration_events(spec, snap) == ("next", "stop")
    with pytest.raises(InvalidTransition) as refused:
        apply_transition(spec, snap, event="finish")
    assert refused.value.allowed_events == ("next", "stop")
    assert set(refused.value.allowed) == {"a2", "v2", "off"}


def test_a_move_by_target_is_made_from_the_region_that_allows_it() -> None:
    spec = builder().build()
    snap = walk(spec, "play")
    out = apply_transition(spec, snap, "v2")
    assert out.snapshot.configuration == {"running", "audio", "a1", "video", "v2"}


def test_deep_history_remembers_every_region() -> None:
    spec = MachineSpec(
        "off",
        events={**EVENTS, "pause": "media -> paused", "resume": "paused -> media_h"},
        compound={**TREE["compound"], "media": ["running"]},
        parallel=TREE["parallel"],
        history={"media_h": ("media", "deep")},
        states=["paused"],
    )
    snap = walk(spec, "play", "next", "pause", "resume")
    assert snap.configuration == {"media", "running", "audio", "a2", "video", "v2"}


def test_a_parallel_configuration_round_trips_through_the_codec() -> None:
    spec = builder().build()
    codec = MachineCodec(spec)
    before = walk(spec, "play")
    after = apply_transition(spec, before, event="next").snapshot
    assert codec.from_document("m", decode(encode(codec.document(after)))) == after
    assert codec.apply(before, decode(encode(codec.delta(before, after)))) == after
