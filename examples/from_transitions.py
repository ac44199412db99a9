"""transitions' ``NarcolepticSuperhero`` (from its README), ported to
stateward's class form.

The hero sleeps, hangs out, works out, eats, and answers distress calls from
any state (changing into the costume first). ``clean_up`` has two branches
from ``sweaty``: to ``asleep`` when the hero is exhausted, else to ``hanging
out``. The original decides ``is_exhausted`` at random; here (as in the
comparison test) it is decided by the number of kittens rescued so far, so
that a run can be repeated.

What changes from the original: the counters live in the machine's data
(``ctx.data``), so the hooks return the changes instead of setting attributes;
transitions' ``before=`` is ``before_<event>``; its ``after="update_journal"``
is the event's effect ``on_complete_mission``, because a hook that changes the
data must run before the commit (``after_<event>`` runs after it, for side
effects); ``"*"`` as a source is ``from_.any()``. The test
tests/test_ported_from_transitions.py runs the original and the port on the
same events and compares the states and hook calls.

Run it with ``python examples/from_transitions.py``.
"""

from __future__ import annotations

from stateward.actors import Runtime, StateMachine
from stateward.core import InvalidTransition, State, StateChart, TransitionContext


class NarcolepticSuperhero(StateChart):
    """Batman's day (hooks run on the machine's actor thread)."""

    asleep = State(initial=True)
    hanging_out = State("hanging out")
    hungry = State()
    sweaty = State()
    saving_the_world = State("saving the world")

    wake_up = asleep.to(hanging_out)
    work_out = hanging_out.to(hungry)
    eat = hungry.to(hanging_out)
    distress_call = saving_the_world.from_.any()
    complete_mission = saving_the_world.to(sweaty)
    clean_up = sweaty.to(asleep, cond="is_exhausted") | sweaty.to(hanging_out)
    nap = asleep.from_.any()

    def is_exhausted(self, ctx: TransitionContext) -> bool:
        return bool(ctx.data.get("kittens_rescued", 0) % 2 == 1)

    def before_distress_call(self, ctx: TransitionContext) -> dict[str, int]:
        """change into the super secret costume"""
        return {"costume_changes": ctx.data.get("costume_changes", 0) + 1}

    def on_complete_mission(self, ctx: TransitionContext) -> dict[str, int]:
        """update the journal"""
        return {"kittens_rescued": ctx.data.get("kittens_rescued", 0) + 1}


def main() -> None:
    with Runtime("superhero", default_timeout=10.0) as rt:
        batman = StateMachine(NarcolepticSuperhero.spec, name="batman", runtime=rt)
        day = ["wake_up", "work_out", "eat", "distress_call", "complete_mission", "clean_up"]
        day += ["wake_up", "distress_call", "complete_mission", "clean_up", "eat"]
        for event in day:
            try:
                print(f"{event}: {batman.trigger(event).state}")
            except InvalidTransition:
                print(f"{event}: refused in state {batman.current_state!r}")
        data = batman.data
        print(
            f"kittens rescued: {data['kittens_rescued']}, "
            f"costume changes: {data['costume_changes']}"
        )


if __name__ == "__main__":
    main()
