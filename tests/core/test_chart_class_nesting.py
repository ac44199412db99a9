"""The class form's nested states: a compound state is a nested class based on
``State.Compound``, a parallel state one based on ``State.Parallel`` whose
regions are nested classes, history states are ``HistoryState()``; a nested
state's children are reached as its attributes (``on.idle``). Each compiles
to the spec's ``compound=``/``parallel=``/``history=`` tables, and every
definition error names the chart and the culprit."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from stateward.core import (
    HistoryState,
    MachineDefinitionError,
    MachineSnapshot,
    MachineSpec,
    State,
    StateChart,
    TransitionContext,
)
from stateward.core import apply_transition as apply


def run(spec: MachineSpec, *events: str) -> MachineSnapshot:
    snapshot = MachineSnapshot.initial(spec)
    for event in events:
        snapshot = apply(spec, snapshot, event=event).snapshot
    return snapshot


class Player(StateChart):
    off = State(initial=True)

    class on(State.Compound):
        idle = State(initial=True)

        class working(State.Compound):
            playing = State()
            stuck = State()

            jam = playing.to(stuck)

            def on_enter_playing(self, ctx: TransitionContext) -> None:
                self.calls.append("enter playing")

        h = HistoryState()
        exactly = HistoryState(deep=True)

        play = idle.to(working)

        def on_exit_working(self, ctx: TransitionContext) -> None:
            self.calls.append("exit working")

    power = off.to(on)
    shut = on.to(off)
    resume = off.to(on.h)
    resume_exactly = off.to(on.exactly)
    fix = on.working.stuck.to(on.working.playing)

    calls: ClassVar[list[str]] = []

    def on_enter_on(self, ctx: TransitionContext) -> None:
        self.calls.append("enter on")

    def on_exit_on(self, ctx: TransitionContext) -> None:
        self.calls.append("exit on")

    def on_exit_stuck(self, ctx: TransitionContext) -> None:
        self.calls.append("exit stuck")


def test_a_nested_class_compiles_to_the_specs_compound_and_history_tables() -> None:
    spec = Player.spec
    assert spec.states == ("off", "on", "idle", "working", "playing", "stuck")
    assert spec.children("on") == ("idle", "working")
    assert spec.children("working") == ("playing", "stuck")
    assert spec.parent("stuck") == "working"
    assert spec.history_states == {"h": ("on", "shallow"), "exactly": ("on", "deep")}
    same = MachineSpec(
        "off",
        events={
            "power": "off -> on",
            "shut": "on -> off",
            "resume": "off -> h",
            "resume_exactly": "off -> exactly",
            "fix": "stuck -> playing",
            "jam": "playing -> stuck",
            "play": "idle -> working",
        },
        compound={"on": ["idle", "working"], "working": ["playing", "stuck"]},
        history={"h": "on", "exactly": ("on", "deep")},
    )
    for state in spec.states:
        assert spec.allowed_events(state) == same.allowed_events(state), state


def test_moves_at_every_depth_and_hooks_in_every_body_run_in_scxml_order() -> None:
    spec = Player.spec
    Player.calls.clear()
    snap = run(spec, "power", "play", "jam")
    assert (snap.state, snap.configuration) == ("stuck", {"on", "working", "stuck"})
    assert Player.calls == ["enter on", "enter playing"]
    Player.calls.clear()
    out = apply(spec, snap, event="shut")  # defined on the parent, taken from a leaf
    assert Player.calls == ["exit stuck", "exit working", "exit on"]
    assert out.record.configuration_before == {"on", "working", "stuck"}
    assert out.snapshot.configuration == {"off"}
    assert run(spec, "power", "play", "jam", "fix").state == "playing"


def test_history_states_declared_in_a_nested_class_remember_its_children() -> None:
    left = run(Player.spec, "power", "play", "jam", "shut")
    shallow = apply(Player.spec, left, event="resume").snapshot
    deep = apply(Player.spec, left, event="resume_exactly").snapshot
    assert shallow.configuration == {"on", "working", "playing"}
    assert deep.configuration == {"on", "working", "stuck"}
    never = apply(Player.spec, run(Player.spec), event="resume").snapshot
    assert never.configuration == {"on", "idle"}


class Media(StateChart):
    off = State(initial=True)

    class running(State.Parallel):
        class audio(State.Compound):
            a1 = State()
            a2 = State(final=True)

        class video(State.Compound):
            v1 = State()
            v2 = State(initial=True)
            v3 = State()

            skip = v2.to(v3)

        next = audio.a1.to(audio.a2) | video.v2.to(video.v3)

    done = State(final=True)
    play = off.to(running)
    stop = running.to(done)

    calls: ClassVar[list[str]] = []

    def on_next(self, ctx: TransitionContext) -> None:
        self.calls.append(f"next, in {ctx.source}")


def test_a_parallel_class_enters_every_region_and_an_event_moves_each() -> None:
    spec = Media.spec
    assert spec.is_parallel("running") and spec.children("running") == ("audio", "video")
    snap = run(spec, "play")
    assert snap.state == "running"
    assert snap.configuration == {"running", "audio", "a1", "video", "v2"}
    Media.calls.clear()
    out = apply(spec, snap, event="next")
    assert out.snapshot.configuration == {"running", "audio", "a2", "video", "v3"}
    assert out.snapshot.version == snap.version + 1
    assert Media.calls == ["next, in running", "next, in running"]  # one effect per region
    assert apply(spec, out.snapshot, event="stop").snapshot.configuration == {"done"}


def test_a_nested_state_may_be_the_initial_state_and_names_its_own_initial_child() -> None:
    class Boot(StateChart):
        class on(State.Compound, initial=True, name="powered"):
            a = State()
            b = State(initial=True)

        off = State()
        cut = on.to(off)

    assert Boot.spec.initial == "powered"
    assert Boot.spec.initial_configuration == {"powered", "b"}
    assert run(Boot.spec, "cut").state == "off"


def test_an_internal_move_from_a_compound_state_to_its_child_keeps_the_parent() -> None:
    calls = []

    class Shelf(StateChart):
        class on(State.Compound, initial=True):
            a = State()
            b = State()

        reset = on.to(on.b, internal=True)

        def on_exit_on(self, ctx: TransitionContext) -> None:
            calls.append("exit on")

    assert run(Shelf.spec, "reset").configuration == {"on", "b"}
    assert calls == []


def test_guards_and_effects_named_in_a_nested_body_are_its_methods() -> None:
    class Door(StateChart):
        class closed(State.Compound, initial=True):
            unlocked = State()
            locked = State()

            lock = unlocked.to(locked, cond="may_lock")

            def may_lock(self, ctx: TransitionContext) -> bool:
                return bool(ctx.payload.get("key"))

            def on_lock(self, ctx: TransitionContext) -> dict[str, Any]:
                return {"locks": ctx.data.get("locks", 0) + 1}

        opened = State()
        open = closed.unlocked.to(opened)

    spec = Door.spec
    out = apply(spec, MachineSnapshot.initial(spec), event="lock", payload={"key": 1})
    assert (out.snapshot.state, out.snapshot.data["locks"]) == ("locked", 1)


def refused(body: str, match: str) -> MachineDefinitionError:
    """Compile ``class Bad(StateChart)`` with ``body``; it must be refused."""
    source = "class Bad(StateChart):\n" + "\n".join(f"    {line}" for line in body.split("\n"))
    names = {"State": State, "StateChart": StateChart, "HistoryState": HistoryState}
    with pytest.raises(MachineDefinitionError, match=match) as info:
        exec(source, names)
    return info.value


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (
            "a = State(initial=True)\nh = HistoryState()",
            r"chart 'Bad': history state 'h' is declared in the chart; .*State.Compound",
        ),
        (
            "a = State(initial=True)\nclass p(State.Parallel):\n    r = State()\n"
            "    h = HistoryState()",
            r"chart 'Bad': history state 'h' is declared in parallel state 'p'",
        ),
        (
            "a = State(initial=True)\nclass on(State.Compound):\n    x = State()\n"
            "    h = HistoryState()\ngo = on.h.to(a)",
            r"chart 'Bad': event 'go': h.to\(a\) leaves the history state 'h'; .*only a target",
        ),
        (
            "a = State(initial=True)\nclass on(State.Compound):\n    x = State(initial=True)\n"
            "    y = State(initial=True)",
            r"chart 'Bad': compound state 'on' marks 2 initial children \('x', 'y'\)",
        ),
        (
            "a = State(initial=True)\nclass p(State.Parallel):\n    r = State(initial=True)",
            r"chart 'Bad': parallel state 'p': region 'r' is marked initial",
        ),
        (
            "a = State(initial=True)\nclass on(State.Compound):\n    pass",
            r"chart 'Bad': compound state 'on' declares no states",
        ),
        (
            "a = State(initial=True)\nclass on(State.Compound):\n    a = State()",
            r"chart 'Bad': states 'a' and 'a' are both named 'a' \(state names are unique",
        ),
        (
            "a = State(initial=True)\nclass on(State.Compound):\n    x = State()\n"
            "    def on_enter_y(self, ctx): ...",
            r"chart 'Bad': method 'on_enter_y' .* compound state 'on' does not declare "
            r"\(states: x\)",
        ),
        (
            "a = State(initial=True)\nclass p(State.Parallel):\n    class r1(State.Compound):\n"
            "        x = State()\n    class r2(State.Compound):\n        x = State('x2')\n"
            "def on_enter_x(self, ctx): ...",
            r"chart 'Bad': method 'on_enter_x': 2 states inside the chart have the "
            r"attribute 'x'",
        ),
        (
            "a = State(initial=True)\nclass on(State.Compound):\n    x = State()\n"
            "    y = State()\n    go = x.to(y)\n    def on_go(self, ctx): ...\n"
            "def on_go(self, ctx): ...",
            r"chart 'Bad': event 'go': Bad.on.on_go and Bad.on_go are both its effect",
        ),
        (
            "a = State(initial=True)\nclass on(State.Compound):\n    x = State()\n"
            "    h = HistoryState()\n    def on_enter_h(self, ctx): ...",
            r"chart 'Bad': method 'on_enter_h': history state 'h' is never entered",
        ),
        (
            "a = State(initial=True)\nclass on(State.Compound):\n    x = State()\n"
            "    h = HistoryState(deep='yes')",
            r"chart 'Bad': state 'h': HistoryState\(deep=...\) must be True or False",
        ),
        (
            "a = State(initial=True)\nclass on(State.Compound):\n    x = State()\n"
            "    y = State()\n    x.to(y)",
            r"chart 'Bad': x.to\(y\) is not assigned to an event",
        ),
        (
            "a = State(initial=True)\nclass on(State.Compound, colour='red'):\n    x = State()",
            r"chart 'Bad': state 'on': colour= is not an option",
        ),
    ],
)
def test_nested_definition_errors_name_the_chart_and_the_culprit(body: str, match: str) -> None:
    refused(body, match)


def test_a_state_a_nested_class_does_not_declare_is_refused_where_it_is_named() -> None:
    with pytest.raises(
        MachineDefinitionError,
        match=r"compound state '.*on' declares no state "
        r"'nope' \(its states: x\)",
    ) as info:

        class Bad(StateChart):
            a = State(initial=True)

            class on(State.Compound):
                x = State()

            go = a.to(on.nope)

    assert isinstance(info.value, AttributeError) and info.value.state == "nope"
    with pytest.raises(MachineDefinitionError, match=r"one base, State.Compound or State.Parallel"):

        class on(State.Compound, State.Parallel):  # type: ignore[misc]
            x = State()


def test_a_subclass_keeps_its_bases_nested_states_and_extends_them() -> None:
    class More(Player):
        broken = State()
        smash = Player.on.working.stuck.to(broken)

    assert "smash" in More.spec.allowed_events("stuck")
    assert More.spec.children("on") == Player.spec.children("on")
    assert run(More.spec, "power", "play", "jam", "smash").state == "broken"
