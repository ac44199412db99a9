"""python-statemachine's README machines, ported to stateward's class form.

``TrafficLight`` cycles green -> yellow -> red -> green; a hook runs before
every ``cycle``, and red has enter and exit hooks. ``ApprovalWorkflow``
chooses where ``review`` leads by a condition: approved when the score is at
least 70, else (the fallback) rejected; both are final.

What changes from the original: each hook takes the `TransitionContext`
(``ctx.source``, ``ctx.target``, ``ctx.payload``...) instead of having its
arguments injected by name; a machine is ``StateMachine(Chart.spec, ...)``
on a runtime, not an instance of the class; the payload of ``trigger`` is
what ``send``'s keyword arguments were. tests/test_ported_from_python_statemachine.py
runs each original and its port on the same events and compares them.

Run it with ``python examples/from_python_statemachine.py``.
"""

from __future__ import annotations

from stateward.actors import Runtime, StateMachine
from stateward.core import InvalidTransition, State, StateChart, TransitionContext


class TrafficLight(StateChart):
    """A traffic light (hooks run on the machine's actor thread)."""

    green = State(initial=True)
    yellow = State()
    red = State()

    cycle = green.to(yellow) | yellow.to(red) | red.to(green)

    def before_cycle(self, ctx: TransitionContext) -> None:
        print(f"Running {ctx.event} from {ctx.source} to {ctx.target}")

    def on_enter_red(self, ctx: TransitionContext) -> None:
        print("Don't move.")

    def on_exit_red(self, ctx: TransitionContext) -> None:
        print("Go ahead!")


class ApprovalWorkflow(StateChart):
    """A review that approves a good enough score; anything else is rejected."""

    pending = State(initial=True)
    approved = State(final=True)
    rejected = State(final=True)

    review = pending.to(approved, cond="is_valid") | pending.to(rejected)

    def is_valid(self, ctx: TransitionContext) -> bool:
        return bool(ctx.payload.get("score", 0) >= 70)


def main() -> None:
    with Runtime("ported", default_timeout=10.0) as rt:
        light = StateMachine(TrafficLight.spec, name="light", runtime=rt)
        for _ in range(3):
            print("light:", light.trigger("cycle").state)

        for score in (50, 85):
            review = StateMachine(ApprovalWorkflow.spec, name=f"review-{score}", runtime=rt)
            print(f"score {score}:", review.trigger("review", {"score": score}).state)
            try:
                review.trigger("review", {"score": score})
            except InvalidTransition:
                print(f"score {score}: a second review is refused (the state is final)")


if __name__ == "__main__":
    main()
