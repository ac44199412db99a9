"""The peers' nested and parallel examples and their ports run the same event
sequences, fixed and seeded random, and agree on the configurations visited,
the refusals and the enter and exit hook calls (which state, in which order).

- transitions' nested-states example (``HierarchicalMachine`` from its
  README, with ``caffeinated``'s initial child) and
  examples/from_transitions_nested.py. transitions names a child by its path
  (``caffeinated_running``); the port gives its children those names, so a
  transitions state ``a_b`` is the configuration ``{a, a_b}``.
- A python-statemachine ``State.Parallel`` chart with two compound regions and
  a ``done_state_war`` event, and examples/from_python_statemachine_parallel.py.
  The original is built with ``allow_event_without_transition = False`` so
  that it refuses what no region can take, as stateward does.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest
import statemachine
from transitions import EventData, MachineError
from transitions.extensions import HierarchicalMachine

from stateward.actors import Runtime, StateMachine
from stateward.core import InvalidTransition, StateChart, TransitionContext, apply_creation


def load_example(name: str) -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"examples_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


NESTED = load_example("from_transitions_nested")
PARALLEL = load_example("from_python_statemachine_parallel")


def recording(chart: type[StateChart], attributes: dict[str, str]) -> type[StateChart]:
    """A subclass of ``chart`` whose enter and exit hooks of every state
    (attribute -> state name) record ``(enter|exit, name)`` in ``calls``."""
    calls: list[tuple[str, str]] = []
    methods: dict[str, Any] = {"calls": calls}
    for attr, name in attributes.items():
        for kind in ("enter", "exit"):

            def hook(self: Any, ctx: TransitionContext, kind: str = kind, name: str = name) -> None:
                calls.append((kind, name))

            methods[f"on_{kind}_{attr}"] = hook
    return type(f"Recorded{chart.__name__}", (chart,), methods)


def walk_port(
    chart: type[StateChart], events: list[str]
) -> tuple[list[tuple[str, Any, list[tuple[str, str]]]], list[tuple[str, str]]]:
    """Fire ``events``; for each, the configuration after it (``refused``) and
    the hook calls it made; and the calls made when a machine is created
    (`apply_creation`, which runs the enter hooks of the initial states)."""
    calls: list[tuple[str, str]] = chart.calls  # type: ignore[attr-defined]
    calls.clear()
    apply_creation(chart.spec)
    created = list(calls)
    seen: list[tuple[str, Any, list[tuple[str, str]]]] = []
    with Runtime("ported", default_timeout=10.0) as rt:
        port = StateMachine(chart.spec, name="port", runtime=rt)
        for event in events:
            calls.clear()
            try:
                port.trigger(event)
                seen.append((event, port.configuration, list(calls)))
            except InvalidTransition:
                seen.append((event, "refused", list(calls)))
    return seen, created


# -- transitions' nested states -----------------------------------------------------

WALKER_STATES = ["standing", "walking", "caffeinated", "caffeinated_dithering"]
WALKER_STATES.append("caffeinated_running")
WALKER_EVENTS = ["walk", "stop", "drink", "relax"]


class HierarchicalWalker:
    """The original, as in transitions' README (with caffeinated's initial
    child), every enter and exit recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        states = [
            "standing",
            "walking",
            {"name": "caffeinated", "initial": "dithering", "children": ["dithering", "running"]},
        ]
        transitions = [
            ["walk", "standing", "walking"],
            ["stop", "walking", "standing"],
            ["drink", "*", "caffeinated"],
            ["walk", ["caffeinated", "caffeinated_dithering"], "caffeinated_running"],
            ["relax", "caffeinated", "standing"],
        ]
        self.machine = HierarchicalMachine(
            model=self, states=states, transitions=transitions, initial="standing"
        )
        for name in WALKER_STATES:
            state = self.machine.get_state(name)
            for kind in ("enter", "exit"):
                state.add_callback(kind, self.recorder(kind, name))

    def recorder(self, kind: str, name: str) -> Any:
        def record(*_: EventData) -> None:
            self.calls.append((kind, name))

        return record

    def configuration(self) -> frozenset[str]:
        parts = self.state.split("_")  # type: ignore[attr-defined]
        return frozenset("_".join(parts[: i + 1]) for i in range(len(parts)))


RecordedWalker = recording(
    NESTED.Walker,
    {
        "standing": "standing",
        "walking": "walking",
        "caffeinated": "caffeinated",
        "dithering": "caffeinated_dithering",
        "running": "caffeinated_running",
    },
)


def walk_walkers(events: list[str]) -> tuple[list[Any], list[Any]]:
    original = HierarchicalWalker()
    seen: list[Any] = []
    for event in events:
        original.calls.clear()
        try:
            original.trigger(event)  # type: ignore[attr-defined]
            seen.append((event, original.configuration(), list(original.calls)))
        except MachineError:
            seen.append((event, "refused", list(original.calls)))
    port, _ = walk_port(RecordedWalker, events)
    return seen, port


