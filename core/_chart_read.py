"""Reading a `StateChart` class: its states, events and hook methods, checked.

`ChartReader` collects what a chart class declares (bases first), checks it,
and resolves method names and the functions written in its class bodies to
methods bound to the chart's instance (`_chart_events` turns each declared
move into an `Event`). Every error it raises names the chart. `_chart_class`
compiles what it reads into a `MachineSpec`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ._chart import DONE_EVENT
from ._chart_states import Condition, State, Transitions, describe_move
from ._chart_tree import Body, HistoryState, NestedState
from ._errors import MachineDefinitionError
from ._parts import ANY

__all__ = ["PREFIXES", "ChartReader", "unknown_options"]

#: Method name prefixes, longest first, and what each names.
PREFIXES = (
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
    "parallel": "write the parallel state as a nested class(State.Parallel)",
    "states": "write the compound state as a nested class(State.Compound)",
    "history": "declare h = HistoryState() in the compound state's class",
    "type": "a deep history state is HistoryState(deep=True)",
}


def unknown_options(keywords: tuple[str, ...]) -> str:
    return "; ".join(
        f"{k}= is not an option of the class form" + (f" ({_INSTEAD[k]})" if k in _INSTEAD else "")
        for k in keywords
    )


class ChartReader:
    """What one chart class declares, read from its attributes (bases first)
    and from the bodies of its nested states (`Body`, outermost first)."""

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
        self.top = Body(None, attributes)
        self._seen: dict[int, str] = {}
        self._collect(self.top)
        self.bodies = self.top.subtree()
        self.states = self.top.states  # the chart's own: attribute -> state, in order
        self.events = self.top.events
        self.names = {
            id(state): state.name if isinstance(state.name, str) and state.name else attr
            for body in self.bodies
            for attr, state in body.states.items()
        }
        self.history_names = {
            self.names[id(s)]
            for body in self.bodies
            for s in body.states.values()
            if isinstance(s, HistoryState)
        }
        # ``done_state_<parallel state>`` names the event SCXML sends when every
        # region of that parallel state is done (``done.state.<its name>``).
        parallel = {
            s.attribute: self.names[id(s)]
            for body in self.bodies
            for s in body.states.values()
            if isinstance(s, NestedState) and s.kind == "parallel"
        }
        self.event_names = {
            attr: DONE_EVENT.format(parallel[attr[len("done_state_") :]])
            if attr.startswith("done_state_") and attr[len("done_state_") :] in parallel
            else attr
            for body in self.bodies
            for attr in body.events
        }

    def error(
        self, problem: str, *, state: str | None = None, event: str | None = None
    ) -> MachineDefinitionError:
        return MachineDefinitionError(f"{self.label}: {problem}", state=state, event=event)

    def _collect(self, body: Body) -> None:
        own = self.cls.__dict__
        for attr, value in body.attributes.items():
            if isinstance(value, State):
                if id(value) in self._seen:
                    raise self.error(
                        f"one State is assigned to both {self._seen[id(value)]!r} and "
                        f"{attr!r}; declare a State() for each",
                        state=attr,
                    )
                self._seen[id(value)] = attr
                body.states[attr] = value
                if isinstance(value, NestedState):
                    # A base's nested state was checked when the base was compiled.
                    mine = body.own and (body.owner is not None or own.get(attr) is value)
                    child = Body(value, value.body, body, mine)
                    body.nested.append(child)
                    self._collect(child)
            elif isinstance(value, Transitions):
                body.events[attr] = value
            elif isinstance(value, type) and issubclass(value, self.base):
                raise self.error(
                    f"{attr!r} is a nested chart; a state with states inside is a nested "
                    f"class based on State.Compound (or State.Parallel): write "
                    f"'class {attr}(State.Compound):'",
                    state=attr,
                )
        if not body.states:
            if body.owner is None:
                raise self.error(
                    "declares no states: add attributes such as 'idle = State(initial=True)'"
                )
            raise self.error(
                f"{body.label} declares no states: a nested class declares its children",
                state=body.owner.label,
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

    def _check_state(self, body: Body, attr: str, state: State) -> None:
        if state.unknown:
            raise self.error(f"state {attr!r}: {unknown_options(state.unknown)}", state=attr)
        if state.name is not None and (
            not isinstance(state.name, str) or not state.name or state.name == ANY
        ):
            raise self.error(
                f"state {attr!r}: State(name=...) must be a non-empty str other than "
                f"{ANY!r}, got {state.name!r}",
                state=attr,
            )
        options = ("initial", "final", "deep") if isinstance(state, HistoryState) else ()
        for option in options or ("initial", "final"):
            if not isinstance(getattr(state, option), bool):
                raise self.error(
                    f"state {attr!r}: {type(state).__name__}({option}=...) must be True or "
                    f"False, got {getattr(state, option)!r}",
                    state=attr,
                )
        if isinstance(state, HistoryState):
            if body.owner is None or body.owner.kind != "compound":
                raise self.error(
                    f"history state {attr!r} is declared in {body.label}; a history state "
                    "belongs to a compound state: declare it in a class(State.Compound)",
                    state=attr,
                )
            if state.initial or state.final:
                raise self.error(
                    f"history state {attr!r} cannot be initial or final: it is only a target",
                    state=attr,
                )

    def _initial(self, body: Body) -> str | None:
        """The body's initial state: the one marked (exactly one in the chart's
        own body; at most one in a compound state's, by default its first; none
        in a parallel state's, whose regions are all entered)."""
        children = [s for s in body.states.values() if not isinstance(s, HistoryState)]
        marked = [self.names[id(s)] for s in children if s.initial]
        if body.owner is None:
            if len(marked) != 1:
                found = ", ".join(map(repr, marked))
                raise self.error(
                    "needs exactly one initial state, mark it State(initial=True)"
                    + (f"; found {found}" if marked else ""),
                    state=marked[1] if marked else None,
                )
            return marked[0]
        if body.owner.kind == "parallel":
            if marked:
                raise self.error(
                    f"{body.label}: region {marked[0]!r} is marked initial, but every "
                    "region of a parallel state is entered: drop initial=True",
                    state=marked[0],
                )
            return None
        if len(marked) > 1:
            raise self.error(
                f"{body.label} marks {len(marked)} initial children "
                f"({', '.join(map(repr, marked))}); mark one (or none: the first is initial)",
                state=marked[1],
            )
        return marked[0] if marked else self.names[id(children[0])] if children else None

    def check_states(self) -> tuple[list[str], str, dict[str, Any]]:
        """The states in document order, the initial state, and the spec's
        ``compound=``/``parallel=``/``history=`` keywords (empty for a flat chart)."""
        names: dict[str, str] = {}
        order: list[str] = []
        tree: dict[str, dict[str, Any]] = {"compound": {}, "parallel": {}, "history": {}}

        def walk(body: Body) -> None:
            if body.owner is not None:  # outer states first, in the spec's tables too
                tree[body.owner.kind][self.names[id(body.owner)]] = None
            for attr, state in body.states.items():
                self._check_state(body, attr, state)
                name = self.names[id(state)]
                if name in names:
                    raise self.error(
                        f"states {names[name]!r} and {attr!r} are both named {name!r} "
                        "(state names are unique in the whole machine)",
                        state=name,
                    )
                names[name] = attr
                if isinstance(state, HistoryState):
                    parent = self.names[id(body.owner)]
                    tree["history"][name] = (parent, "deep" if state.deep else "shallow")
                    continue
                order.append(name)
                if isinstance(state, NestedState):
                    walk(next(b for b in body.nested if b.owner is state))
            if body.owner is not None:
                kids = [self.names[id(s)] for s in body.states.values()]
                kids = [k for k in kids if k not in tree["history"]]
                parent = self.names[id(body.owner)]
                if body.owner.kind == "compound":
                    tree["compound"][parent] = {"initial": self._initial(body), "states": kids}
                else:
                    self._initial(body)
                    tree["parallel"][parent] = kids

        walk(self.top)
        initial = self._initial(self.top)
        assert initial is not None
        events = {
            id(move) for body in self.bodies for moves in body.events.values() for move in moves
        }
        for body in self.bodies:
            for attr, state in body.states.items():
                if body.owner is None and self.cls.__dict__.get(attr) is not state:
                    continue  # declared by a base, and checked when the base was compiled
                if not body.own:
                    continue
                for move in state.made_moves():
                    if id(move) not in events:
                        raise self.error(
                            f"{describe_move(move)} is not assigned to an event: write "
                            f"'event_name = {describe_move(move)}' (the attribute names the "
                            "event; transitions without an event are not supported)",
                            state=state.label,
                        )
        return order, initial, {k: v for k, v in tree.items() if v}

    # -- methods ------------------------------------------------------------------------

    def _body_function(self, body: Body | None, name: str, instance: object) -> Any:
        """A function named ``name`` in a nested body on ``body``'s path, bound
        to the chart's instance, or None."""
        for up in body.path() if body is not None else ():
            if up.owner is None:
                break
            value = up.attributes.get(name)
            if value is not None and hasattr(value, "__get__") and callable(value):
                return value.__get__(instance, type(instance))
        return None

    def function(
        self, instance: object, value: Condition, what: str, event: str, body: Body | None = None
    ) -> Any:
        """A guard, effect or hook as a function of the context alone: a
        method (by name, or its function as written in a class body) bound
        to the chart's instance, or a plain function as it is. A name is looked
        up in the nested bodies around the move first, then in the chart."""
        if isinstance(value, str):
            if not value.isidentifier():
                raise self.error(
                    f"event {event!r}: {what} {value!r} is not a method name (expressions "
                    "are not supported; write a method that combines the conditions)",
                    event=event,
                )
            bound = self._body_function(body, value, instance) or getattr(instance, value, None)
            if not callable(bound):
                raise self.error(
                    f"event {event!r}: {what} {value!r} is not a method of the chart",
                    event=event,
                )
            return self.check_signature(bound, f"{what} {value!r}", event)
        for attr, declared in self.attributes.items():
            if declared is value and inspect.isfunction(value):
                return self.check_signature(getattr(instance, attr), f"{what} {attr!r}", event)
        for nested in self.bodies[1:]:
            for attr, declared in nested.attributes.items():
                if declared is value and inspect.isfunction(value):
                    bound = value.__get__(instance, type(instance))
                    return self.check_signature(bound, f"{what} {attr!r}", event)
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
