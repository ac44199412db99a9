"""deus-state-machina's Cat, working on today's Django: the project in examples/catproject.

deus-state-machina promised Django users one place to define transitions, no
state checks by hand, no manual saves and "no more race conditions". Its Cat
(Unknown, Alive, Dead as integers; ``survive`` sets ``can_meow``, ``rip`` sets
``time_of_death``) runs here on stateward: the moves are methods of the model,
the state field is protected, a stale instance cannot undo a move, and eight
threads racing to decide one cat's fate produce exactly one winner, all
through the database (SQLite here; PostgreSQL row locks work the same way).
"""

import os
import sys
import tempfile
import threading
from pathlib import Path


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # the catproject package
    os.environ.setdefault("CATS_DB", str(Path(tempfile.mkdtemp()) / "cats.db"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "catproject.settings")

    import django

    django.setup()  # before the models are imported

    from catproject.cats.models import Cat
    from django.core.management import call_command
    from django.db import connections

    from stateward.actors import Runtime
    from stateward.actors.rows.django import StateFieldProtected
    from stateward.core import InvalidTransition

    call_command("migrate", verbosity=0)  # the cats table, and stateward's audit table

    with Runtime("cats"):  # the current runtime: the cats' machines run on it
        tom = Cat.objects.create(name="tom")
        print(f"tom: {tom.machine.state} (stored as {tom.state})")
        print("tom can:", [t.event for t in tom.machine.available_transitions()])
        tom.survive()  # no state check, no save(): read, decide, write, audit, commit
        print(f"tom: {tom.machine.state} (stored as {tom.state}), can_meow={tom.can_meow}")
        try:
            tom.rip()
        except InvalidTransition as refused:
            print(f"tom.rip(): InvalidTransition (state={refused.state!r})")
        try:
            tom.state = 2
        except StateFieldProtected:
            print("tom.state = 2: StateFieldProtected")
        stale = Cat.objects.get(name="tom")
        stale.name = "thomas"
        stale.save()  # saves the name; the state is not the stale copy's to write
        tom.refresh_from_db()
        print(f"after a save of another copy: {tom.name} is still {tom.machine.state}")

        felix = Cat.objects.create(name="felix")
        go, outcomes, errors = threading.Barrier(8), [], []

        def decide(fate):
            try:
                mine = Cat.objects.get(pk=felix.pk)  # each thread its own copy, all "Unknown"
                go.wait(10)
                try:
                    getattr(mine, fate)()
                    outcomes.append(fate)
                except InvalidTransition:
                    outcomes.append("refused")
            except BaseException as exc:
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [
            threading.Thread(target=decide, args=(("survive", "rip")[n % 2],)) for n in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        if errors:
            raise errors[0]
        won = [o for o in outcomes if o != "refused"]
        print(
            f"{len(won)} event won, {outcomes.count('refused')} were refused with InvalidTransition"
        )
        felix.refresh_from_db()
        print(
            f"felix: {felix.machine.state}, can_meow={felix.can_meow}, "
            f"time_of_death set: {felix.time_of_death is not None}"
        )
        print(
            "felix's history:",
            [(e["from_state"], e["to_state"], e["event"]) for e in felix.machine.history()],
        )
        Cat.machine.close()
    connections.close_all()


if __name__ == "__main__":
    main()
