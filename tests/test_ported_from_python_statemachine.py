"""python-statemachine's README machines and their ports in examples/
(stateward's class form) run the same event sequences, fixed and random, and
agree on the states visited, the refusals, and the hook calls (which hook, in
which order, from which source to which target).

The originals are written here as in python-statemachine's README, their hooks
recording their calls instead of printing; the ports are subclassed the same
way (which shows that a subclass of a chart overrides its hooks). A
``StateChart`` of python-statemachine ignores an event that has no transition
from the current configuration; stateward refuses it with `InvalidTransition`:
both count as a refusal, told apart from a transition by the original's
``after_transition`` callback.
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

from stateward.actors import Runtime, StateMachine
from stateward.core import InvalidTransition, TransitionContext

Call = tuple[str, str | None, str | None]


def load_example(name: str) -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"examples_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


PORTS = load_example("from_python_statemachine")


# -- the originals, as in python-statemachine's README ---------------------------------------


class TrafficLightMachine(statemachine.StateChart):
    "A traffic light machine"

    green = statemachine.State(initial=True)
    yellow = statemachine.State()
    red = statemachine.State()

    cycle = green.to(yellow) | yellow.to(red) | red.to(green)

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.moved = False
        super().__init__()

    def before_cycle(self, event: str, source: Any, target: Any) -> str:
        self.calls.append(("before_cycle", source.id, target.id))
        return f"Running {event} from {source.id} to {target.id}"

    def on_enter_red(self, source: Any, target: Any) -> None:
        self.calls.append(("on_enter_red", source.id if source else None, target.id))

    def on_exit_red(self, source: Any, target: Any) -> None:
        self.calls.append(("on_exit_red", source.id, target.id))

    def after_transition(self) -> None:
        self.moved = True


class ApprovalWorkflowOriginal(statemachine.StateChart):
    pending = statemachine.State(initial=True)
    approved = statemachine.State(final=True)
    rejected = statemachine.State(final=True)

    review = pending.to(approved, cond="is_valid") | pending.to(rejected)

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.moved = False
        super().__init__()

    def is_valid(self, score: int = 0) -> bool:
        self.calls.append(("is_valid", str(score), None))
        return score >= 70

    def after_transition(self) -> None:
        self.moved = True


# -- the ports, recording their hook calls -------------------------------------------------


class RecordedTrafficLight(PORTS.TrafficLight):  # type: ignore[misc, name-defined]
    calls: ClassVar[list[Call]] = []

    def before_cycle(self, ctx: TransitionContext) -> None:
        self.calls.append(("before_cycle", ctx.source, ctx.target))
        super().before_cycle(ctx)

    def on_enter_red(self, ctx: TransitionContext) -> None:
        self.calls.append(("on_enter_red", ctx.source, ctx.target))
        super().on_enter_red(ctx)

    def on_exit_red(self, ctx: TransitionContext) -> None:
        self.calls.append(("on_exit_red", ctx.source, ctx.target))
        super().on_exit_red(ctx)


class RecordedApprovalWorkflow(PORTS.ApprovalWorkflow):  # type: ignore[misc, name-defined]
    calls: ClassVar[list[Call]] = []

    def is_valid(self, ctx: TransitionContext) -> bool:
        self.calls.append(("is_valid", str(ctx.payload.get("score", 0)), None))
        return bool(super().is_valid(ctx))


Step = tuple[str, dict[str, Any]]


def walk(original: Any, port_chart: Any, steps: list[Step]) -> tuple[list[Any], list[Any]]:
    """Fire ``steps`` at a new original and a new port; for each step, the
    state after it (or ``refused``) and the hook calls it made."""
    port_chart.calls.clear()
    seen_original: list[Any] = []
    seen_port: list[Any] = []
    with Runtime("ported", default_timeout=10.0) as rt:
        port = StateMachine(port_chart.spec, name="port", runtime=rt)
        for event, payload in steps:
            original.moved = False
            original.calls.clear()
            original.send(event, **payload)
            state = ",".join(sorted(original.configuration_values)) if original.moved else "refused"
            seen_original.append((event, state, list(original.calls)))
            port_chart.calls.clear()
            try:
                state = port.trigger(event, payload).state
            except InvalidTransition:
                state = "refused"
            seen_port.append((event, state, list(port_chart.calls)))
    return seen_original, seen_port


def test_traffic_light_cycles_with_the_same_hooks() -> None:
    original, port = walk(TrafficLightMachine(), RecordedTrafficLight, [("cycle", {})] * 7)
    assert port == original
    assert port[1] == (
        "cycle",
        "red",
        [("before_cycle", "yellow", "red"), ("on_enter_red", "yellow", "red")],
    )
    assert port[2][2] == [("before_cycle", "red", "green"), ("on_exit_red", "red", "green")]


@pytest.mark.parametrize("seed", [1, 2])
def test_traffic_light_random_events_and_refusals_agree(seed: int) -> None:
    rng = random.Random(seed)
    steps: list[Step] = [(rng.choice(["cycle", "cycle", "stop"]), {}) for _ in range(60)]
    original, port = walk(TrafficLightMachine(), RecordedTrafficLight, steps)
    assert port == original
    assert {state for _, state, _ in port} >= {"green", "yellow", "red", "refused"}


def test_approval_workflow_fixed_sequences() -> None:
    low, port = walk(
        ApprovalWorkflowOriginal(),
        RecordedApprovalWorkflow,
        [("review", {"score": 50}), ("review", {"score": 90})],
    )
    assert port == low
    assert port == [
        ("review", "rejected", [("is_valid", "50", None)]),
        ("review", "refused", []),  # a final state: nothing leaves it
    ]
    high, port = walk(
        ApprovalWorkflowOriginal(), RecordedApprovalWorkflow, [("review", {"score": 85})]
    )
    assert port == high == [("review", "approved", [("is_valid", "85", None)])]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_approval_workflow_random_scores_agree(seed: int) -> None:
    rng = random.Random(seed)
    outcomes = set()
    for _ in range(15):
        steps: list[Step] = [
            (rng.choice(["review", "approve"]), {"score": rng.randrange(0, 101)}) for _ in range(3)
        ]
        original, port = walk(ApprovalWorkflowOriginal(), RecordedApprovalWorkflow, steps)
        assert port == original, steps
        outcomes |= {state for _, state, _ in port}
    assert outcomes == {"approved", "rejected", "refused"}
