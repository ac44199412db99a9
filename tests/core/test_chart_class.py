"""The class form: a `StateChart` subclass compiles, when the class is created,
to a `MachineSpec` with the states, events, branches and hook methods it
declares; every definition error names the class and the culprit."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import pytest

from stateward.actors import Runtime, SQLiteStore, StateMachine
from stateward.core import (
    MachineDefinitionError,
    MachineSnapshot,
    MachineSpec,
    State,
    StateChart,
    TransitionContext,
    TransitionRejected,
    apply_creation,
    apply_transition,
    apply_transition_async,
    run_after_commit,
)


def fire(
    spec: MachineSpec, *events: str, data: dict[str, Any] | None = None, **payload: Any
) -> str:
    snapshot = MachineSnapshot.initial(spec, data)
    for event in events:
        snapshot = apply_transition(spec, snapshot, event=event, payload=payload).snapshot
    return snapshot.state


class Light(StateChart):
    green = State(initial=True)
    yellow = State()
    red = State()
    cycle = green.to(yellow) | yellow.to(red) | red.to(green)

    calls: ClassVar[list[tuple[str, str | None, str]]] = []

    def before_cycle(self, ctx: TransitionContext) -> None:
        self.calls.append(("before_cycle", ctx.source, ctx.target))

    def on_exit_red(self, ctx: TransitionContext) -> None:
        self.calls.append(("on_exit_red", ctx.source, ctx.target))

    def on_cycle(self, ctx: TransitionContext) -> dict[str, int]:
        self.calls.append(("on_cycle", ctx.source, ctx.target))
        return {"cycles": ctx.data.get("cycles", 0) + 1}

    def on_enter_red(self, ctx: TransitionContext) -> None:
        self.calls.append(("on_enter_red", ctx.source, ctx.target))

    def after_cycle(self, ctx: TransitionContext) -> None:
        self.calls.append(("after_cycle", ctx.source, ctx.target))


def test_states_events_and_options_compile_to_a_spec_once() -> None:
    spec = Light.spec
    assert isinstance(spec, MachineSpec) and Light.spec is spec
    assert spec.name == "Light" and spec.initial == "green"
    assert spec.states == ("green", "yellow", "red")
    assert dict(spec.transitions) == {"green": ("yellow",), "yellow": ("red",), "red": ("green",)}
    assert spec.allowed_events("red") == ("cycle",)
    assert spec.history_limit == 100


def test_hook_methods_run_in_order_with_the_context() -> None:
    Light.calls.clear()
    snapshot = MachineSnapshot.initial(Light.spec)
    for _ in range(3):
        outcome = apply_transition(Light.spec, snapshot, event="cycle")
        assert run_after_commit(outcome) == ()
        snapshot = outcome.snapshot
    assert snapshot.state == "green" and snapshot.data["cycles"] == 3
    assert Light.calls == [
        ("before_cycle", "green", "yellow"),
        ("on_cycle", "green", "yellow"),
        ("after_cycle", "green", "yellow"),
        ("before_cycle", "yellow", "red"),
        ("on_cycle", "yellow", "red"),
        ("on_enter_red", "yellow", "red"),
        ("after_cycle", "yellow", "red"),
        ("before_cycle", "red", "green"),
        ("on_exit_red", "red", "green"),
        ("on_cycle", "red", "green"),
        ("after_cycle", "red", "green"),
    ]


def test_a_chart_spec_runs_on_a_machine() -> None:
    Light.calls.clear()
    with Runtime("lights", default_timeout=10.0) as rt:
        light = StateMachine(Light.spec, name="light-1", runtime=rt)
        assert light.trigger("cycle").state == "yellow"
        assert light.trigger("cycle").state == "red"  # after-commit hooks ran before the reply
        assert light.data["cycles"] == 2
    after = [c for c in Light.calls if c[0] == "after_cycle"]
    assert after == [("after_cycle", "green", "yellow"), ("after_cycle", "yellow", "red")]


class Approval(StateChart, name="approvals", history_limit=5):
    pending = State(initial=True)
    approved = State(final=True)
    rejected = State(final=True)
    escalated = State("escalated to a manager", final=True)

    review = (
        pending.to(approved, cond="is_valid", unless=["is_flagged"])
        | pending.to(escalated, cond=lambda ctx: ctx.payload.get("score", 0) >= 50)
        | pending.to(rejected)
    )

    def is_valid(self, ctx: TransitionContext) -> bool:
        return bool(ctx.payload.get("score", 0) >= 70)

    def is_flagged(self, ctx: TransitionContext) -> bool:
        return ctx.data.get("flagged", False) is True


def test_branches_take_the_first_alternative_whose_guards_pass() -> None:
    assert Approval.spec.name == "approvals" and Approval.spec.history_limit == 5
    assert fire(Approval.spec, "review", score=85) == "approved"
    assert fire(Approval.spec, "review", score=85, data={"flagged": True}) == (
        "escalated to a manager"
    )
    assert fire(Approval.spec, "review", score=60) == "escalated to a manager"
    assert fire(Approval.spec, "review", score=10) == "rejected"
    assert Approval.spec.terminal_states == ("approved", "rejected", "escalated to a manager")


class Guarded(StateChart):
    idle = State(initial=True)
    done = State()
    go = idle.to(done, cond="ready")

    def ready(self, ctx: TransitionContext) -> bool:
        """not ready yet"""
        return ctx.payload.get("ready") is True


def test_a_refused_guard_method_names_its_reason() -> None:
    with pytest.raises(TransitionRejected, match="not ready yet"):
        fire(Guarded.spec, "go")
    assert fire(Guarded.spec, "go", ready=True) == "done"


class Player(StateChart):
    playing = State(initial=True)
    restart = playing.to.itself()
    volume = playing.to.itself(internal=True, on="louder")
    entered: ClassVar[list[str]] = []

    def louder(self, ctx: TransitionContext) -> dict[str, int]:
        return {"volume": ctx.data.get("volume", 0) + 1}

    def on_enter_playing(self, ctx: TransitionContext) -> None:
        self.entered.append(str(ctx.event))


def test_self_and_internal_transitions_and_on_as_an_effect() -> None:
    Player.entered.clear()
    snapshot = apply_creation(Player.spec).snapshot
    for event in ("restart", "volume"):
        out = apply_transition(Player.spec, snapshot, event=event)
        snapshot = out.snapshot
        assert out.record is not None
    assert Player.entered == ["None", "restart"]  # creation, then the self transition only
    assert snapshot.data["volume"] == 1
    kinds = [record.kind for record in snapshot.history]
    assert kinds[-2:] == ["self", "internal"]


class Hero(StateChart):
    asleep = State(initial=True)
    hanging_out = State("hanging out")
    retired = State(final=True)
    saving = State("saving the world")
    wake_up = asleep.to(hanging_out)
    distress_call = saving.from_.any()
    nap = asleep.from_(hanging_out, saving)
    retire = retired.from_(hanging_out)


def test_names_that_are_not_identifiers_and_moves_from_several_states() -> None:
    spec = Hero.spec
    assert spec.states == ("asleep", "hanging out", "retired", "saving the world")
    # from_.any(): every state but the final ones, itself included
    assert {s for s in spec.states if "distress_call" in spec.allowed_events(s)} == {
        "asleep",
        "hanging out",
        "saving the world",
    }
    assert fire(spec, "distress_call", "nap") == "asleep"
    assert fire(spec, "wake_up", "retire") == "retired"


class ExtendedLight(Light, history_limit=3):
    blinking = State()
    fault = Light.red.to(blinking) | Light.yellow.to(blinking)
    repair = blinking.to(Light.red)

    def on_enter_red(self, ctx: TransitionContext) -> None:
        self.calls.append(("extended_on_enter_red", ctx.source, ctx.target))


class StrictApproval(Approval):
    def is_valid(self, ctx: TransitionContext) -> bool:
        return bool(ctx.payload.get("score", 0) >= 90)


def test_a_subclass_extends_its_base_and_overrides_hooks() -> None:
    spec = ExtendedLight.spec
    assert spec.name == "ExtendedLight" and spec.history_limit == 3
    # its own name, its base's history limit; the guard named by cond= is the override
    assert (StrictApproval.spec.name, StrictApproval.spec.history_limit) == ("StrictApproval", 5)
    assert fire(StrictApproval.spec, "review", score=85) == "escalated to a manager"
    assert fire(Approval.spec, "review", score=85) == "approved"
    assert spec.states == ("green", "yellow", "red", "blinking")
    assert fire(spec, "cycle", "fault", "repair") == "red"
    assert Light.spec.states == ("green", "yellow", "red")  # the base is unchanged
    Light.calls.clear()
    fire(spec, "cycle", "cycle")
    assert ("extended_on_enter_red", "yellow", "red") in Light.calls
    assert ("on_enter_red", "yellow", "red") not in Light.calls


class AsyncChart(StateChart):
    a = State(initial=True)
    b = State()
    go = a.to(b, cond="allowed")

    async def allowed(self, ctx: TransitionContext) -> bool:
        await asyncio.sleep(0)
        return True

    async def on_enter_b(self, ctx: TransitionContext) -> dict[str, bool]:
        return {"entered": True}


def test_coroutine_methods_are_async_hooks_and_guards() -> None:
    assert AsyncChart.spec.has_async_hooks
    start = MachineSnapshot.initial(AsyncChart.spec)
    out = asyncio.run(apply_transition_async(AsyncChart.spec, start, event="go"))
    assert out.snapshot.state == "b" and out.snapshot.data["entered"] is True


# -- definition errors ----------------------------------------------------------------------


def refused(body: str, match: str) -> MachineDefinitionError:
    """Define a chart named 'Bad' from ``body`` and return the error it raises."""
    namespace: dict[str, Any] = {"StateChart": StateChart, "State": State}
    source = "class Bad(StateChart):\n" + "\n".join("    " + line for line in body.splitlines())
    with pytest.raises(MachineDefinitionError, match=match) as info:
        exec(source, namespace)
    assert "chart 'Bad'" in str(info.value), str(info.value)
    return info.value


def test_errors_name_the_chart_and_the_culprit() -> None:
    refused("x = 1", "declares no states")
    refused("a = State()\nb = State()", "needs exactly one initial state")
    refused("a = State(initial=True)\nb = State(initial=True)", "found 'a', 'b'")
    e = refused("a = State(initial=True)\nb = State()\na.to(b)", r"a.to\(b\) is not assigned")
    assert e.state == "a"
    e = refused(
        "a = State(initial=True)\nb = State()\ngo = a.to(b, cond='missing')",
        "cond= 'missing' is not a method of the chart",
    )
    assert e.event == "go"
    refused(
        "a = State(initial=True)\nb = State()\ngo = a.to(b, cond='x and y')",
        "is not a method name",
    )
    refused("a = State(initial=True)\nb = State()\ngo = a.to(b, cond=3)", "must be a function")
    e = refused(
        "a = State(initial=True)\nb = State()\ngo = a.to(b)\ndef on_enter_c(self, ctx): pass",
        "method 'on_enter_c' is named like a hook of the state 'c'",
    )
    assert e.state == "c"
    e = refused(
        "a = State(initial=True)\nb = State()\ngo = a.to(b)\ndef after_stop(self, ctx): pass",
        "hook of the event 'stop'",
    )
    assert e.event == "stop"
    refused(
        "a = State(initial=True)\nb = State()\ngo = a.to(b)\ndef on_enter_b(self): pass",
        r"takes one argument, the TransitionContext|must take one argument",
    )
    refused("a = State(initial=True)\nb = a", "assigned to both 'a' and 'b'")
    refused("a = State(initial=True)\nb = State('a')", "both named 'a'")
    refused("a = State(initial=True, final=True)\nb = State()\ngo = a.to(b)", "final state 'a'")
    refused(
        "a = State(initial=True)\nb = State()\ngo = a.to(b, internal=True)", "cannot be internal"
    )
    refused("a = State(initial=True)\ngo = a.to.itself(internal='yes')", "internal must be True")
    refused(
        "a = State(initial=True)\ngo = a.to.itself(internal=True)\ndef before_go(self, ctx): pass",
        "before_go would not run for the internal transition",
    )
    refused(
        "a = State(initial=True)\nb = State()\ngo = a.to(b, on='f')\n"
        "def f(self, ctx): pass\ndef on_go(self, ctx): pass",
        "has on= and the chart has on_go too",
    )
    refused("a = State(initial=True)\nb = State()\ngo = a.to(b) | a.to(b)", "defined twice")
    refused(
        "a = State(initial=True)\nb = State()\nc = State()\ngo = a.to(b) | a.to(c)", "ambiguous"
    )
    refused("a = State(initial='yes')", "State\\(initial=...\\) must be True or False")
    refused("a = State(3, initial=True)", "must be a non-empty str")
    refused("a = State(initial=True)\ngo = a.to('b')", "must name States")
    refused(
        "a = State(initial=True)\nb = State()\nc = State()\ngo = a.to(b, c)",
        r"a.to\(b, c\) names 2 targets; a move has one",
    )
    refused("a = State(initial=True)\ngo = a.to()", "names 0 targets")
    refused(
        "a = State(initial=True)\nb = State()\ngo = a.to(b, validators='ok')",
        r"validators= is not an option of the class form \(use cond= with a method that raises",
    )
    refused(
        "a = State(initial=True)\nb = State()\ngo = b.from_.any(after='log')",
        r"after= is not an option.*after_<event>",
    )
    e = refused("a = State(initial=True, value=1)", r"state 'a': value= is not an option")
    assert e.state == "a"


def test_a_state_of_another_chart_and_a_nested_chart_are_refused() -> None:
    with pytest.raises(MachineDefinitionError, match="chart 'Bad': event 'go' uses State"):

        class Bad(StateChart):
            a = State(initial=True)
            go = a.to(Light.red)

    with pytest.raises(
        MachineDefinitionError, match=r"'inner' is a nested chart.*class inner\(State.Compound\)"
    ):

        class Outer(StateChart):
            a = State(initial=True)

            class inner(StateChart):
                b = State(initial=True)


def test_bad_options_are_refused() -> None:
    with pytest.raises(MachineDefinitionError, match=r"chart 'Bad'.*history_limit"):

        class Bad(StateChart, history_limit=-1):
            a = State(initial=True)

    with pytest.raises(MachineDefinitionError, match=r"chart 'Bad'.*without arguments"):

        class Bad(StateChart):  # type: ignore[no-redef]
            a = State(initial=True)

            def __init__(self, needed: int) -> None:
                self.needed = needed


def test_a_chart_spec_extends_through_to_builder() -> None:
    builder = Approval.spec.to_builder()
    seen: list[str | None] = []

    @builder.after_commit
    def log(ctx: TransitionContext) -> None:
        seen.append(ctx.target)

    spec = builder.build()
    start = MachineSnapshot.initial(spec)
    out = apply_transition(spec, start, event="review", payload={"score": 90})
    run_after_commit(out)
    assert (out.snapshot.state, seen) == ("approved", ["approved"])
    assert spec.alternatives("review", "pending") == Approval.spec.alternatives("review", "pending")


def test_a_chart_machine_survives_a_restart_on_a_durable_store(tmp_path: Path) -> None:
    path = tmp_path / "lights.db"
    with Runtime("lights", store=SQLiteStore(path), default_timeout=10.0) as rt:
        light = StateMachine(Light.spec, name="light-1", runtime=rt)
        light.trigger("cycle")
        light.trigger("cycle")
    with Runtime("lights", store=SQLiteStore(path), default_timeout=10.0) as rt:
        light = StateMachine(Light.spec, name="light-1", runtime=rt)
        assert (light.current_state, light.version, light.data["cycles"]) == ("red", 2, 2)
        assert light.trigger("cycle").state == "green"


def test_a_state_timeout_declared_on_a_state_compiles_to_the_specs_timeouts() -> None:
    class Order(StateChart):
        pending = State(initial=True, timeout=(1800, "expire"))
        paid = State(final=True)
        cancelled = State(final=True)

        pay = pending.to(paid)
        expire = pending.to(cancelled)

    assert Order.spec.timeouts["pending"].seconds == 1800
    assert Order.spec.timeouts["pending"].event == "expire"
    assert set(Order.spec.timeouts) == {"pending"}


def test_a_state_timeout_naming_no_event_is_refused_naming_the_chart() -> None:
    with pytest.raises(MachineDefinitionError, match=r"Lamp.*nope"):

        class Lamp(StateChart):
            on = State(initial=True, timeout=(5, "nope"))
            off = State()

            flip = on.to(off) | off.to(on)
