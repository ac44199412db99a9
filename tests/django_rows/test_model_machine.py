"""What django-fsm users expect, through `ModelMachine`: a protected state field,
a method per event, the transitions available, pre/post_transition signals, and
a clear error on an unsaved instance; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import models, transaction
from shop.models import Light

from stateward.actors import Runtime
from stateward.actors.rows import ParallelStatesUnbindable
from stateward.actors.rows.django import (
    AvailableTransition,
    BindingError,
    ModelMachine,
    StateFieldProtected,
    UnsavedInstance,
    post_transition,
    pre_transition,
)
from stateward.actors.rows.django.models import AuditEntry
from stateward.core import InvalidTransition, MachineSpec


@pytest.fixture
def lights(alias: str, runtime: Runtime) -> Iterator[str]:
    """Light's machine in the test's runtime; its row actors stopped afterwards."""
    Light.machine.runtime = runtime
    yield alias
    Light.machine.close()
    Light.machine.runtime = None


def test_an_event_method_moves_the_row_and_refreshes_the_instance(lights: str) -> None:
    light = Light.objects.using(lights).create(room="hall")
    result = light.switch_on()
    assert (result.state, result.version) == ("on", 1)
    assert (light.status, light.version, light.switches) == ("on", 1, 1)  # no save() needed
    stored = Light.objects.using(lights).get(pk=light.pk)
    assert (stored.status, stored.version, stored.switches) == ("on", 1, 1)
    assert light.machine.state == "on"
    assert [(e["from_state"], e["to_state"]) for e in light.machine.history()] == [("off", "on")]


def test_a_move_is_decided_on_the_row_not_on_a_stale_instance(lights: str) -> None:
    light = Light.objects.using(lights).create()
    stale = Light.objects.using(lights).get(pk=light.pk)
    light.switch_on()
    assert stale.status == "off"
    with pytest.raises(InvalidTransition) as refused:
        stale.switch_on()  # the row is on: switch_on cannot fire
    assert refused.value.state == "on"
    stale.switch_off()  # decided on the row, not on the stale "off"
    assert (stale.status, stale.version) == ("off", 2)


def test_assigning_the_state_field_directly_raises_and_writes_nothing(lights: str) -> None:
    light = Light.objects.using(lights).create()
    with pytest.raises(StateFieldProtected, match=r"Light\.status is protected") as refused:
        light.status = "on"
    assert isinstance(refused.value, AttributeError)
    assert "instance.machine.trigger(...)" in str(refused.value)
    assert light.status == "off"
    light.status = "off"  # the same value: harmless (forms and serializers do it)
    assert Light.objects.using(lights).get(pk=light.pk).status == "off"


def test_save_of_a_stale_instance_never_overwrites_a_transition(lights: str) -> None:
    light = Light.objects.using(lights).create(room="hall")
    stale = Light.objects.using(lights).get(pk=light.pk)
    light.switch_on()
    stale.room = "kitchen"
    stale.save()
    stored = Light.objects.using(lights).get(pk=light.pk)
    assert (stored.status, stored.version, stored.room) == ("on", 1, "kitchen")
    with pytest.raises(StateFieldProtected, match="update_fields"):
        stale.save(update_fields=["status"])
    partial = Light.objects.using(lights).only("switches").get(pk=light.pk)
    partial.save()  # a partial load saves, as Django would
    assert Light.objects.using(lights).get(pk=light.pk).room == "kitchen"


def test_refresh_from_db_and_deferred_loads_still_work(lights: str) -> None:
    light = Light.objects.using(lights).create()
    stale = Light.objects.using(lights).get(pk=light.pk)
    light.switch_on()
    stale.refresh_from_db()
    assert stale.status == "on"
    deferred = Light.objects.using(lights).only("room").get(pk=light.pk)
    assert deferred.status == "on"


def test_available_transitions_are_those_of_the_instances_state(lights: str) -> None:
    light = Light.objects.using(lights).create()
    assert light.machine.available_transitions() == [
        AvailableTransition("break_down", "broken"),
        AvailableTransition("switch_on", "on"),
    ]
    light.break_down()
    assert light.machine.available_transitions() == []


def test_pre_and_post_transition_signals_frame_each_move(lights: str) -> None:
    light = Light.objects.using(lights).create()
    sent: list[tuple[str, Any, Any, Any, Any]] = []

    def pre(sender: Any, instance: Any, name: str, source: Any, target: Any, **kw: Any) -> None:
        sent.append(("pre", instance.status, name, source, target))

    def post(sender: Any, instance: Any, name: str, source: Any, target: Any, **kw: Any) -> None:
        sent.append(("post", instance.status, name, source, kw["result"].version))

    pre_transition.connect(pre, sender=Light)
    post_transition.connect(post, sender=Light)
    try:
        light.switch_on()
        light.machine.transition_to("off")
    finally:
        pre_transition.disconnect(pre, sender=Light)
        post_transition.disconnect(post, sender=Light)
    assert sent == [
        ("pre", "off", "switch_on", "off", None),
        ("post", "on", "switch_on", "off", 1),
        ("pre", "on", "off", "on", "off"),
        ("post", "off", "off", "on", 2),
    ]


def test_a_pre_transition_receiver_that_raises_stops_the_move(lights: str) -> None:
    light = Light.objects.using(lights).create()

    def veto(sender: Any, **kw: Any) -> None:
        raise PermissionError("not now")

    pre_transition.connect(veto, sender=Light)
    try:
        with pytest.raises(PermissionError):
            light.switch_on()
    finally:
        pre_transition.disconnect(veto, sender=Light)
    assert Light.objects.using(lights).get(pk=light.pk).status == "off"
    assert not AuditEntry.objects.using(lights).exists()


def test_post_transition_waits_for_the_callers_commit(lights: str) -> None:
    light = Light.objects.using(lights).create()
    posted: list[str] = []

    def post(sender: Any, name: str, **kw: Any) -> None:
        posted.append(name)

    post_transition.connect(post, sender=Light)
    try:
        with transaction.atomic(using=lights):
            light.switch_on()
            assert posted == []
        assert posted == ["switch_on"]
    finally:
        post_transition.disconnect(post, sender=Light)


def test_a_transition_on_an_unsaved_instance_is_a_clear_error(lights: str) -> None:
    light = Light(room="hall")
    with pytest.raises(UnsavedInstance, match=r"'switch_on' on an unsaved Light instance"):
        light.switch_on()
    with pytest.raises(UnsavedInstance, match="Save it first"):
        light.machine.transition_to("on")
    assert not Light.objects.using(lights).exists()
    assert not AuditEntry.objects.using(lights).exists()


def test_create_inserts_in_the_initial_state_and_audits_it(lights: str) -> None:
    light = Light.machine.create({"room": "attic"}, using=lights)
    assert (light.status, light.room, light.version) == ("off", "attic", 0)
    assert [e["event"] for e in light.machine.history()] == ["create"]


def test_an_event_named_like_a_model_attribute_fails_at_class_creation() -> None:
    with pytest.raises(BindingError, match=r"already has an attribute 'save'"):

        class Clash(models.Model):
            status = models.CharField(max_length=10, default="off")
            machine = ModelMachine(
                MachineSpec("off", {"off": ["on"], "on": []}, events={"save": "off -> on"})
            )

            class Meta:
                app_label = "shop"


def test_a_machine_with_parallel_states_is_refused_when_the_model_is_created() -> None:
    spec = MachineSpec(
        "on",
        events={"mute": "loud -> quiet", "dim": "bright -> dark"},
        compound={"sound": ["loud", "quiet"], "light": ["bright", "dark"]},
        parallel={"on": ["sound", "light"]},
    )
    with pytest.raises(ParallelStatesUnbindable, match=r"parallel states \('on'\)"):

        class Stage(models.Model):
            status = models.CharField(max_length=10, default="loud")
            machine = ModelMachine(spec)

            class Meta:
                app_label = "shop"


def test_a_compound_machine_maps_only_its_leaves_to_stored_values() -> None:
    spec = MachineSpec(
        "open", events={"close": "open -> closed"}, compound={"open": ["new", "assigned"]}
    )

    class Case(models.Model):  # no value for "open": a row never holds a compound state
        status = models.IntegerField(default=0)
        machine = ModelMachine(spec, states={"new": 0, "assigned": 1, "closed": 2})

        class Meta:
            app_label = "shop"

    assert Case.machine.binding.states is not None
