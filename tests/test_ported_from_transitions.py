"""transitions' ``NarcolepticSuperhero`` (from its README) and its port in
examples/from_transitions.py (stateward's class form) run the same event
sequences, fixed and random, and agree on the states visited, the refusals,
the hook calls (which hook, in which order, from which source to which
target) and the counters.

Its ``clean_up`` has two branches from ``sweaty``: to ``asleep`` when the hero
is exhausted, else to ``hanging out``. The original decides ``is_exhausted`` at
random; both versions here decide it from the number of kittens rescued, so
that the two can be compared step by step. The original is built with
``send_event=True`` so that its callbacks see the transition's source and
destination, as the port's hooks do (``ctx.source``, ``ctx.target``).
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest
from transitions import EventData, Machine, MachineError

from stateward.actors import Runtime, StateMachine
from stateward.core import InvalidTransition, TransitionContext

STATES = ["asleep", "hanging out", "hungry", "sweaty", "saving the world"]
EVENTS = ["wake_up", "work_out", "eat", "distress_call", "complete_mission", "clean_up", "nap"]
Call = tuple[str, str | None, str | None]


def load_example(name: str) -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"examples_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


PORT = load_example("from_transitions")


class NarcolepticSuperhero:
    """The original, as in transitions' README (``is_exhausted`` made
    deterministic, every callback recording its call)."""

    states = STATES

    def __init__(self, name: str) -> None:
        self.name = name
        self.kittens_rescued = 0
        self.costume_changes = 0
        self.calls: list[Call] = []
        self.machine = Machine(model=self, states=self.states, initial="asleep", send_event=True)
        self.machine.add_transition(trigger="wake_up", source="asleep", dest="hanging out")
        self.machine.add_transition("work_out", "hanging out", "hungry")
        self.machine.add_transition("eat", "hungry", "hanging out")
        self.machine.add_transition(
            "distress_call", "*", "saving the world", before="change_into_super_secret_costume"
        )
        self.machine.add_transition(
            "complete_mission", "saving the world", "sweaty", after="update_journal"
        )
        self.machine.add_transition("clean_up", "sweaty", "asleep", conditions=["is_exhausted"])
        self.machine.add_transition("clean_up", "sweaty", "hanging out")
        self.machine.add_transition("nap", "*", "asleep")

    def record(self, hook: str, event: EventData) -> None:
        transition = event.transition
        assert transition is not None
        self.calls.append((hook, transition.source, transition.dest))

    def update_journal(self, event: EventData) -> None:
        self.record("update_journal", event)
        self.kittens_rescued += 1

    def is_exhausted(self, event: EventData) -> bool:
        self.record("is_exhausted", event)
        return self.kittens_rescued % 2 == 1

    def change_into_super_secret_costume(self, event: EventData) -> None:
        self.record("change_into_super_secret_costume", event)
        self.costume_changes += 1


class RecordedHero(PORT.NarcolepticSuperhero):  # type: ignore[misc, name-defined]
    """The port, its hooks recording their calls under the original's names."""

    calls: ClassVar[list[Call]] = []

    def is_exhausted(self, ctx: TransitionContext) -> bool:
        self.calls.append(("is_exhausted", ctx.source, ctx.target))
        return bool(super().is_exhausted(ctx))

    def before_distress_call(self, ctx: TransitionContext) -> dict[str, int]:
        self.calls.append(("change_into_super_secret_costume", ctx.source, ctx.target))
        return dict(super().before_distress_call(ctx))

    def on_complete_mission(self, ctx: TransitionContext) -> dict[str, int]:
        self.calls.append(("update_journal", ctx.source, ctx.target))
        return dict(super().on_complete_mission(ctx))


def walk_both(events: list[str]) -> tuple[list[Any], list[Any], NarcolepticSuperhero, Any]:
    """Fire ``events`` at both; for each, the state after it (``refused`` when
    the machine refused it) and the hook calls it made."""
    original = NarcolepticSuperhero("Batman")
    seen_original: list[Any] = []
    seen_port: list[Any] = []
    with Runtime("superhero", default_timeout=10.0) as rt:
        port = StateMachine(RecordedHero.spec, name="batman", runtime=rt)
        for event in events:
            original.calls.clear()
            try:
                original.trigger(event)  # type: ignore[attr-defined]
                state = original.state  # type: ignore[attr-defined]
            except MachineError:
                state = "refused"
            seen_original.append((event, state, list(original.calls)))
            RecordedHero.calls.clear()
            try:
                state = port.trigger(event).state
            except InvalidTransition:
                state = "refused"
            seen_port.append((event, state, list(RecordedHero.calls)))
        data = port.data
    return seen_original, seen_port, original, data


def test_the_readme_sequence_visits_the_same_states_with_the_same_hooks() -> None:
    events = ["wake_up", "work_out", "eat", "distress_call", "complete_mission", "clean_up"]
    events += ["wake_up", "distress_call", "complete_mission", "clean_up", "nap"]
    original, port, hero_original, data = walk_both(events)
    assert port == original
    # The first mission leaves one kitten rescued: exhausted, so asleep; the
    # second makes it two: not exhausted, so hanging out.
    assert port[5] == ("clean_up", "asleep", [("is_exhausted", "sweaty", "asleep")])
    assert port[9] == ("clean_up", "hanging out", [("is_exhausted", "sweaty", "asleep")])
    assert port[3][2] == [("change_into_super_secret_costume", "hanging out", "saving the world")]
    assert port[4][2] == [("update_journal", "saving the world", "sweaty")]
    assert data["kittens_rescued"] == hero_original.kittens_rescued == 2
    assert data["costume_changes"] == hero_original.costume_changes == 2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_event_sequences_agree_on_states_refusals_and_hooks(seed: int) -> None:
    rng = random.Random(seed)
    events = [rng.choice(EVENTS) for _ in range(150)]
    original, port, hero_original, data = walk_both(events)
    assert port == original
    assert data.get("kittens_rescued", 0) == hero_original.kittens_rescued
    assert data.get("costume_changes", 0) == hero_original.costume_changes
    cleaned = {state for event, state, _ in port if event == "clean_up" and state != "refused"}
    assert cleaned == {"asleep", "hanging out"}  # both branches were taken
    assert any(state == "refused" for _, state, _ in port)
