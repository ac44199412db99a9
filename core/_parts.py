"""The parts of a machine definition, each checked on its own.

`Hook` (one registered hook) and the name filters it is read from; the
checks `MachineSpec` runs on its states and hooks (`declared_states`,
`check_hook`); `MovePlan`, the hooks of one move by stage. Events (named
moves, and an event's alternatives) are in `_events`; the spec that puts
them together is in `_spec`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from ._errors import MachineDefinitionError

__all__ = [
    "ANY",
    "HOOK_KINDS",
    "Hook",
    "HookKind",
    "MovePlan",
    "ReadOnlyTable",
    "check_hook",
    "declared_states",
    "describe",
    "parse_names",
]

HookKind = Literal["pre_transition", "guard", "exit", "enter", "after_commit"]
HOOK_KINDS: tuple[HookKind, ...] = ("pre_transition", "guard", "exit", "enter", "after_commit")

ANY = "*"
"""The source that stands for every state, in events (``"* -> cancelled"``)."""


def parse_names(value: str | Iterable[str] | None, what: str) -> frozenset[str] | None:
    """Normalise a filter: None, one name, ``"a|b"``, or an iterable of names."""
    if value is None:
        return None
    parts = [p.strip() for p in value.split("|")] if isinstance(value, str) else list(value)
    for part in parts:
        if not isinstance(part, str) or not part:
            raise MachineDefinitionError(
                f"{what} must be non-empty state or event names, got {part!r}"
            )
    return frozenset(parts)


def describe(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


@dataclass(frozen=True, slots=True)
class Hook:
    """One registered hook: what it is, when it runs, and the function.

    Attributes:
        kind: ``pre_transition``, ``guard``, ``exit``, ``enter`` or ``after_commit``.
        fn: called with a `TransitionContext`; may be a coroutine function.
        name: shown in errors (a guard's veto names it); the function's name by default.
        to: run only for transitions into one of these states (None: any).
        source: run only for transitions out of one of these states (None: any).
        event: run only for these events (None: any, including no event).
        order: hooks of one kind run by ascending order, then registration order.
        negated: for a guard, an ``unless`` guard: it vetoes when its function
            returns True, lets the move go on when it returns False, and any
            other answer is a `HookReturnError`.
    """

    kind: HookKind
    fn: Callable[..., Any]
    name: str
    to: frozenset[str] | None = None
    source: frozenset[str] | None = None
    event: frozenset[str] | None = None
    order: int = 0
    negated: bool = False

    def __post_init__(self) -> None:
        if self.kind not in HOOK_KINDS:
            raise MachineDefinitionError(
                f"unknown hook kind {self.kind!r}; use one of {', '.join(HOOK_KINDS)}"
            )
        if not callable(self.fn):
            raise MachineDefinitionError(
                f"{self.kind} hook {self.name!r} is not callable: {self.fn!r}"
            )
        if self.negated and self.kind != "guard":
            raise MachineDefinitionError(
                f"{self.kind} hook {self.name!r}: only a guard can be negated (unless)"
            )

    @property
    def is_async(self) -> bool:
        """Whether the hook is a coroutine function."""
        return inspect.iscoroutinefunction(self.fn)

    def applies(self, source: str | None, target: str, event: str | None) -> bool:
        """Whether this hook runs for the move ``source -> target`` (by ``event``)."""
        return (
            (self.to is None or target in self.to)
            and (self.source is None or source in self.source)
            and (self.event is None or event in self.event)
        )


def declared_states(
    transitions: Mapping[str, Iterable[str]] | None, states: Iterable[str]
) -> list[str]:
    if transitions is not None and not isinstance(transitions, Mapping):
        raise MachineDefinitionError(
            "transitions must be a mapping {state: [allowed next states]}, got "
            f"{type(transitions).__qualname__}"
        )
    declared: list[str] = []
    for state in [*(transitions or {}), *states]:
        if not isinstance(state, str) or not state or state == ANY:
            raise MachineDefinitionError(
                f"state names must be non-empty str other than {ANY!r}, got {state!r}",
                state=str(state),
            )
        if state not in declared:
            declared.append(state)
    return declared


def check_hook(hook: Hook, known: set[str], event_names: set[str]) -> None:
    if not isinstance(hook, Hook):
        raise MachineDefinitionError(f"hooks must be Hook objects, got {hook!r}")
    for label, names in (("to", hook.to), ("source", hook.source)):
        for state in names or ():
            if state not in known:
                raise MachineDefinitionError(
                    f"{hook.kind} hook {hook.name!r} is registered on unknown state "
                    f"{state!r} ({label}=); states: {', '.join(sorted(known))}",
                    state=state,
                )
    for ev_name in hook.event or ():
        if ev_name not in event_names:
            raise MachineDefinitionError(
                f"{hook.kind} hook {hook.name!r} is registered on unknown event "
                f"{ev_name!r}; events: {', '.join(sorted(event_names)) or 'none'}",
                event=ev_name,
            )


class MovePlan(NamedTuple):
    """The hooks of one move, by stage; see `MachineSpec.plan`."""

    pre_transition: tuple[Hook, ...]
    guards: tuple[Hook, ...]
    #: exit hooks, the event's effect, then enter hooks: (kind, name, function)
    stages: tuple[tuple[str, str, Callable[..., Any]], ...]
    after_commit: tuple[Hook, ...]
    #: whether anything runs before the commit (always True for an internal
    #: transition, whose history entry is made on that path)
    before_commit: bool
    #: the state the move enters
    target: str | None = None
    #: an internal transition: the state is not left, no exit or enter hook runs
    internal: bool = False
    #: the event's next alternative from the same source, tried when this
    #: one's pre-transition hooks or guards refuse (None: this is the last)
    otherwise: MovePlan | None = None
    #: a statechart's move: the configurations and the states exited and
    #: entered (a `_chartmove.ChartStep`); None for a flat machine's move
    chart: Any = None


class ReadOnlyTable(Mapping[str, tuple[str, ...]]):
    """A read-only view of the transitions mapping."""

    __slots__ = ("_table",)

    def __init__(self, table: dict[str, tuple[str, ...]]) -> None:
        self._table = table

    def __getitem__(self, key: str) -> tuple[str, ...]:
        return self._table[key]

    def __iter__(self) -> Any:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        return repr(self._table)
