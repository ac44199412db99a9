"""The class form: a `StateChart` subclass compiles to a `MachineSpec`.

::

    class TrafficLight(StateChart):
        green = State(initial=True)
        yellow = State()
        red = State()
        cycle = green.to(yellow) | yellow.to(red) | red.to(green)

        def on_enter_red(self, ctx):
            ...

    StateMachine(TrafficLight.spec, runtime=rt)

The spec is compiled once, when the class is created (`StateChart.__init_subclass__`),
and every definition error is raised there, as a `MachineDefinitionError`
naming the class and the culprit. Hook methods are found by name:

- ``on_enter_<state>`` / ``on_exit_<state>``: enter and exit hooks of that
  state (its attribute's name);
- ``prepare_<event>``: a pre-transition hook of that event (runs first, before
  the guards, once for each alternative tried; may return payload additions);
- ``before_<event>``: runs once the event's move is admitted, before the exit
  hooks (an exit-stage hook of that event: it may return data changes or veto);
- ``on_<event>``: the event's effect, between the exit and the enter hooks
  (every alternative without an ``on=`` of its own);
- ``after_<event>``: an after-commit hook of that event.

Every method takes the `TransitionContext`. They are bound to one instance of
the chart, made (without arguments) when the class is compiled and shared by
every machine of the spec: a machine's values belong in ``ctx.data``, not on
``self``.

How compound and parallel states will fit: a state is collected by
`_collect`, which today refuses a nested chart class; with the spec's
``compound=``/``parallel=`` keywords, a nested class is a compound state whose
own states, moves and hooks are collected the same way, and the compiler
passes the parent -> children table to the spec. Nothing else changes: names
stay unique in the whole machine, as the spec requires.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, ClassVar

from ._chart_states import Condition, Move, State, Transitions, describe_move
from ._errors import MachineDefinitionError
from ._events import Event
from ._parts import ANY, Hook
from ._spec import MachineSpec

__all__ = ["State", "StateChart"]

#: Method name prefixes, longest first, and what each names.
_PREFIXES = (
    ("on_enter_", "state"),
    ("on_exit_", "state"),
    ("prepare_", "event"),
    ("before_", "event"),
    ("after_", "event"),
    ("on_", "event"),
)


#: Keywords of python-statemachine's ``State`` and ``to`` that the class form
#: does not take, and what to write instead.
_INSTEAD = {
    "validators": "use cond= with a method that raises Reject('reason')",
    "before": "write a before_<event> method",
    "after": "write an after_<event> method",
    "event": "the attribute a move is assigned to names its event",
    "value": "a state has one name: State('the name')",
    "enter": "write an on_enter_<state> method",
    "exit": "write an on_exit_<state> method",
    "parallel": "parallel states are not in the class form yet",
    "states": "compound states are not in the class form yet",
    "history": "history states are not in the class form yet",
}


def _unknown(keywords: tuple[str, ...]) -> str:
    return "; ".join(
        f"{k}= is not an option of the class form" + (f" ({_INSTEAD[k]})" if k in _INSTEAD else "")
        for k in keywords
    )


class _Chart:
    """What one chart class declares, read from its attributes (bases first)."""

    def __init__(self, cls: type[StateChart]) -> None:
        self.cls = cls
        self.label = f"chart {cls.__qualname__.rpartition('<locals>.')[2]!r}"
        attributes: dict[str, object] = {}
        for klass in reversed(cls.__mro__):
            if klass is StateChart or not issubclass(klass, StateChart):
                continue
            attributes.update(klass.__dict__)
        self.attributes = attributes
        self.states: dict[str, State] = {}  # attribute -> state, in definition order
        self.events: dict[str, Transitions] = {}
        self._collect()
        self.names = {
            id(state): state.name if isinstance(state.name, str) and state.name else attr
            for attr, state in self.states.items()
        }

    def error(
        self, problem: str, *, state: str | None = None, event: str | None = None
    ) -> MachineDefinitionError:
        return MachineDefinitionError(f"{self.label}: {problem}", state=state, event=event)

    def _collect(self) -> None:
        seen: dict[int, str] = {}
        for attr, value in self.attributes.items():
            if isinstance(value, State):
                if id(value) in seen:
                    raise self.error(
                        f"one State is assigned to both {seen[id(value)]!r} and {attr!r}; "
                        "declare a State() for each",
                        state=attr,
                    )
                seen[id(value)] = attr
                self.states[attr] = value
            elif isinstance(value, Transitions):
                self.events[attr] = value
            elif isinstance(value, type) and issubclass(value, StateChart):
                raise self.error(
                    f"{attr!r} is a nested chart; compound and parallel states are not "
                    "supported by the class form yet: declare its states in this class",
                    state=attr,
                )
        if not self.states:
            raise self.error(
                "declares no states: add attributes such as 'idle = State(initial=True)'"
            )

    def name_of(self, state: object, event: str) -> str:
        name = self.names.get(id(state))
        if name is None:
            raise self.error(
                f"event {event!r} uses {state!r}, which is not a state of this chart "
                f"(states: {', '.join(self.states)})",
                event=event,
            )
        return name

    def check_states(self) -> tuple[list[str], str]:
        names: dict[str, str] = {}
        for attr, state in self.states.items():
            if state.unknown:
                raise self.error(f"state {attr!r}: {_unknown(state.unknown)}", state=attr)
            if state.name is not None and (
                not isinstance(state.name, str) or not state.name or state.name == ANY
            ):
                raise self.error(
                    f"state {attr!r}: State(name=...) must be a non-empty str other than "
                    f"{ANY!r}, got {state.name!r}",
                    state=attr,
                )
            for option in ("initial", "final"):
                if not isinstance(getattr(state, option), bool):
                    raise self.error(
                        f"state {attr!r}: State({option}=...) must be True or False, got "
                        f"{getattr(state, option)!r}",
                        state=attr,
                    )
            name = self.names[id(state)]
            if name in names:
                raise self.error(
                    f"states {names[name]!r} and {attr!r} are both named {name!r}", state=name
                )
            names[name] = attr
        initial = [self.names[id(state)] for state in self.states.values() if state.initial]
        if len(initial) != 1:
            found = ", ".join(map(repr, initial))
            raise self.error(
                "needs exactly one initial state, mark it State(initial=True)"
                + (f"; found {found}" if initial else ""),
                state=initial[1] if initial else None,
            )
        own = self.cls.__dict__
        events = {id(move) for moves in self.events.values() for move in moves}
        for attr, state in self.states.items():
            if own.get(attr) is not state:
                continue  # declared by a base, and checked when the base was compiled
            for move in state.made_moves():
                if id(move) not in events:
                    raise self.error(
                        f"{describe_move(move)} is not assigned to an event: write "
                        f"'event_name = {describe_move(move)}' (the attribute names the "
                        "event; transitions without an event are not supported)",
                        state=state.label,
                    )
        return list(names), initial[0]

    # -- methods ------------------------------------------------------------------------

    def function(self, instance: StateChart, value: Condition, what: str, event: str) -> Any:
        """A guard, effect or hook as a function of the context alone: a
        method (by name, or its function as written in the class body) bound
        to the chart's instance, or a plain function as it is."""
        if isinstance(value, str):
            if not value.isidentifier():
                raise self.error(
                    f"event {event!r}: {what} {value!r} is not a method name (expressions "
                    "are not supported; write a method that combines the conditions)",
                    event=event,
                )
            bound = getattr(instance, value, None)
            if not callable(bound):
                raise self.error(
                    f"event {event!r}: {what} {value!r} is not a method of the chart",
                    event=event,
                )
            return self.check_signature(bound, f"{what} {value!r}", event)
        for attr, declared in self.attributes.items():
            if declared is value and inspect.isfunction(value):
                return self.check_signature(getattr(instance, attr), f"{what} {attr!r}", event)
        return value

    def check_signature(self, fn: Callable[..., Any], what: str, event: str | None) -> Any:
        try:
            inspect.signature(fn).bind(None)
        except TypeError:
            raise self.error(
                f"{what} must take one argument, the TransitionContext "
                f"(def {getattr(fn, '__name__', 'hook')}(self, ctx))",
                event=event,
            ) from None
        except ValueError:
            pass  # a builtin without a signature: called as it is
        return fn

    def hook_methods(self, instance: StateChart) -> dict[str, tuple[str, str, Any]]:
        """The hook methods by name: (prefix, the state attribute or event, bound method)."""
        found: dict[str, tuple[str, str, Any]] = {}
        for attr in dict.fromkeys(a for klass in self.cls.__mro__ for a in vars(klass)):
            prefix = next((p for p, _ in _PREFIXES if attr.startswith(p)), None)
            if prefix is None or not callable(getattr(self.cls, attr, None)):
                continue
            rest = attr[len(prefix) :]
            kind = dict(_PREFIXES)[prefix]
            names = self.states if kind == "state" else self.events
            if rest not in names:
                raise self.error(
                    f"method {attr!r} is named like a hook of the {kind} {rest!r}, which "
                    f"this chart does not declare ({kind}s: {', '.join(names) or 'none'}); "
                    "rename it if it is not a hook",
                    **{kind: rest},
                )
            fn = self.check_signature(getattr(instance, attr), f"hook method {attr!r}", None)
            found[attr] = (prefix, rest, fn)
        return found


