"""History states, shallow and deep: what a compound state remembers when it
is left, what a transition to its history state enters, and that the memory
is stored with the snapshot (documents and journal deltas)."""

from __future__ import annotations

from stateward.core import MachineSnapshot, MachineSpec, apply_transition, decode, encode
from stateward.core._persist import MachineCodec

EVENTS = {
    "power": "off -> on",
    "off": "on -> off",
    "work": "idle -> busy",
    "jam": "busy -> stuck",
    "resume": "off -> on_h",
    "resume_deep": "off -> on_deep",
}
COMPOUND = {"on": ["idle", "working"], "working": ["busy", "stuck"]}
HISTORY = {"on_h": "on", "on_deep": ("on", "deep")}


def spec() -> MachineSpec:
    return MachineSpec("off", events=EVENTS, compound=COMPOUND, history=HISTORY)


def walk(machine: MachineSpec, snap: MachineSnapshot, *events: str) -> MachineSnapshot:
    for event in events:
        snap = apply_transition(machine, snap, event=event).snapshot
    return snap


def test_a_history_state_never_visited_enters_the_parents_initial_child() -> None:
    machine = spec()
    snap = walk(machine, MachineSnapshot.initial(machine), "resume")
    assert snap.configuration == {"on", "idle"}
    assert machine.history_states == {"on_h": ("on", "shallow"), "on_deep": ("on", "deep")}


def test_shallow_history_reenters_the_remembered_child_with_its_defaults() -> None:
    machine = spec()
    snap = walk(machine, MachineSnapshot.initial(machine), "power", "work", "jam", "off")
    assert walk(machine, snap, "resume").configuration == {"on", "working", "busy"}


def test_deep_history_reenters_every_remembered_state() -> None:
    machine = spec()
    snap = walk(machine, MachineSnapshot.initial(machine), "power", "work", "jam", "off")
    resumed = walk(machine, snap, "resume_deep")
    assert resumed.configuration == {"on", "working", "stuck"} and resumed.state == "stuck"


def test_the_memory_is_what_was_active_when_the_parent_was_last_left() -> None:
    machine = spec()
    snap = walk(machine, MachineSnapshot.initial(machine), "power", "work", "off", "power", "off")
    assert snap.chart is not None
    assert dict(snap.chart.memory) == {"on_h": ("idle",), "on_deep": ("idle",)}
    assert walk(machine, snap, "resume_deep").configuration == {"on", "idle"}


def test_the_memory_round_trips_through_documents_and_journal_deltas() -> None:
    machine = spec()
    codec = MachineCodec(machine)
    snap = MachineSnapshot.initial(machine)
    replayed = codec.from_document("m", decode(encode(codec.document(snap))))
    for event in ("power", "work", "jam", "off", "resume_deep", "off"):
        new = apply_transition(machine, snap, event=event).snapshot
        replayed = codec.apply(replayed, decode(encode(codec.delta(snap, new))))
        assert replayed == new
        assert codec.from_document("m", decode(encode(codec.document(new)))) == new
        snap = new
    assert walk(machine, replayed, "resume_deep").configuration == {"on", "working", "stuck"}
