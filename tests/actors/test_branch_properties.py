"""Properties of an event's alternatives, over random specs (hypothesis):

- the alternative taken is always the first whose guards all pass (its own
  ``guards`` and ``unless``, and the guard hooks that apply to its move; sync or
  async; vetoing by returning or by raising `Reject`);
- when none passes, the refusal names every alternative in order, and changes
  nothing: a machine keeps its state, version and history.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stateward.actors import Runtime, StateMachine
from stateward.core import (
    MachineBuilder,
    MachineSnapshot,
    MachineSpec,
    Reject,
    TransitionContext,
    TransitionRejected,
    apply_transition,
    apply_transition_async,
)

STATES = ["s0", "s1", "s2", "s3"]
BITS = 6


@dataclass(frozen=True)
class Check:
    negated: bool  # an unless guard
    bit: int
    is_async: bool
    raises: bool  # vetoes by raising Reject instead of answering

    def passes(self, bits: tuple[bool, ...]) -> bool:
        return bits[self.bit] is not self.negated

    def function(self) -> Callable[[TransitionContext], Any]:
        """A fresh function (so no two alternatives are ever the same Event)."""

        def answer(ctx: TransitionContext) -> bool:
            value = bool(ctx.payload["bits"][self.bit])
            if self.raises and value is self.negated:
                raise Reject(f"bit {self.bit}")
            return value

        if not self.is_async:
            return answer

        async def answer_later(ctx: TransitionContext) -> bool:
            await asyncio.sleep(0)
            return answer(ctx)

        return answer_later


checks = st.builds(Check, st.booleans(), st.integers(0, BITS - 1), st.booleans(), st.booleans())


@st.composite
def machines(draw: st.DrawFn) -> tuple[MachineSpec, list[tuple[str, list[Check]]], list[Check]]:
    """A spec whose event ``e`` has 1-4 alternatives from ``s0`` (every one but
    the last guarded), and guard hooks on moves into ``s1``."""
    count = draw(st.integers(1, 4))
    alternatives = []
    for index in range(count):
        least = 0 if index == count - 1 else 1
        alternatives.append(
            (draw(st.sampled_from(STATES)), draw(st.lists(checks, min_size=least, max_size=3)))
        )
    hooked = draw(st.lists(checks, max_size=2))
    builder = MachineBuilder("s0", {state: [] for state in STATES})
    for target, guards in alternatives:
        builder.add_event(
            "e",
            f"s0 -> {target}",
            guards=[c.function() for c in guards if not c.negated],
            unless=[c.function() for c in guards if c.negated],
        )
    for check in hooked:
        register = builder.unless if check.negated else builder.guard
        register("s1", event="e")(check.function())
    return builder.build(), alternatives, hooked


def expected(
    alternatives: list[tuple[str, list[Check]]], hooked: list[Check], bits: tuple[bool, ...]
) -> str | None:
    for target, guards in alternatives:
        own = all(c.passes(bits) for c in guards)
        hooks = target != "s1" or all(c.passes(bits) for c in hooked)
        if own and hooks:
            return target
    return None


bit_tuples = st.tuples(*[st.booleans()] * BITS)


@settings(max_examples=150, deadline=None)
@given(machines(), bit_tuples, st.booleans())
def test_the_first_alternative_whose_guards_pass_is_taken(
    machine: tuple[MachineSpec, list[tuple[str, list[Check]]], list[Check]],
    bits: tuple[bool, ...],
    awaited: bool,
) -> None:
    spec, alternatives, hooked = machine
    before = MachineSnapshot.initial(spec)
    want = expected(alternatives, hooked, bits)
    payload = {"bits": list(bits)}

    def move() -> Any:
        if awaited:
            return asyncio.run(apply_transition_async(spec, before, event="e", payload=payload))
        return apply_transition(spec, before, event="e", payload=payload)

    if want is None:
        with pytest.raises(TransitionRejected) as info:
            move()
        if len(alternatives) > 1:
            assert [b.target for b in info.value.alternatives] == [t for t, _ in alternatives]
        return
    out = move()
    assert out.snapshot.state == want
    assert (out.record.event, out.snapshot.version) == ("e", 1)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(machines(), st.lists(bit_tuples, min_size=1, max_size=4))
def test_a_refusal_changes_nothing_in_a_running_machine(
    machine: tuple[MachineSpec, list[tuple[str, list[Check]]], list[Check]],
    requests: list[tuple[bool, ...]],
) -> None:
    spec, alternatives, hooked = machine
    with Runtime("branch-properties", default_timeout=10.0) as rt:
        m = StateMachine(spec, runtime=rt)
        for bits in requests:
            if m.current_state != "s0":
                break
            before = (m.current_state, m.version, tuple(m.history), m.data)
            want = expected(alternatives, hooked, bits)
            try:
                m.trigger("e", {"bits": list(bits)})
            except TransitionRejected:
                assert want is None
                assert (m.current_state, m.version, tuple(m.history), m.data) == before
            else:
                assert (m.current_state, m.version) == (want, before[1] + 1)
