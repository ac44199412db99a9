"""Named events whose effects change the machine's data, in deus-state-machina's manner.

A cat starts in "unknown". The event ``survive`` takes it to "alive" and lets
it meow; the event ``rip`` takes it to "dead" and records the time of death,
taken from the transition context (``ctx.at``, the runtime's clock). Each event
is declared once, with its effect, by ``@builder.event(name, source, target)``.

Events are fired with ``machine.trigger(name)``, or a move is asked for by its
target with ``machine.transition_to(state)``. The machine's actor handles one
message at a time, so a cat can never be both: when threads race to decide its
fate, exactly one event wins and every other gets ``InvalidTransition``.

The runtime is given a fixed clock so the printed times are the same on every
run.

Run it with ``python examples/named_events.py``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading

from stateward.actors import Runtime, StateMachine
from stateward.core import InvalidTransition, MachineBuilder

cats = MachineBuilder("unknown", name="cat")


@cats.event("survive", "unknown", "alive")
def survive(ctx):
    """The effect of ``survive``: the cat can meow (runs on the cat's actor thread)."""
    return {"can_meow": True}


@cats.event("rip", "unknown", "dead")
def rip(ctx):
    """The effect of ``rip``: note when it happened, from the transition's time."""
    return {"time_of_death": ctx.at}


spec = cats.build()
NEWBORN = {"can_meow": False, "time_of_death": None}

# A clock that starts at a fixed time and moves one minute per reading.
_START = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
_minutes = itertools.count()


def fixed_clock() -> dt.datetime:
    return _START + dt.timedelta(minutes=next(_minutes))


def show(cat: StateMachine) -> None:
    last = cat.history[-1] if cat.history else None
    how = f" (event {last.event!r})" if last and last.event else ""
    print(f"  {cat.name}: {cat.current_state}{how}")
    print(f"    data: {cat.data}")


def main() -> None:
    with Runtime(name="cats", clock=fixed_clock) as runtime:
        print(f"states: {spec.states}; events from 'unknown': {spec.allowed_events('unknown')}")
        print(f"terminal states: {spec.terminal_states}")

        print()
        print("trigger('survive') and trigger('rip'):")
        tom = StateMachine(spec, name="tom", runtime=runtime, data=NEWBORN)
        tom.trigger("survive")
        show(tom)
        garfield = StateMachine(spec, name="garfield", runtime=runtime, data=NEWBORN)
        garfield.trigger("rip")
        show(garfield)

        print()
        print("transition_to('dead'), naming the target instead of the event:")
        # The move unknown -> dead is the one the `rip` event makes, so asking for it
        # by target runs rip's effect too, and the history names the event.
        felix = StateMachine(spec, name="felix", runtime=runtime, data=NEWBORN)
        felix.transition_to("dead")
        show(felix)

        print()
        print("a second 'rip' on a dead cat:")
        try:
            garfield.trigger("rip")
        except InvalidTransition as err:
            print(f"  InvalidTransition (state={err.state!r}): {err}")
        print(f"  garfield is unchanged: {garfield.current_state}, version {garfield.version}")

        print()
        print("eight threads race to decide one cat's fate:")
        schrodinger = StateMachine(spec, name="schrodinger", runtime=runtime, data=NEWBORN)
        start = threading.Barrier(8)
        won: list[str] = []
        refused: list[InvalidTransition] = []

        def decide(event: str) -> None:
            start.wait(timeout=10)
            try:
                schrodinger.trigger(event)
            except InvalidTransition as err:
                refused.append(err)
            else:
                won.append(event)

        threads = [
            threading.Thread(target=decide, args=("survive" if i % 2 else "rip",), daemon=True)
            for i in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads), "a racing thread hung"
        assert len(won) == 1 and len(refused) == 7, (won, refused)
        print(f"  {len(won)} event won, {len(refused)} were refused with InvalidTransition")
        print(f"  this run: {won[0]!r} won, so the cat is {schrodinger.current_state}")
        print(f"  version {schrodinger.version}: one committed transition, however many tried")


if __name__ == "__main__":
    main()
