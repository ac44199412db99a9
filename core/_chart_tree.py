"""Nested states in the class form: compound and parallel states written as
nested classes, and history states.

::

    class Player(StateChart):
        off = State(initial=True)

        class on(State.Compound):
            idle = State(initial=True)
            playing = State()
            h = HistoryState()

            play = idle.to(playing)

        power = off.to(on)
        power_off = on.to(off)
        resume = off.to(on.h)

A class statement whose base is `State.Compound` or `State.Parallel` does not
make a class: it makes a `NestedState`, a `State` whose body (the class's
namespace) declares its children, their moves and their hook methods, read by
`ChartReader` (`_chart_read`) like the chart's own body. A nested state's
children are reached from outside as its attributes (``on.idle``,
``running.audio.a1``): a class body cannot see the names of the class it is
written in, so moves that leave a nested state are written in the body that
declares it, or further out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._chart_states import State, Transitions
from ._errors import MachineDefinitionError

__all__ = ["Body", "Compound", "HistoryState", "NestedState", "Parallel"]


class NestedState(State):
    """A compound or parallel state of a `StateChart`, made by a class
    statement (``class on(State.Compound): ...``).

    Attributes:
        kind: ``"compound"`` or ``"parallel"``.
        body: the class's namespace, in the order written.
        qualname: the class statement's qualified name, for messages.
    """

    __slots__ = ("body", "kind", "qualname")

    kind: str
    body: dict[str, Any]
    qualname: str

    def __init__(
        self,
        kind: str,
        attribute: str,
        body: dict[str, Any],
        name: str | None = None,
        *,
        initial: bool = False,
        final: bool = False,
        **unknown: object,
    ) -> None:
        super().__init__(name, initial=initial, final=final, **unknown)
        self.kind = kind
        self.body = body
        self.qualname = str(body.get("__qualname__", attribute))
        self.attribute = attribute
        # A class statement calls __set_name__ on what its namespace holds;
        # this one made no class, so it names its states itself.
        for attr, value in body.items():
            if isinstance(value, State):
                value.__set_name__(NestedState, attr)

    def __getattr__(self, attr: str) -> State:
        # Only reached for names that are not the state's own attributes.
        if attr.startswith("__") or attr in NestedState.__slots__:
            raise AttributeError(attr)
        value = self.body.get(attr)
        if isinstance(value, State):
            return value
        states = ", ".join(a for a, v in self.body.items() if isinstance(v, State))
        raise NoSuchState(
            f"{self.kind} state {self.qualname!r} declares no state {attr!r} "
            f"(its states: {states or 'none'})",
            state=attr,
        )

    def __repr__(self) -> str:
        return f"State.{self.kind.capitalize()}({self.label!r})"


class NoSuchState(MachineDefinitionError, AttributeError):
    """``on.nope``: a nested state has no state of that attribute (raised while
    the class body that names it runs, so it names the nested class)."""


class HistoryState(State):
    """A history pseudo-state of the compound state whose body declares it.

    Args:
        name: its name in the machine; by default the attribute's name.
        deep: remember every active state below the parent (deep history),
            not only its active child (shallow history, the default).

    A history state is only a target: a move to it (``off.to(on.h)``)
    re-enters what was active in the parent when the parent was last left,
    or the parent's initial child if it never was.
    """

    __slots__ = ("deep",)

    deep: object

    def __init__(
        self,
        name: str | None = None,
        *,
        deep: bool = False,
        initial: bool = False,
        final: bool = False,
        **unknown: object,
    ) -> None:
        # initial= and final= are refused when the chart is compiled
        super().__init__(name, initial=initial, final=final, **unknown)
        self.deep = deep

    def __repr__(self) -> str:
        return f"HistoryState({self.label!r}{', deep=True' * (self.deep is True)})"


class _Nesting(type):
    """Makes a class statement based on `Compound` or `Parallel` a `NestedState`."""

    _kind: str

    def __new__(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], /, **keywords: Any
    ) -> Any:
        if "_kind" in namespace:  # Compound and Parallel themselves
            return super().__new__(mcs, name, bases, namespace)
        if len(bases) != 1 or not isinstance(bases[0], _Nesting):
            raise MachineDefinitionError(
                f"nested state {namespace.get('__qualname__', name)!r}: a nested state's "
                "class has one base, State.Compound or State.Parallel "
                f"(got {', '.join(b.__name__ for b in bases)})",
                state=name,
            )
        return NestedState(bases[0]._kind, name, dict(namespace), **keywords)


class Compound(metaclass=_Nesting):
    """Base of a compound state written as a nested class: ``class on(State.Compound)``.

    The class body declares its children (one marked ``State(initial=True)``
    is the initial child; by default the first), their moves and hook
    methods, and its history states. Class keywords: ``name=``, ``initial=``
    (the machine's, or its parent's, initial state) and ``final=``, as `State`'s.
    """

    _kind = "compound"


class Parallel(metaclass=_Nesting):
    """Base of a parallel state written as a nested class: ``class running(State.Parallel)``.

    The class body declares its regions, usually compound states
    (``class audio(State.Compound)``), all active together. Class keywords as
    `Compound`'s.
    """

    _kind = "parallel"


State.Compound = Compound  # type: ignore[misc,assignment]  # State declares it for type checkers
State.Parallel = Parallel  # type: ignore[misc,assignment]


@dataclass(eq=False)
class Body:
    """What one class body of a chart declares: the chart's own (``owner``
    None) or a nested state's. Filled by `ChartReader`."""

    owner: NestedState | None
    attributes: dict[str, Any]
    parent: Body | None = None
    #: declared by the chart class itself, not inherited from a base
    own: bool = True
    states: dict[str, State] = field(default_factory=dict)
    events: dict[str, Transitions] = field(default_factory=dict)
    nested: list[Body] = field(default_factory=list)

    @property
    def label(self) -> str:
        """How messages name this body: ``compound state 'on'``, or ``the chart``."""
        if self.owner is None:
            return "the chart"
        return f"{self.owner.kind} state {self.owner.label!r}"

    def path(self) -> list[Body]:
        """This body and the bodies it is inside, innermost first."""
        found: list[Body] = []
        up: Body | None = self
        while up is not None:
            found.append(up)
            up = up.parent
        return found

    def subtree(self) -> list[Body]:
        """This body and every body inside it, outermost first."""
        found = [self]
        for child in self.nested:
            found += child.subtree()
        return found
