"""The declarations of the class form: `State` and the `Transitions` it makes.

``green = State(initial=True)`` declares a state; ``green.to(yellow)``,
``yellow.from_(green)`` and ``red.from_.any()`` declare moves, which ``|``
combines; assigned to a class attribute, they are the alternatives of the
event of that name (see `StateChart` in `_chart_class`, which compiles them
to a `MachineSpec`). Nothing here is checked against a chart yet: a state
does not know which chart it belongs to until the chart is compiled, so
every error that needs the chart is raised there, naming the class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

__all__ = ["Condition", "Move", "State", "Transitions", "describe_move"]

#: A guard or an effect as written in the class form: a function, or the name
#: of a method of the chart.
Condition = Callable[..., Any] | str

#: A state as a move names it: a `State`, or a nested state's class statement
#: (``class on(State.Compound)``), which a type checker sees as a class; at run
#: time it is a `State` too (`_chart_tree.NestedState`).
StateRef: TypeAlias = "State | type[State.Compound] | type[State.Parallel]"


@dataclass(frozen=True, slots=True, eq=False)
class Move:
    """One declared move: ``source.to(target)`` with its options.

    ``sources`` is None for ``target.from_.any()`` (every state that is not
    final). Compared by identity: two moves written alike are two moves.
    Kept as written: the chart checks every value when it is compiled, so
    that its errors can name the chart.
    """

    sources: tuple[object, ...] | None
    target: object
    cond: object = None
    unless: object = None
    internal: object = False
    on: object = None
    #: keywords the class form does not take (``validators=``...), refused
    #: when the chart is compiled
    unknown: tuple[str, ...] = ()


class Transitions:
    """Moves in order, combined with ``|``; assigned to a chart attribute they
    are the alternatives of the event of that name, tried in this order."""

    __slots__ = ("moves",)

    moves: tuple[Move, ...]

    def __init__(self, moves: Iterable[Move]) -> None:
        object.__setattr__(self, "moves", tuple(moves))

    def __or__(self, other: object) -> Transitions:
        if not isinstance(other, Transitions):
            return NotImplemented
        return Transitions(self.moves + other.moves)

    def __iter__(self) -> Iterator[Move]:
        return iter(self.moves)

    def __len__(self) -> int:
        return len(self.moves)

    def __setattr__(self, name: str, value: object) -> None:
        from ._errors import FrozenStateError

        raise FrozenStateError("Transitions", name)

    def __repr__(self) -> str:
        return " | ".join(describe_move(m) for m in self.moves) or "Transitions()"


def _label(value: object) -> str:
    if isinstance(value, tuple):
        return ", ".join(map(_label, value))
    return value.label if isinstance(value, State) else repr(value)


def describe_move(move: Move) -> str:
    """The move as it is written: ``green.to(yellow)``, ``done.from_(a, b)``..."""
    target = _label(move.target)
    if move.sources is None:
        return f"{target}.from_.any()"
    if len(move.sources) == 1 and move.sources[0] is not move.target:
        return f"{_label(move.sources[0])}.to({target})"
    if len(move.sources) == 1:
        return f"{target}.to.itself()"
    return f"{target}.from_({', '.join(map(_label, move.sources))})"


class _To:
    """``state.to(target, ...)`` and ``state.to.itself(...)``."""

    __slots__ = ("_state",)

    def __init__(self, state: State) -> None:
        self._state = state

    def __call__(
        self,
        *targets: StateRef,
        cond: Condition | Iterable[Condition] | None = None,
        unless: Condition | Iterable[Condition] | None = None,
        internal: bool = False,
        on: Condition | None = None,
        **unknown: object,
    ) -> Transitions:
        """A move from this state to a target.

        Args:
            targets: the state it leads to (one: several targets are refused
                when the chart is compiled).
            cond: guards: the move is taken only if each returns a true value
                (and none raises `Reject`). Functions or method names.
            unless: negated guards: taken only if each returns False.
            internal: the state is not left (``target`` must be this state):
                no exit or enter hook runs.
            on: the move's effect, run between exit and enter hooks; by
                default the chart's ``on_<event>`` method, if it has one.
        """
        target = targets[0] if len(targets) == 1 else targets
        return self._state._made(
            Move((self._state,), target, cond, unless, internal, on, tuple(unknown))
        )

    def itself(
        self,
        *,
        cond: Condition | Iterable[Condition] | None = None,
        unless: Condition | Iterable[Condition] | None = None,
        internal: bool = False,
        on: Condition | None = None,
        **unknown: object,
    ) -> Transitions:
        """A move from this state to itself: a self transition, or an internal
        one with ``internal=True``."""
        return self(self._state, cond=cond, unless=unless, internal=internal, on=on, **unknown)


class _From:
    """``state.from_(a, b, ...)`` and ``state.from_.any()``."""

    __slots__ = ("_state",)

    def __init__(self, state: State) -> None:
        self._state = state

    def __call__(
        self,
        *sources: StateRef,
        cond: Condition | Iterable[Condition] | None = None,
        unless: Condition | Iterable[Condition] | None = None,
        on: Condition | None = None,
        **unknown: object,
    ) -> Transitions:
        """Moves from each of ``sources`` to this state (one alternative each)."""
        return self._state._made(
            Move(tuple(sources), self._state, cond, unless, False, on, tuple(unknown))
        )

    def any(
        self,
        *,
        cond: Condition | Iterable[Condition] | None = None,
        unless: Condition | Iterable[Condition] | None = None,
        on: Condition | None = None,
        **unknown: object,
    ) -> Transitions:
        """Moves from every state that is not final to this state (itself
        included: a self transition)."""
        return self._state._made(Move(None, self._state, cond, unless, False, on, tuple(unknown)))


class State:
    """A state of a `StateChart`, declared as a class attribute.

    Args:
        name: the state's name in the machine; by default the attribute's
            name. Give one when it is not an identifier (``State("hanging out")``).
        initial: the state a new machine starts in (exactly one per chart).
        final: no move may leave it.
        timeout: a state timeout, ``(seconds, "event")`` (or the mapping form
            of `MachineSpec`'s ``timeouts=``): the event, named by its
            attribute, fires once the state has been active that long.

    The attribute's name (not ``name``) is what hook methods are named after:
    ``on_enter_<attribute>``, ``on_exit_<attribute>``.
    """

    __slots__ = ("_moves", "attribute", "final", "initial", "name", "timeout", "unknown")

    if TYPE_CHECKING:
        # What a type checker sees of the bases of a nested state's class
        # statement, `_chart_tree.Compound` and `Parallel` (set there at run
        # time): a class whose keywords are a state's and whose class object
        # has a state's moves, as the NestedState it makes at run time does.

        class Compound:
            to: ClassVar[_To]
            from_: ClassVar[_From]

            def __init_subclass__(
                cls, *, name: str | None = None, initial: bool = False, final: bool = False
            ) -> None: ...

        class Parallel(Compound): ...

    name: object
    initial: object
    final: object
    timeout: object
    attribute: str | None
    unknown: tuple[str, ...]
    _moves: list[Move]

    def __init__(
        self,
        name: str | None = None,
        *,
        initial: bool = False,
        final: bool = False,
        timeout: object = None,
        **unknown: object,
    ) -> None:
        # Checked when the chart is compiled, so that errors name the chart.
        self.name = name
        self.initial = initial
        self.final = final
        self.timeout = timeout
        self.unknown = tuple(unknown)  # keywords the class form does not take
        self.attribute = None
        self._moves = []

    def __set_name__(self, owner: type, attribute: str) -> None:
        if self.attribute is None:
            self.attribute = attribute

    @property
    def label(self) -> str:
        """How messages name this state: its name, else its attribute's."""
        if isinstance(self.name, str) and self.name:
            return self.name
        return self.attribute or "<State>"  # an attribute name is never empty

    @property
    def to(self) -> _To:
        """Declare a move from this state: ``green.to(yellow, cond=..., unless=...,
        internal=..., on=...)``, or ``green.to.itself(...)``."""
        return _To(self)

    @property
    def from_(self) -> _From:
        """Declare moves into this state: ``done.from_(a, b)``, ``off.from_.any()``."""
        return _From(self)

    def made_moves(self) -> tuple[Move, ...]:
        """Every move declared with this state's ``to`` or ``from_``, in order."""
        return tuple(self._moves)

    def _made(self, move: Move) -> Transitions:
        self._moves.append(move)
        return Transitions((move,))

    def __repr__(self) -> str:
        flags = "".join(f", {flag}=True" for flag in ("initial", "final") if getattr(self, flag))
        return f"State({self.label!r}{flags})"