def _conditions(chart: _Chart, instance: StateChart, value: object, what: str, event: str) -> Any:
    """``cond=``/``unless=`` as functions: one function or method name, or several."""
    if value is None:
        return ()
    items = (value,) if callable(value) or isinstance(value, str) else value
    if not isinstance(items, tuple | list):
        raise chart.error(
            f"event {event!r}: {what} must be a function, a method name, or a list of "
            f"them, got {value!r}",
            event=event,
        )
    return tuple(chart.function(instance, item, what, event) for item in items)


def _event(
    chart: _Chart,
    instance: StateChart,
    event: str,
    move: Move,
    effect: Any,
    finals: set[str],
    states: list[str],
) -> Event:
    written = describe_move(move)
    if move.unknown:
        raise chart.error(f"event {event!r}: {written}: {_unknown(move.unknown)}", event=event)
    if isinstance(move.target, tuple):
        raise chart.error(
            f"event {event!r}: {written} names {len(move.target)} targets; a move has one: "
            "write a.to(b) | a.to(c), each but the last with cond= or unless=",
            event=event,
        )
    if not isinstance(move.target, State) or not (
        move.sources is None or (move.sources and all(isinstance(s, State) for s in move.sources))
    ):
        raise chart.error(
            f"event {event!r}: {written} must name States (sources and target)", event=event
        )
    target = chart.name_of(move.target, event)
    if move.sources is None:
        sources = frozenset(s for s in states if s not in finals)
    else:
        sources = frozenset(chart.name_of(s, event) for s in move.sources)
    left = sorted(sources & finals)
    if left:
        raise chart.error(
            f"event {event!r} leaves the final state {left[0]!r}: no move may leave a "
            "final state (drop final=True, or the move)",
            state=left[0],
            event=event,
        )
    if not isinstance(move.internal, bool):
        raise chart.error(
            f"event {event!r}: {written}: internal must be True or False, got {move.internal!r}",
            event=event,
        )
    if move.internal and sources != {target}:
        raise chart.error(
            f"event {event!r}: {written} cannot be internal: an internal transition "
            f"stays in its state; write {target}.to.itself(internal=True)",
            event=event,
        )
    if move.on is not None:
        if effect is not None:
            raise chart.error(
                f"event {event!r}: {written} has on= and the chart has on_{event} too; keep one",
                event=event,
            )
        if not (callable(move.on) or isinstance(move.on, str)):
            raise chart.error(
                f"event {event!r}: {written}: on= must be a function or a method name, "
                f"got {move.on!r}",
                event=event,
            )
        effect = chart.function(instance, move.on, "on=", event)
    return Event(
        event,
        sources,
        target,
        effect,
        _conditions(chart, instance, move.cond, "cond=", event),
        _conditions(chart, instance, move.unless, "unless=", event),
        move.internal,
    )


