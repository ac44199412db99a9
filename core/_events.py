"""Events: named moves, and the alternatives (branches) of one event.

An `Event` is one transition: from a set of source states to one target, with
its own guards (``guards``, ``unless``), an optional effect, and whether it is
internal. `parse_events` reads them from their short forms (``"a|b -> c"``,
``"pay: pending -> paid"``, ``{"move": "a -> b", "guards": f}``, or a list of
those: one event's alternatives); `check_events` builds the table the spec
resolves requests with, ``(event name, source) -> alternatives in order``;
`check_branches` refuses alternatives that could never be told apart.

The data model, and how the statecharts still to come extend it without
changing it:

- A move is always found as *(event, source) -> ordered alternatives*, each an
  `Event`, and the spec turns them into one `MovePlan` chain
  (`MovePlan.otherwise`) that `_hooks._choose` walks. Compound states add
  ancestors to the lookup: the alternatives of a leaf are its own, then those
  of each ancestor outward (SCXML's document order), appended to the same
  tuple, so the selection rule ("the first whose guards all pass") and the
  refusal (`TransitionRejected.alternatives`) stay as they are.
- ``internal`` means "the source state is not exited". Flat machines require
  ``source == target``; with compound states it extends to SCXML's internal
  transitions (a target inside the source: the source's exit and enter hooks
  do not run), the same flag read by the same plan builder.
- Parallel regions send one event to each region's table in document order,
  each region choosing among its own alternatives, in one transaction; the
  alternatives of one region are exactly this tuple.
- Timers deliver events: a timeout is an `Event` fired by the clock instead of
  a caller, chosen among alternatives like any other.
- A history record says how a move was made (`TransitionRecord.kind`:
  internal, self or external); configurations before and after are further
  optional fields appended after the existing ones, as ``internal`` was, so
  records written today keep loading.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import MachineDefinitionError
from ._parts import ANY, Hook, HookKind, MovePlan, describe, parse_names

__all__ = [
    "Event",
    "check_branches",
    "check_events",
    "check_internal",
    "parse_events",
    "plan_move",
]


def _functions(value: object, what: str) -> tuple[Callable[..., Any], ...]:
    """Normalise ``guards=``/``unless=``: one callable or an iterable of them."""
    if value is None:
        return ()
    if callable(value):
        return (value,)
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise MachineDefinitionError(
            f"{what} must be a function or a list of functions, got {value!r}"
        )
    functions = tuple(value)
    for fn in functions:
        if not callable(fn):
            raise MachineDefinitionError(f"{what} must be functions, got {fn!r}")
    return functions


#: The keys of an event's mapping form (``{"move": "a -> b", "guards": ...}``).
_EVENT_KEYS = ("move", "guards", "unless", "internal", "effect")


@dataclass(frozen=True, slots=True)
class Event:
    """A named move from one or more source states to one target state.

    Several `Event` of one name may leave one state: they are that event's
    alternatives (branches) from there, tried in definition order; the first
    whose guards all pass is taken. Every alternative but the last needs guards
    (``guards``, ``unless``, or guard hooks that apply to its move); an
    unguarded last one is the ``else``.

    Attributes:
        name: the event's name, as passed to ``trigger(name)``.
        sources: the states it can fire from (``ANY`` in the input means all).
        target: the state it leads to.
        effect: optional function run between exit and enter hooks; it may
            return a mapping of changes to the machine's data.
        guards: this alternative's own guards, in order: it is taken only if
            none returns False (or raises `Reject`). One function or several.
        unless: negated guards: it is taken only if each returns False.
        internal: an internal transition (``target`` must be its only source,
            or with compound states a state inside each source): the source is
            not left, so none of its exit or enter hooks runs, only the
            transition's own (pre-transition, guards, effect, after-commit). A
            move from a state to itself that is not internal is a self
            transition: the state's exit and enter hooks run.
    """

    name: str
    sources: frozenset[str]
    target: str
    effect: Callable[..., Any] | None = None
    guards: tuple[Callable[..., Any], ...] = ()
    unless: tuple[Callable[..., Any], ...] = ()
    internal: bool = False

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "guards", _functions(self.guards, f"event {self.name!r} guards"))
        put(self, "unless", _functions(self.unless, f"event {self.name!r} unless"))
        if self.effect is not None and not callable(self.effect):
            raise MachineDefinitionError(
                f"event {self.name!r}: effect must be a function, got {self.effect!r}",
                event=self.name,
            )
        if not isinstance(self.internal, bool):
            raise MachineDefinitionError(
                f"event {self.name!r}: internal must be True or False, got {self.internal!r}",
                event=self.name,
            )

    @property
    def conditions(self) -> tuple[Hook, ...]:
        """This alternative's own guards, then its ``unless`` guards, as guard hooks."""
        return tuple(Hook("guard", fn, describe(fn)) for fn in self.guards) + tuple(
            Hook("guard", fn, describe(fn), negated=True) for fn in self.unless
        )

    @classmethod
    def parse(
        cls, name: str, definition: object, effect: Callable[..., Any] | None = None
    ) -> Event:
        """Build an event from ``"a|b -> c"``, ``("a|b", "c")``, ``(["a", "b"], "c")``
        or ``{"move": "a|b -> c", "guards": f, "unless": g, "internal": False,
        "effect": h}`` (every key but ``move`` optional)."""
        if isinstance(definition, Event):
            return definition
        options: dict[str, Any] = {}
        if isinstance(definition, Mapping):
            unknown = [key for key in definition if key not in _EVENT_KEYS]
            if unknown or "move" not in definition:
                raise MachineDefinitionError(
                    f"event {name!r}: a mapping needs 'move' ('source -> target') and may "
                    f"have {', '.join(map(repr, _EVENT_KEYS[1:]))}; got keys "
                    f"{', '.join(map(repr, definition))}",
                    event=name,
                )
            options = {key: value for key, value in definition.items() if key != "move"}
            definition = definition["move"]
            effect = options.pop("effect", effect)
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
        return cls(name, parsed, target, effect, **options)


