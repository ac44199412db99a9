"""The parts of a machine definition, each checked on its own.

`Hook` (one registered hook), `Event` (a named move) and the helpers that read
them from their short forms (``"a|b -> c"``, ``"pay: pending -> paid"``); the
checks `MachineSpec` runs on its states, events and hooks (`declared_states`,
`check_events`, `check_hook`); `MovePlan`, the hooks of one move by stage.
The spec that puts them together is in `_spec`.
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
    "Event",
    "Hook",
    "HookKind",
    "MovePlan",
    "ReadOnlyTable",
    "check_events",
    "check_hook",
    "declared_states",
    "describe",
    "parse_events",
    "parse_names",
]

HookKind = Literal["pre_transition", "guard", "exit", "enter", "after_commit"]
HOOK_KINDS: tuple[HookKind, ...] = ("pre_transition", "guard", "exit", "enter", "after_commit")

#: The source that stands for every state, in events (``"* -> cancelled"``).
ANY = "*"


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
    """

    kind: HookKind
    fn: Callable[..., Any]
    name: str
    to: frozenset[str] | None = None
    source: frozenset[str] | None = None
    event: frozenset[str] | None = None
    order: int = 0

    def __post_init__(self) -> None:
        if self.kind not in HOOK_KINDS:
            raise MachineDefinitionError(
                f"unknown hook kind {self.kind!r}; use one of {', '.join(HOOK_KINDS)}"
            )
        if not callable(self.fn):
            raise MachineDefinitionError(
                f"{self.kind} hook {self.name!r} is not callable: {self.fn!r}"
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


@dataclass(frozen=True, slots=True)
class Event:
    """A named move from one or more source states to one target state.

    Attributes:
        name: the event's name, as passed to ``trigger(name)``.
        sources: the states it can fire from (``ANY`` in the input means all).
        target: the state it leads to.
        effect: optional function run between exit and enter hooks; it may
            return a mapping of changes to the machine's data.
    """

    name: str
    sources: frozenset[str]
    target: str
    effect: Callable[..., Any] | None = None

    @classmethod
    def parse(
        cls, name: str, definition: object, effect: Callable[..., Any] | None = None
    ) -> Event:
        """Build an event from ``"a|b -> c"``, ``("a|b", "c")`` or ``(["a", "b"], "c")``."""
        if isinstance(definition, Event):
            return definition
        if isinstance(definition, str):
            source_text, arrow, target = definition.partition("->")
            if not arrow:
                raise MachineDefinitionError(
                    f"event {name!r}: {definition!r} is not of the form 'source -> target' "
                    "(several sources as 'a|b')",
                    event=name,
                )
            sources: object = source_text.strip()
            target = target.strip()
        elif isinstance(definition, (tuple, list)) and len(definition) == 2:
            sources, target = definition
        else:
            raise MachineDefinitionError(
                f"event {name!r}: expected 'source -> target' or (sources, target), "
                f"got {definition!r}",
                event=name,
            )
        if not isinstance(target, str) or not target:
            raise MachineDefinitionError(
                f"event {name!r}: target must be a state name, got {target!r}", event=name
            )
        parsed = parse_names(sources, f"event {name!r} sources")  # type: ignore[arg-type]
        if not parsed:
            raise MachineDefinitionError(f"event {name!r} has no source state", event=name)
        return cls(name, parsed, target, effect)


def parse_events(events: Mapping[str, object] | Iterable[Event | str] | None) -> list[Event]:
    if events is None:
        return []
    parsed: list[Event] = []
    if isinstance(events, Mapping):
        for name, definition in events.items():
            if not isinstance(name, str) or not name:
                raise MachineDefinitionError(f"event names must be non-empty str, got {name!r}")
            parsed.append(Event.parse(name, definition))
        return parsed
    for item in events:
        if isinstance(item, Event):
            parsed.append(item)
        elif isinstance(item, str):
            name, colon, rest = item.partition(":")
            if not colon:
                raise MachineDefinitionError(
                    f"event {item!r} is not of the form 'name: source -> target'"
                )
            parsed.append(Event.parse(name.strip(), rest.strip()))
        else:
            raise MachineDefinitionError(
                f"cannot read an event from {item!r}; use an Event, "
                "'name: source -> target', or a mapping"
            )
    return parsed


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


def check_events(
    events: list[Event], known: set[str], ordered: list[str]
) -> dict[tuple[str, str], Event]:
    table: dict[tuple[str, str], Event] = {}
    seen: set[tuple[str, frozenset[str], str]] = set()
    for ev in events:
        identity = (ev.name, ev.sources, ev.target)
        if identity in seen:
            raise MachineDefinitionError(
                f"duplicate event {ev.name!r}: {'|'.join(sorted(ev.sources))} -> "
                f"{ev.target} is defined twice",
                event=ev.name,
            )
        seen.add(identity)
        for state in [*ev.sources, ev.target]:
            if state != ANY and state not in known:
                raise MachineDefinitionError(
                    f"event {ev.name!r} names unknown state {state!r}; states: "
                    f"{', '.join(map(repr, ordered))}",
                    state=state,
                    event=ev.name,
                )
        if ev.target == ANY:
            raise MachineDefinitionError(
                f"event {ev.name!r} needs one target state, not {ANY!r}", event=ev.name
            )
        sources = ordered if ANY in ev.sources else sorted(ev.sources)
        for source in sources:
            other = table.get((ev.name, source))
            if other is not None and other.target == ev.target:
                raise MachineDefinitionError(
                    f"duplicate event {ev.name!r}: the move {source!r} -> {ev.target!r} "
                    "is defined twice",
                    state=source,
                    event=ev.name,
                )
            if other is not None:
                raise MachineDefinitionError(
                    f"ambiguous event {ev.name!r}: from {source!r} it leads both to "
                    f"{other.target!r} and to {ev.target!r}",
                    state=source,
                    event=ev.name,
                )
            table[(ev.name, source)] = ev
    return table


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
    #: whether anything runs before the commit
    before_commit: bool


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
