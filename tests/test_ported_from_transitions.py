"""transitions' ``NarcolepticSuperhero`` (from its README), ported to stateward as
a new user would write it, runs the same event sequences through the same
states as the original.

Its ``clean_up`` has two branches from ``sweaty``: to ``asleep`` when the hero
is exhausted, else to ``hanging out``. The original decides ``is_exhausted`` at
random; both versions here decide it from the number of kittens rescued, so
that the two can be compared step by step.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from transitions import Machine, MachineError

from stateward.actors import Runtime, StateMachine
from stateward.core import InvalidTransition, MachineBuilder, TransitionContext

STATES = ["asleep", "hanging out", "hungry", "sweaty", "saving the world"]
EVENTS = ["wake_up", "work_out", "eat", "distress_call", "complete_mission", "clean_up", "nap"]


class NarcolepticSuperhero:
    """The original, as in transitions' README (``is_exhausted`` made deterministic)."""

    states = STATES

    def __init__(self, name: str) -> None:
        self.name = name
        self.kittens_rescued = 0
        self.costume_changes = 0
        self.machine = Machine(model=self, states=self.states, initial="asleep")
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

    def update_journal(self) -> None:
        self.kittens_rescued += 1

    @property
    def is_exhausted(self) -> bool:
        return self.kittens_rescued % 2 == 1

    def change_into_super_secret_costume(self) -> None:
        self.costume_changes += 1


# -- the port ---------------------------------------------------------------------------


def is_exhausted(ctx: TransitionContext) -> bool:
    return ctx.data.get("kittens_rescued", 0) % 2 == 1


hero = MachineBuilder(
    "asleep",
    states=STATES,
    events={
        "wake_up": "asleep -> hanging out",
        "work_out": "hanging out -> hungry",
        "eat": "hungry -> hanging out",
        "distress_call": "* -> saving the world",
        "complete_mission": "saving the world -> sweaty",
        "clean_up": [
            {"move": "sweaty -> asleep", "guards": is_exhausted},
            "sweaty -> hanging out",
        ],
        "nap": "* -> asleep",
    },
)


@hero.event("distress_call")
def change_into_super_secret_costume(ctx: TransitionContext) -> dict[str, Any]:
    return {"costume_changes": ctx.data.get("costume_changes", 0) + 1}


@hero.event("complete_mission")
def update_journal(ctx: TransitionContext) -> dict[str, Any]:
    return {"kittens_rescued": ctx.data.get("kittens_rescued", 0) + 1}


SPEC = hero.build()


def walk_both(events: list[str]) -> tuple[list[str], list[str], NarcolepticSuperhero, Any]:
    """Fire ``events`` at both; each list has the state after every event
    (``refused`` when the machine refused it)."""
    original = NarcolepticSuperhero("Batman")
    visited_original: list[str] = []
    visited_port: list[str] = []
    with Runtime("superhero", default_timeout=10.0) as rt:
        port = StateMachine(SPEC, name="batman", runtime=rt)
        for event in events:
            try:
                original.trigger(event)  # type: ignore[attr-defined]
                visited_original.append(original.state)  # type: ignore[attr-defined]
            except MachineError:
                visited_original.append("refused")
            try:
                visited_port.append(port.trigger(event).state)
            except InvalidTransition:
                visited_port.append("refused")
        data = port.data
    return visited_original, visited_port, original, data


def test_the_readme_sequence_visits_the_same_states() -> None:
    events = ["wake_up", "work_out", "eat", "distress_call", "complete_mission", "clean_up"]
    events += ["wake_up", "distress_call", "complete_mission", "clean_up", "nap"]
    original, port, hero_original, data = walk_both(events)
    assert port == original
    # The first mission leaves one kitten rescued: exhausted, so asleep; the
    # second makes it two: not exhausted, so hanging out.
    assert port[5] == "asleep" and port[9] == "hanging out"
    assert data["kittens_rescued"] == hero_original.kittens_rescued == 2
    assert data["costume_changes"] == hero_original.costume_changes == 2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_event_sequences_visit_the_same_states(seed: int) -> None:
    rng = random.Random(seed)
    events = [rng.choice(EVENTS) for _ in range(150)]
    original, port, hero_original, data = walk_both(events)
    assert port == original
    assert data.get("kittens_rescued", 0) == hero_original.kittens_rescued
    cleaned = {
        port[i] for i, event in enumerate(events) if event == "clean_up" and port[i] != "refused"
    }
    assert cleaned == {"asleep", "hanging out"}  # both branches were taken
