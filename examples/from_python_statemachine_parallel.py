"""A parallel state in python-statemachine's form (``State.Parallel`` whose
regions are ``State.Compound`` classes, and a ``done_state_<name>`` event),
ported to stateward's class form.

Two regions run side by side inside ``war``: the quest (shire, mordor, mount
doom) and the battle (rohan, gondor, victory). An event goes to every region;
a region without a move for it stays where it is. When both regions are in
their final states, ``done_state_war`` (SCXML's ``done.state.war``) leads to
``peace`` in the same transaction.

What changes from the original: almost nothing. python-statemachine ignores
an event that no region can take (unless ``allow_event_without_transition``
is False, as in the comparison test); stateward refuses it with
`InvalidTransition`. The test tests/test_ported_nested_and_parallel.py runs
both on the same events and compares the configurations, refusals and the
enter and exit hooks.

Run it with ``python examples/from_python_statemachine_parallel.py``.
"""

from __future__ import annotations

from stateward.actors import Runtime, StateMachine
from stateward.core import InvalidTransition, State, StateChart


class WarOfTheRing(StateChart):
    """Two regions of one war (hooks run on the machine's actor thread)."""

    class war(State.Parallel, initial=True):
        class quest(State.Compound):
            shire = State(initial=True)
            mordor = State()
            mount_doom = State(final=True)

            journey = shire.to(mordor)
            destroy_ring = mordor.to(mount_doom)

        class battle(State.Compound):
            rohan = State(initial=True)
            gondor = State()
            victory = State(final=True)

            ride = rohan.to(gondor)
            win = gondor.to(victory)

    peace = State(final=True)
    done_state_war = war.to(peace)


def main() -> None:
    with Runtime("war", default_timeout=10.0) as rt:
        war = StateMachine(WarOfTheRing.spec, name="war", runtime=rt)
        print(f"start: {war.current_state} {sorted(war.configuration)}")
        for event in ["journey", "ride", "win", "journey", "destroy_ring"]:
            try:
                war.trigger(event)
                print(f"{event}: {war.current_state} {sorted(war.configuration)}")
            except InvalidTransition:
                print(f"{event}: refused in {sorted(war.configuration)}")


if __name__ == "__main__":
    main()
