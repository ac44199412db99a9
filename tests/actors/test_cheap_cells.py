"""Cheap cells: what a machine costs when it is idle, and what it shares.

Machines of one definition share one spec, one codec and one initial
snapshot; an idle cell holds no mailbox queue, no event and no lock of its
own; an idle actor is created and stopped without a turn on a worker.
"""

from __future__ import annotations

import pytest

from stateward.actors import Runtime, StateMachine
from stateward.core import MachineBuilder, MachineSpec

pytestmark = pytest.mark.usefixtures("each_host")

TOGGLE = {"a": ["b"], "b": ["a"]}


def test_machines_defined_the_same_way_share_their_spec_and_initial_snapshot(
    runtime: Runtime,
) -> None:
    first = StateMachine("a", {"a": ["b"], "b": ["a"]}, name="first", runtime=runtime)
    second = StateMachine("a", {"a": ["b"], "b": ["a"]}, name="second", runtime=runtime)
    assert first.spec is second.spec
    assert first.snapshot is second.snapshot
    assert first._cell.codec is second._cell.codec
    first.transition("b")
    assert (first.current_state, second.current_state) == ("b", "a")
    assert second.snapshot.version == 0


def test_machines_of_different_definitions_do_not_share(runtime: Runtime) -> None:
    toggle = StateMachine("a", TOGGLE, runtime=runtime)
    other_start = StateMachine("b", TOGGLE, runtime=runtime)
    shorter = StateMachine("a", TOGGLE, history_limit=5, runtime=runtime)
    evented = StateMachine("a", TOGGLE, events={"go": "a -> b"}, runtime=runtime)
    specs = {id(m.spec) for m in (toggle, other_start, shorter, evented)}
    assert len(specs) == 4
    assert other_start.current_state == "b"
    assert shorter.spec.history_limit == 5
    assert evented.trigger("go").state == "b"
    assert toggle.spec.has_event("go") is False


def test_a_machine_made_with_data_starts_from_its_own_data(runtime: Runtime) -> None:
    plain = StateMachine("a", TOGGLE, runtime=runtime)
    with_data = StateMachine("a", TOGGLE, data={"n": 1}, runtime=runtime)
    assert with_data.spec is plain.spec
    assert with_data.data == {"n": 1} and plain.data == {}


def test_a_spec_passed_in_is_shared_as_is(runtime: Runtime) -> None:
    spec = MachineSpec("a", TOGGLE)
    one = StateMachine(spec, runtime=runtime)
    two = StateMachine(spec, runtime=runtime)
    assert one.spec is two.spec is spec
    assert one.snapshot is two.snapshot
    assert one._cell.codec is two._cell.codec


def test_a_builder_changed_after_a_machine_was_made_reaches_only_later_machines(
    runtime: Runtime,
) -> None:
    builder = MachineBuilder("a", TOGGLE)
    before = [StateMachine(builder, runtime=runtime) for _ in range(2)]
    assert before[0].spec is before[1].spec
    seen: list[str] = []

    @builder.after_commit
    def note(ctx: object) -> None:
        seen.append("after")

    after = StateMachine(builder, runtime=runtime)
    assert after.spec is not before[0].spec
    before[0].transition("b")
    assert seen == []
    after.transition("b")
    assert seen == ["after"]


def test_targets_given_as_one_shot_iterables_are_read_once(runtime: Runtime) -> None:
    machine = StateMachine("a", {"a": iter(["b"]), "b": iter(["a"])}, runtime=runtime)
    assert machine.transition("b").state == "b"
    assert machine.transition("a").state == "a"
