"""Reading a `StateChart` class: its states, events and hook methods, checked.

`ChartReader` collects what a chart class declares (bases first), checks it,
and turns each declared move into an `Event` (`event_of`), resolving method
names and the functions written in the class body to methods bound to the
chart's instance. Every error it raises names the chart. `_chart_class`
compiles what it reads into a `MachineSpec`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ._chart_states import Condition, Move, State, Transitions, describe_move
from ._errors import MachineDefinitionError
from ._events import Event
from ._parts import ANY

__all__ = ["ChartReader", "event_of"]

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


class ChartReader:
    """What one chart class declares, read from its attributes (bases first)."""

    def __init__(self, cls: type, base: type) -> None:
        """Read ``cls``, a subclass of ``base`` (`StateChart`)."""
        self.cls = cls
        self.base = base
        self.label = f"chart {cls.__qualname__.rpartition('<locals>.')[2]!r}"
        attributes: dict[str, object] = {}
        for klass in reversed(cls.__mro__):
            if klass is base or not issubclass(klass, base):
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
            elif isinstance(value, type) and issubclass(value, self.base):
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

    def function(self, instance: object, value: Condition, what: str, event: str) -> Any:
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

    def hook_methods(self, instance: object) -> dict[str, tuple[str, str, Any]]:
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


def _conditions(chart: ChartReader, instance: object, value: object, what: str, event: str) -> Any:
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


def event_of(
    chart: ChartReader,
    instance: object,
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