def _hooks(chart: _Chart, methods: dict[str, tuple[str, str, Any]]) -> list[Hook]:
    hooks: list[Hook] = []
    for attr, (prefix, rest, fn) in methods.items():
        label = f"{chart.cls.__qualname__}.{attr}"
        state = chart.names[id(chart.states[rest])] if rest in chart.states else ""
        if prefix == "on_enter_":
            hooks.append(Hook("enter", fn, label, to=frozenset({state})))
        elif prefix == "on_exit_":
            hooks.append(Hook("exit", fn, label, source=frozenset({state})))
        elif prefix == "prepare_":
            hooks.append(Hook("pre_transition", fn, label, event=frozenset({rest})))
        elif prefix == "before_":
            # Before the state's exit hooks: the exit stage runs them by order.
            hooks.append(Hook("exit", fn, label, event=frozenset({rest}), order=-1))
        elif prefix == "after_":
            hooks.append(Hook("after_commit", fn, label, event=frozenset({rest})))
    return hooks


def _compile(cls: type[StateChart], name: str | None, history_limit: object) -> MachineSpec:
    chart = _Chart(cls)
    states, initial = chart.check_states()
    try:
        instance = cls()
    except TypeError as exc:
        raise chart.error(
            f"cannot make the chart's instance, which its hook methods are bound to: {exc}; "
            "a chart is instantiated once, without arguments"
        ) from exc
    methods = chart.hook_methods(instance)
    effects = {rest: fn for prefix, rest, fn in methods.values() if prefix == "on_"}
    befores = {rest for prefix, rest, _ in methods.values() if prefix == "before_"}
    finals = {chart.names[id(s)] for s in chart.states.values() if s.final}
    events: list[Event] = []
    for event, moves in chart.events.items():
        for move in moves:
            events.append(_event(chart, instance, event, move, effects.get(event), finals, states))
            if move.internal and event in befores:
                raise chart.error(
                    f"before_{event} would not run for the internal transition "
                    f"{describe_move(move)} (an internal transition has no exit stage); "
                    f"use on_{event} for it",
                    event=event,
                )
    try:
        return MachineSpec(
            initial,
            events=events,
            hooks=_hooks(chart, methods),
            states=states,
            history_limit=history_limit,  # type: ignore[arg-type]
            name=name,
        )
    except MachineDefinitionError as exc:
        raise chart.error(exc.problem, state=exc.state, event=exc.event) from exc


