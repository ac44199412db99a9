"""The test app's models: orders (a CharField state), tickets (IntegerChoices),
lights (a `ModelMachine`: protected field, event methods, signals)."""

from __future__ import annotations

from django.db import models

from stateward.actors.rows.django import ModelMachine
from stateward.core import MachineBuilder


class Order(models.Model):
    """An order row: the machine's state lives in ``status``."""

    status = models.CharField(max_length=20, default="pending")
    version = models.IntegerField(default=0)
    amount = models.FloatField(default=0.0)
    note = models.CharField(max_length=200, default="")
    paid_at = models.DateTimeField(null=True)

    class Meta:
        app_label = "shop"


class TicketState(models.IntegerChoices):
    open = 1
    closed = 2
    reopened = 3


class Ticket(models.Model):
    """A row whose state is stored as an integer, keyed by a string column."""

    code = models.CharField(max_length=20, primary_key=True)
    state = models.IntegerField(choices=TicketState.choices, default=TicketState.open)
    title = models.CharField(max_length=100, default="")

    class Meta:
        app_label = "shop"


LIGHT = MachineBuilder(
    "off", events=["switch_on: off -> on", "switch_off: on -> off", "break_down: off|on -> broken"]
)


@LIGHT.on_enter(source="off|on")
def count(ctx):  # type: ignore[no-untyped-def]
    return {"switches": ctx.data.switches + 1}


class Light(models.Model):
    """A model declaring its machine: protected ``status``, ``light.switch_on()``."""

    status = models.CharField(max_length=10, default="off")
    version = models.IntegerField(default=0)
    switches = models.IntegerField(default=0)
    room = models.CharField(max_length=40, default="")

    machine = ModelMachine(LIGHT, state="status", version="version")

    class Meta:
        app_label = "shop"