def _is_alternative(item: object) -> bool:
    return isinstance(item, Mapping | Event) or (isinstance(item, str) and "->" in item)


def _alternatives(name: str, definition: object) -> list[Event]:
    """The events one mapping entry defines: one, or a list of alternatives."""
    if (
        isinstance(definition, list | tuple)
        and definition
        and all(_is_alternative(item) for item in definition)
    ):
        parsed = [Event.parse(name, item) for item in definition]
        for ev in parsed:
            if ev.name != name:
                raise MachineDefinitionError(
                    f"event {name!r} lists an Event named {ev.name!r}; give it the name {name!r}",
                    event=name,
                )
        return parsed
    return [Event.parse(name, definition)]


def parse_events(events: Mapping[str, object] | Iterable[Event | str] | None) -> list[Event]:
    if events is None:
        return []
    parsed: list[Event] = []
    if isinstance(events, Mapping):
        for name, definition in events.items():
            if not isinstance(name, str) or not name:
                raise MachineDefinitionError(f"event names must be non-empty str, got {name!r}")
            parsed += _alternatives(name, definition)
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


def check_internal(events: list[Event], chart: Any) -> None:
    """An internal transition does not leave its source: its target is the
    source itself or, with compound states, a state inside it."""
    for ev in events:
        if not ev.internal:
            continue
        if ev.sources == {ev.target}:
            continue
        if chart is not None and all(
            s in chart.parent and chart.kind[s] == "compound" and s in chart.ancestors(ev.target)
            for s in ev.sources
        ):
            continue
        inside = " or a state inside it (a compound source)" if chart is not None else ""
        raise MachineDefinitionError(
            f"event {ev.name!r}: an internal transition stays in its state, so its "
            f"target must be its source{inside}; write '{ev.target} -> {ev.target}'",
            event=ev.name,
        )


def check_events(
    events: list[Event], known: set[str], ordered: list[str]
) -> dict[tuple[str, str], tuple[Event, ...]]:
    """Each event's alternatives by ``(name, source)``, in definition order.

    Whether the alternatives can be told apart (every one but the last
    guarded) depends on the guard hooks too: `check_branches` checks it.
    """
    table: dict[tuple[str, str], tuple[Event, ...]] = {}
    seen: set[Event] = set()
    for ev in events:
        if ev in seen:
            raise MachineDefinitionError(
                f"duplicate event {ev.name!r}: {'|'.join(sorted(ev.sources))} -> "
                f"{ev.target} is defined twice",
                event=ev.name,
            )
        seen.add(ev)
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
            table[(ev.name, source)] = (*table.get((ev.name, source), ()), ev)
    return table


def check_branches(table: dict[tuple[str, str], tuple[Event, ...]], hooks: list[Hook]) -> None:
    """Refuse alternatives that cannot be told apart: from one source, every
    alternative of an event but the last must have guards (its own, or guard
    hooks that apply to its move), or the ones after it could never be taken."""
    guard_hooks = [h for h in hooks if h.kind == "guard"]
    for (name, source), alternatives in table.items():
        for ev, later in itertools.pairwise(alternatives):
            if (
                ev.guards
                or ev.unless
                or any(h.applies(source, ev.target, name) for h in guard_hooks)
            ):
                continue
            if later.target == ev.target and not (later.guards or later.unless):
                raise MachineDefinitionError(
                    f"duplicate event {name!r}: the move {source!r} -> {ev.target!r} "
                    "is defined twice",
                    state=source,
                    event=name,
                )
            raise MachineDefinitionError(
                f"ambiguous event {name!r}: from {source!r} it leads both to "
                f"{ev.target!r} and to {later.target!r}; to choose between them, give the "
                f"move to {ev.target!r} guards= or unless= (the first alternative whose "
                "guards pass is taken, an unguarded last one is the else)",
                state=source,
                event=name,
            )


def plan_move(
    hooks_for: Callable[[HookKind, str | None, str, str | None], tuple[Hook, ...]],
    source: str | None,
    target: str,
    event: str | None,
    ev: Event | None,
) -> MovePlan:
    """The `MovePlan` of ``source -> target`` by ``event``, made by the
    alternative ``ev`` (None: a move by target no event makes, or a creation).

    ``hooks_for`` gives the hooks of one kind that apply (`MachineSpec.hooks_for`).
    The alternative's own guards run before the guard hooks; an internal
    transition runs no exit or enter hook.
    """
    internal = ev is not None and ev.internal
    stages: list[tuple[str, str, Callable[..., Any]]] = []
    if not internal:
        stages += [("exit", h.name, h.fn) for h in hooks_for("exit", source, target, event)]
    if ev is not None and ev.effect is not None:
        stages.append(("effect", describe(ev.effect), ev.effect))
    if not internal:
        stages += [("enter", h.name, h.fn) for h in hooks_for("enter", source, target, event)]
    pre = hooks_for("pre_transition", source, target, event)
    guards = hooks_for("guard", source, target, event)
    if ev is not None:
        guards = ev.conditions + guards
    return MovePlan(
        pre,
        guards,
        tuple(stages),
        hooks_for("after_commit", source, target, event),
        bool(pre or guards or stages) or internal,  # internal: the history says so
        target,
        internal,
    )