def test_the_readme_nested_sequence_visits_the_same_configurations_with_the_same_hooks() -> None:
    events = ["walk", "stop", "drink", "walk", "stop", "drink", "drink", "relax", "relax"]
    events += ["drink", "walk", "walk"]
    original, port = walk_walkers(events)
    assert port == original
    assert port[3][1] == {"caffeinated", "caffeinated_running"}
    assert port[4][1] == "refused"  # can't stop moving
    # drink from inside caffeinated leaves it and enters it again
    assert port[5][2] == [
        ("exit", "caffeinated_running"),
        ("exit", "caffeinated"),
        ("enter", "caffeinated"),
        ("enter", "caffeinated_dithering"),
    ]
    # walk from the running child: only the child is left and entered again
    assert port[11][2] == [("exit", "caffeinated_running"), ("enter", "caffeinated_running")]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_nested_sequences_agree_on_configurations_refusals_and_hooks(seed: int) -> None:
    rng = random.Random(seed)
    events = [rng.choice(WALKER_EVENTS) for _ in range(120)]
    original, port = walk_walkers(events)
    assert port == original
    visited = {frozenset(c) for _, c, _ in port if c != "refused"}
    assert {"caffeinated", "caffeinated_running"} in visited
    assert any(c == "refused" for _, c, _ in port)


# -- python-statemachine's parallel states ------------------------------------------

WAR_EVENTS = ["journey", "destroy_ring", "ride", "win"]


class OriginalWar(statemachine.StateChart):  # type: ignore[misc]
    """The original: two compound regions of one parallel state."""

    allow_event_without_transition = False

    class war(statemachine.State.Parallel):  # type: ignore[misc, name-defined]
        class quest(statemachine.State.Compound):  # type: ignore[misc, name-defined]
            shire = statemachine.State(initial=True)
            mordor = statemachine.State()
            mount_doom = statemachine.State(final=True)

            journey = shire.to(mordor)
            destroy_ring = mordor.to(mount_doom)

        class battle(statemachine.State.Compound):  # type: ignore[misc, name-defined]
            rohan = statemachine.State(initial=True)
            gondor = statemachine.State()
            victory = statemachine.State(final=True)

            ride = rohan.to(gondor)
            win = gondor.to(victory)

    peace = statemachine.State(final=True)
    done_state_war = war.to(peace)

    calls: ClassVar[list[tuple[str, str]]] = []

    def on_enter_state(self, state: Any) -> None:
        self.calls.append(("enter", state.id))

    def on_exit_state(self, state: Any) -> None:
        self.calls.append(("exit", state.id))


WAR_STATES = ["war", "quest", "shire", "mordor", "mount_doom"]
WAR_STATES += ["battle", "rohan", "gondor", "victory", "peace"]
RecordedWar = recording(PARALLEL.WarOfTheRing, {s: s for s in WAR_STATES})


def walk_wars(events: list[str]) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    OriginalWar.calls.clear()
    original = OriginalWar()
    created = list(OriginalWar.calls)
    seen: list[Any] = []
    for event in events:
        OriginalWar.calls.clear()
        try:
            original.send(event)
            seen.append(
                (event, frozenset(s.id for s in original.configuration), list(original.calls))
            )
        except statemachine.exceptions.TransitionNotAllowed:
            seen.append((event, "refused", list(OriginalWar.calls)))
    port, port_created = walk_port(RecordedWar, events)
    return seen, port, created, port_created


def test_the_parallel_sequence_visits_the_same_configurations_with_the_same_hooks() -> None:
    events = ["journey", "ride", "win", "journey", "destroy_ring", "win"]
    original, port, created, port_created = walk_wars(events)
    assert port_created == created  # every initial state entered, in document order
    assert port == original
    assert port[1][1] == {"war", "quest", "mordor", "battle", "gondor"}
    assert port[3][1] == "refused"
    # the last region done: done.state.war leaves war in the same transaction
    assert port[4][1] == {"peace"}
    assert port[4][2][:2] == [("exit", "mordor"), ("enter", "mount_doom")]
    assert port[4][2][-2:] == [("exit", "war"), ("enter", "peace")]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_parallel_sequences_agree_on_configurations_refusals_and_hooks(seed: int) -> None:
    rng = random.Random(seed)
    events = [rng.choice(WAR_EVENTS) for _ in range(40)]
    original, port, created, port_created = walk_wars(events)
    assert port_created == created
    assert port == original
    assert any(c == "refused" for _, c, _ in port)
    assert any(c == {"peace"} for _, c, _ in port)  # done.state.war was taken
