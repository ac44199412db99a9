"""deus-state-machina's Cat, with its state as an integer, on stateward.

deus wrapped each state (``Unknown = State(0)``) and locked per Python object;
here the states are an ``IntegerChoices`` (the machine's state names are its
members' names, the column holds their values), and every move reads, locks,
writes and audits the row in one database transaction.
"""

from django.db import models

from stateward.actors.rows.django import ModelMachine
from stateward.core import MachineBuilder


class CatState(models.IntegerChoices):
    Unknown = 0
    Alive = 1
    Dead = 2


cat_machine = MachineBuilder(
    "Unknown",
    events=["survive: Unknown -> Alive", "rip: Unknown -> Dead"],
    name="cat",
)


@cat_machine.on_enter("Alive")
def start_meowing(ctx):
    return {"can_meow": True}


@cat_machine.on_enter("Dead")
def note_the_time(ctx):
    return {"time_of_death": ctx.at}


class Cat(models.Model):
    name = models.CharField(max_length=40)
    state = models.IntegerField(choices=CatState.choices, default=CatState.Unknown)
    can_meow = models.BooleanField(default=False)
    time_of_death = models.DateTimeField(null=True)

    machine = ModelMachine(cat_machine, state="state", states=CatState)

    def __str__(self):
        return self.name