class StateChart:
    """A machine definition written as a class; ``Chart.spec`` is its `MachineSpec`.

    States are `State` attributes, events are attributes holding moves
    (``cycle = green.to(yellow) | yellow.to(red)``: the attribute names the
    event; several moves of one event from one state are its alternatives,
    the first whose guards pass is taken), hooks are methods named after a
    state or an event (``on_enter_red``, ``on_cycle``, ``after_cycle``...,
    see the module's documentation), each taking the `TransitionContext`.

    Class keywords: ``name=`` (the spec's name; the class's name by default,
    a subclass's own included) and ``history_limit=`` (as `MachineSpec`'s;
    a subclass keeps its base's unless it gives one). A subclass extends its base:
    it keeps the base's states, events and hooks, may add more, and overrides
    what it redefines (an event or a hook method of the same name).

    Raises:
        MachineDefinitionError: when the class is created, if the definition
            cannot work; the message names the class and the culprit.
    """

    #: The compiled definition, set when the class is created.
    spec: ClassVar[MachineSpec]
    #: the history limit a subclass inherits unless it gives its own
    _history_limit: ClassVar[int] = 100

    def __init_subclass__(
        cls, *, name: str | None = None, history_limit: int | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        limit = cls._history_limit if history_limit is None else history_limit
        cls._history_limit = limit
        cls.spec = _compile(cls, cls.__name__ if name is None else name, limit)
