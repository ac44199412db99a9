"""What a statechart stores: its configuration in snapshot documents and
journal deltas, refused when it does not fit the definition; flat machines
store exactly what they stored before."""

from __future__ import annotations

import pytest

from stateward.core import MachineSnapshot, MachineSpec, apply_transition, decode, encode
from stateward.core._persist import DefinitionMismatch, MachineCodec

EVENTS = {"power": "off -> on", "off": "on -> off", "work": "idle -> busy"}
COMPOUND = {"on": ["idle", "busy"]}


def chart() -> MachineSpec:
    return MachineSpec("off", events=EVENTS, compound=COMPOUND)


def test_a_document_carries_the_configuration_and_reads_back() -> None:
    spec = chart()
    codec = MachineCodec(spec)
    snap = apply_transition(spec, MachineSnapshot.initial(spec), event="power").snapshot
    document = codec.document(snap)
    assert document["configuration"] == ("idle", "on") and "memory" not in document
    assert codec.from_document("m", decode(encode(document))) == snap


def test_a_stored_configuration_that_does_not_fit_is_refused() -> None:
    spec = chart()
    codec = MachineCodec(spec)
    snap = apply_transition(spec, MachineSnapshot.initial(spec), event="power").snapshot
    document = codec.document(snap).update(configuration=("idle", "busy", "on"))
    with pytest.raises(DefinitionMismatch, match="compound state 'on' has 2 active children"):
        codec.from_document("m", document)
    lost = codec.document(snap).update(configuration=("idle",))
    with pytest.raises(DefinitionMismatch, match="'idle' is active but its parent 'on' is not"):
        codec.from_document("m", lost)
    other = MachineSpec(
        "off", events={**EVENTS, "x": "busy -> gone"}, compound={"on": ["busy", "idle", "gone"]}
    )
    assert MachineCodec(other).from_document("m", codec.document(snap)) == snap
    unknown = codec.document(snap).update(memory=(("gone_h", ("idle",)),))
    with pytest.raises(DefinitionMismatch, match="history state 'gone_h'"):
        codec.from_document("m", unknown)


def test_a_statechart_stored_is_refused_by_a_flat_definition() -> None:
    spec = chart()
    snap = apply_transition(spec, MachineSnapshot.initial(spec), event="power").snapshot
    flat = MachineSpec("off", {"off": ["idle"], "idle": ["off"], "on": [], "busy": []})
    with pytest.raises(DefinitionMismatch, match="stored by a statechart"):
        MachineCodec(flat).from_document("m", MachineCodec(spec).document(snap))


def test_a_flat_machines_snapshot_fits_a_statechart_where_its_state_says_it_all() -> None:
    flat = MachineSpec("off", {"off": ["on"], "on": ["off"]})
    stored = MachineCodec(flat).document(MachineSnapshot.initial(flat))
    spec = chart()
    read = MachineCodec(spec).from_document("m", stored)
    assert read.configuration == {"off"} and read.chart is not None
    in_on = MachineCodec(flat).document(MachineSnapshot("on", 1))
    with pytest.raises(DefinitionMismatch, match="without a configuration"):
        MachineCodec(spec).from_document("m", in_on)


def test_journal_deltas_replay_configurations_and_flat_deltas_keep_their_form() -> None:
    spec = chart()
    codec = MachineCodec(spec)
    snap = MachineSnapshot.initial(spec)
    new = apply_transition(spec, snap, event="power").snapshot
    delta = codec.delta(snap, new)
    assert len(delta) == 4
    assert codec.apply(snap, decode(encode(delta))) == new
    bad = (*delta[:3], (("busy", "idle", "on"), ()))
    with pytest.raises(DefinitionMismatch, match="does not fit"):
        codec.apply(snap, bad)
    flat = MachineSpec("a", {"a": ["b"], "b": []})
    out = apply_transition(flat, MachineSnapshot.initial(flat), "b")
    assert len(MachineCodec(flat).delta(out.previous, out.snapshot)) == 3


def test_without_history_kept_a_delta_still_carries_the_configuration() -> None:
    spec = MachineSpec("off", events=EVENTS, compound=COMPOUND, history_limit=0)
    codec = MachineCodec(spec)
    snap = MachineSnapshot.initial(spec)
    new = apply_transition(spec, snap, event="power").snapshot
    assert codec.apply(snap, decode(encode(codec.delta(snap, new)))) == new


def test_a_statecharts_stored_definition_records_its_tree_and_a_flat_ones_does_not() -> None:
    """What a store records of a machine's definition (``stateward inspect``
    rebuilds the spec from it): a statechart's tree, so the rebuilt spec has
    the same children, initial children and history states; a flat machine's
    keeps exactly its three keys."""
    flat = MachineSpec("a", {"a": ["b"], "b": []})
    assert set(MachineCodec(flat).definition()) == {"initial", "states", "transitions"}
    chart = MachineSpec(
        "off",
        events={"power": "off -> on", "back": "off -> on_h", "go": "r1 -> r2"},
        compound={"on": {"initial": "busy", "states": ["idle", "busy"]}, "reg": ["r1", "r2"]},
        parallel={"par": ["reg"]},
        history={"on_h": ("on", "deep")},
    )
    stored = decode(encode(MachineCodec(chart).definition()))
    rebuilt = MachineSpec(
        stored["initial"],
        {s: list(t) for s, t in stored["transitions"].items()},
        states=list(stored["states"]),
        compound={
            p: {"initial": v["initial"], "states": list(v["states"])}
            for p, v in stored["compound"].items()
        },
        parallel={p: list(v) for p, v in stored["parallel"].items()},
        history={h: tuple(v) for h, v in stored["history"].items()},
    )
    for state in chart.states:
        assert rebuilt.children(state) == chart.children(state)
        assert rebuilt.initial_child(state) == chart.initial_child(state)
    assert rebuilt.history_states == chart.history_states
    assert rebuilt.initial_configuration == chart.initial_configuration
