"""transitions' nested-states example (``HierarchicalMachine``, from its
README), ported to stateward's class form.

The walker stands, walks, and once caffeinated dithers or runs: ``caffeinated``
is a compound state whose initial child is ``dithering``. ``drink`` leads to
``caffeinated`` from every state (from inside it too: it is left and entered
again), ``walk`` from ``caffeinated`` leads to ``running`` (the child's own
``walk`` from ``dithering`` is written in the nested class), ``relax`` leaves
``caffeinated`` from whichever child is active.

What changes from the original: transitions names a child by its path
(``caffeinated_running``); stateward names every state by its own name,
unique in the machine, so the children are given those names here
(``State("caffeinated_running")``) and the two can be compared state by
state. transitions' ``walk`` from the parent ``caffeinated`` to its own child
leaves only the active child (its parent stays entered): that is an internal
move in stateward (``internal=True``), whose exit and enter hooks match. The
test tests/test_ported_nested_and_parallel.py runs the original and the port
on the same events and compares the configurations, refusals and hook calls.

Run it with ``python examples/from_transitions_nested.py``.
"""

from __future__ import annotations

from stateward.actors import Runtime, StateMachine
from stateward.core import InvalidTransition, State, StateChart, TransitionContext


class Walker(StateChart):
    """Standing, walking, or caffeinated (hooks run on the machine's actor thread)."""

    standing = State(initial=True)
    walking = State()

    class caffeinated(State.Compound):
        dithering = State("caffeinated_dithering", initial=True)
        running = State("caffeinated_running")

        walk = dithering.to(running)

    walk = standing.to(walking) | caffeinated.to(caffeinated.running, internal=True)
    stop = walking.to(standing)
    drink = caffeinated.from_.any()
    relax = caffeinated.to(standing)

    def on_enter_caffeinated(self, ctx: TransitionContext) -> dict[str, int]:
        return {"coffees": ctx.data.get("coffees", 0) + 1}


def main() -> None:
    with Runtime("walker", default_timeout=10.0) as rt:
        walker = StateMachine(Walker.spec, name="walker", runtime=rt)
        for event in ["walk", "stop", "drink", "walk", "stop", "relax"]:
            try:
                walker.trigger(event)
                print(f"{event}: {walker.current_state} {sorted(walker.configuration)}")
            except InvalidTransition:
                print(f"{event}: refused in state {walker.current_state!r}")
        print(f"coffees: {walker.data['coffees']}")


if __name__ == "__main__":
    main()
