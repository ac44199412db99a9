"""Machine definitions: `MachineSpec` (immutable, validated) and `MachineBuilder`.

A machine is a set of states, one initial state, the allowed moves between
states, optional named events, and hooks. Moves come from the mapping form
``{state: [allowed next states]}``, from events (``"pay": "pending -> paid"``),
or both; an event's move is allowed even if the mapping leaves it out.

Hooks run in this order for one transition (see `apply_transition`)::

    pre_transition -> guard -> exit(old) -> event effect -> enter(new) -> commit -> after_commit

Every hook takes one argument, a `TransitionContext`, and may be a plain
function or a coroutine function.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, TypeVar, overload

from ._errors import MachineDefinitionError

__all__ = ["ANY", "Event", "Hook", "HookKind", "MachineBuilder", "MachineSpec"]

HookKind = Literal["pre_transition", "guard", "exit", "enter", "after_commit"]
HOOK_KINDS: tuple[HookKind, ...] = ("pre_transition", "guard", "exit", "enter", "after_commit")

#: The source that stands for every state, in events (``"* -> cancelled"``).
ANY = "*"

_F = TypeVar("_F", bound=Callable[..., Any])


def _names(value: str | Iterable[str] | None, what: str) -> frozenset[str] | None:
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


def _describe(fn: Callable[..., Any]) -> str:
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
        parsed = _names(sources, f"event {name!r} sources")  # type: ignore[arg-type]
        if not parsed:
            raise MachineDefinitionError(f"event {name!r} has no source state", event=name)
        return cls(name, parsed, target, effect)


def _parse_events(events: Mapping[str, object] | Iterable[Event | str] | None) -> list[Event]:
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


class MachineSpec:
    """An immutable, validated machine definition.

    Args:
        initial: the state a new machine starts in.
        transitions: ``{state: [allowed next states]}``; an empty list marks a
            terminal state. Optional when ``events`` define the moves. The
            spec's ``transitions`` attribute lists every allowed move in this
            form, the events' moves included.
        events: named events, as a mapping ``{"pay": "pending -> paid",
            "cancel": "pending|paid -> cancelled"}`` or an iterable of `Event`
            and ``"name: source -> target"`` strings. ``*`` as a source means
            every state.
        hooks: `Hook` objects (a `MachineBuilder` registers them by decorator).
        states: extra states, for definitions given only by events.
        history_limit: how many `TransitionRecord` a machine keeps (0: none).
        name: a label used in messages.

    Raises:
        MachineDefinitionError: the definition cannot work (no or unknown initial
            state, unknown target, duplicate or ambiguous event, hook on an
            unknown state or event). The message names the culprit.
    """

    __slots__ = (
        "_allowed",
        "_event_table",
        "_events_from",
        "_events_to",
        "_hooks_by_kind",
        "_moves",
        "_plans",
        "events",
        "history_limit",
        "hooks",
        "initial",
        "name",
        "states",
        "transitions",
    )

    initial: str
    states: tuple[str, ...]
    transitions: Mapping[str, tuple[str, ...]]
    events: tuple[Event, ...]
    hooks: tuple[Hook, ...]
    history_limit: int
    name: str | None
    _allowed: dict[str, frozenset[str]]
    _event_table: dict[tuple[str, str], Event]
    _events_from: dict[str, tuple[str, ...]]
    _hooks_by_kind: dict[str, tuple[Hook, ...]]
    _plans: dict[tuple[str | None, str, str | None], MovePlan]
    #: checked moves, by (source, target or None, event or None) as requested
    _moves: dict[tuple[str, str | None, str | None], tuple[str, str | None, MovePlan]]
    _events_to: dict[tuple[str, str], tuple[str, ...]]

    def __init__(
        self,
        initial: str | None = None,
        transitions: Mapping[str, Iterable[str]] | None = None,
        *,
        events: Mapping[str, object] | Iterable[Event | str] | None = None,
        hooks: Iterable[Hook] = (),
        states: Iterable[str] = (),
        history_limit: int = 100,
        name: str | None = None,
    ) -> None:
        declared = self._declared_states(transitions, states)
        event_list = _parse_events(events)
        ordered = list(declared)
        if transitions is None:
            # Without a mapping, states are whatever the initial state and the
            # events name, in the order they first appear.
            named = [initial] if isinstance(initial, str) else []
            for ev in event_list:
                named += [*sorted(s for s in ev.sources if s != ANY), ev.target]
            ordered += [s for s in dict.fromkeys(named) if s not in ordered]
        known = set(ordered)

        if initial is None:
            raise MachineDefinitionError("no initial state: pass initial='<state>'")
        if not isinstance(initial, str) or initial not in known:
            raise MachineDefinitionError(
                f"initial state {initial!r} is not a state of this machine; states: "
                f"{', '.join(map(repr, ordered)) or 'none'}",
                state=str(initial),
            )

        table: dict[str, tuple[str, ...]] = {}
        for state, targets in (transitions or {}).items():
            if isinstance(targets, str):
                raise MachineDefinitionError(
                    f"transitions[{state!r}] must be a list of states, got the string "
                    f"{targets!r}; write [{targets!r}]",
                    state=state,
                )
            listed = tuple(dict.fromkeys(targets))
            for target in listed:
                if target not in known:
                    raise MachineDefinitionError(
                        f"transitions[{state!r}] names unknown target state {target!r}; "
                        f"add {target!r}: [] if it is a terminal state",
                        state=target,
                    )
            table[state] = listed

        event_table = self._check_events(event_list, known, ordered)
        allowed: dict[str, frozenset[str]] = {}
        events_from: dict[str, tuple[str, ...]] = {}
        events_to: dict[tuple[str, str], tuple[str, ...]] = {}
        for state in ordered:
            moves = list(table.get(state, ()))
            names: list[str] = []
            for (ev_name, source), ev in event_table.items():
                if source == state:
                    if ev.target not in moves:
                        moves.append(ev.target)
                    names.append(ev_name)
                    key = (state, ev.target)
                    events_to[key] = (*events_to.get(key, ()), ev_name)
            allowed[state] = frozenset(moves)
            events_from[state] = tuple(sorted(names))
            table[state] = tuple(moves)  # the mapping form of every allowed move

        hook_list = list(hooks)
        for hook in hook_list:
            self._check_hook(hook, known, {ev.name for ev in event_list})
        if (
            not isinstance(history_limit, int)
            or isinstance(history_limit, bool)
            or history_limit < 0
        ):
            raise MachineDefinitionError(
                f"history_limit must be an int >= 0 (0 keeps no history), got {history_limit!r}"
            )

        by_kind: dict[str, tuple[Hook, ...]] = {}
        for kind in ("pre_transition", "guard", "exit", "enter", "after_commit"):
            chosen = [h for h in hook_list if h.kind == kind]
            chosen.sort(key=lambda h: h.order)  # stable: registration order within an order
            by_kind[kind] = tuple(chosen)

        put = object.__setattr__
        put(self, "initial", initial)
        put(self, "states", tuple(ordered))
        put(self, "transitions", _ReadOnlyTable(table))
        put(self, "events", tuple(event_list))
        put(self, "hooks", tuple(h for kind in by_kind.values() for h in kind))
        put(self, "history_limit", history_limit)
        put(self, "name", name)
        put(self, "_allowed", allowed)
        put(self, "_event_table", event_table)
        put(self, "_events_from", events_from)
        put(self, "_hooks_by_kind", by_kind)
        put(self, "_plans", {})
        put(self, "_moves", {})
        put(self, "_events_to", events_to)

    @staticmethod
    def _declared_states(
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

    @staticmethod
    def _check_events(
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

    @staticmethod
    def _check_hook(hook: Hook, known: set[str], event_names: set[str]) -> None:
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

    # -- queries ----------------------------------------------------------------

    def allowed_targets(self, state: str) -> frozenset[str]:
        """The states reachable in one move from ``state`` (empty for a terminal state).

        Raises:
            MachineDefinitionError: ``state`` is not a state of this machine.
        """
        try:
            return self._allowed[state]
        except (KeyError, TypeError):
            raise self._unknown_state(state) from None

    def allowed_events(self, state: str) -> tuple[str, ...]:
        """The names of the events that can fire from ``state``, sorted."""
        self.allowed_targets(state)
        return self._events_from[state]

    def allows(self, state: str, target: str) -> bool:
        """Whether the definition allows ``state -> target``; guards are not run."""
        allowed = self._allowed.get(state)
        return allowed is not None and target in allowed

    def event_for(self, name: str, state: str) -> Event | None:
        """The event ``name`` as it fires from ``state``, or None if it cannot."""
        return self._event_table.get((name, state))

    def events_between(self, source: str, target: str) -> tuple[str, ...]:
        """The names of the events that move ``source -> target``, in definition order."""
        return self._events_to.get((source, target), ())

    def has_event(self, name: str) -> bool:
        """Whether an event of that name exists (from any state)."""
        return any(ev.name == name for ev in self.events)

    def is_terminal(self, state: str) -> bool:
        """Whether no move leaves ``state``."""
        return not self.allowed_targets(state)

    @property
    def terminal_states(self) -> tuple[str, ...]:
        """The states no move leaves, in definition order."""
        return tuple(s for s in self.states if not self._allowed[s])

    def hooks_for(
        self, kind: HookKind, source: str | None, target: str, event: str | None
    ) -> tuple[Hook, ...]:
        """The hooks of ``kind`` that apply to ``source -> target``, in run order."""
        return tuple(h for h in self._hooks_by_kind[kind] if h.applies(source, target, event))

    def plan(self, source: str | None, target: str, event: str | None) -> MovePlan:
        """Every hook that runs for ``source -> target`` (by ``event``), in run order.

        Computed once per move and kept: the spec never changes.
        """
        key = (source, target, event)
        plan = self._plans.get(key)
        if plan is None:
            stages: list[tuple[str, str, Callable[..., Any]]] = [
                ("exit", h.name, h.fn) for h in self.hooks_for("exit", source, target, event)
            ]
            ev = self.event_for(event, source) if event is not None and source is not None else None
            if ev is not None and ev.effect is not None:
                stages.append(("effect", _describe(ev.effect), ev.effect))
            stages += [
                ("enter", h.name, h.fn) for h in self.hooks_for("enter", source, target, event)
            ]
            pre = self.hooks_for("pre_transition", source, target, event)
            guards = self.hooks_for("guard", source, target, event)
            plan = MovePlan(
                pre,
                guards,
                tuple(stages),
                self.hooks_for("after_commit", source, target, event),
                bool(pre or guards or stages),
            )
            self._plans[key] = plan  # idempotent: a race computes the same plan twice
        return plan

    def _unknown_state(self, state: object) -> MachineDefinitionError:
        return MachineDefinitionError(
            f"{state!r} is not a state of this machine; states: "
            f"{', '.join(map(repr, self.states))}",
            state=str(state),
        )

    @property
    def has_async_hooks(self) -> bool:
        """Whether any hook or event effect is a coroutine function."""
        return any(h.is_async for h in self.hooks) or any(
            ev.effect is not None and inspect.iscoroutinefunction(ev.effect) for ev in self.events
        )

    # -- value behaviour ------------------------------------------------------------

    def __setattr__(self, name: str, value: object) -> None:
        from ._errors import FrozenStateError

        raise FrozenStateError("MachineSpec", name)

    def __delattr__(self, name: str) -> None:
        from ._errors import FrozenStateError

        raise FrozenStateError("MachineSpec", name, operation="delete")

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return (
            f"<MachineSpec{label} initial={self.initial!r} states={len(self.states)} "
            f"events={len(self.events)} hooks={len(self.hooks)}>"
        )

    def to_builder(self) -> MachineBuilder:
        """A `MachineBuilder` holding this definition, to extend into a new spec."""
        builder = MachineBuilder(
            self.initial,
            dict(self.transitions),
            events=list(self.events),
            states=self.states,
            history_limit=self.history_limit,
            name=self.name,
        )
        builder._hooks.extend(self.hooks)
        return builder


class MovePlan(NamedTuple):
    """The hooks of one move, by stage; see `MachineSpec.plan`."""

    pre_transition: tuple[Hook, ...]
    guards: tuple[Hook, ...]
    #: exit hooks, the event's effect, then enter hooks: (kind, name, function)
    stages: tuple[tuple[str, str, Callable[..., Any]], ...]
    after_commit: tuple[Hook, ...]
    #: whether anything runs before the commit
    before_commit: bool


class _ReadOnlyTable(Mapping[str, tuple[str, ...]]):
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


_Filter = str | Iterable[str] | None


@dataclass
class MachineBuilder:
    """Collects a machine definition and its hooks; `build` makes the `MachineSpec`.

    Hooks register by decorator, with or without parentheses, in the module that
    defines the machine or in any other module that imports the builder::

        orders = MachineBuilder("pending", {"pending": ["paid", "cancelled"],
                                            "paid": ["shipped", "cancelled"],
                                            "shipped": [], "cancelled": []})

        @orders.guard("paid")             # only for moves into "paid"
        def amount_positive(ctx):
            return ctx.payload.get("amount", 0) > 0

        @orders.after_commit              # every committed move
        def notify(ctx): ...

        spec = orders.build()

    A machine takes the definition as it is when it is created: hooks registered
    later do not reach machines that already exist.
    """

    initial: str | None = None
    transitions: Mapping[str, Iterable[str]] | None = None
    events: Mapping[str, object] | Iterable[Event | str] | None = None
    states: Iterable[str] = ()
    history_limit: int = 100
    name: str | None = None
    _hooks: list[Hook] = field(default_factory=list, repr=False)
    _effects: dict[str, Callable[..., Any]] = field(default_factory=dict, repr=False)
    _extra_events: list[Event] = field(default_factory=list, repr=False)

    def build(self) -> MachineSpec:
        """Validate and freeze the definition.

        Raises:
            MachineDefinitionError: see `MachineSpec`.
        """
        events = _parse_events(self.events)
        with_effects = [
            Event(ev.name, ev.sources, ev.target, self._effects.get(ev.name, ev.effect))
            for ev in events
        ]
        for name in self._effects:
            if not any(ev.name == name for ev in with_effects + self._extra_events):
                raise MachineDefinitionError(
                    f"effect registered for unknown event {name!r}", event=name
                )
        return MachineSpec(
            self.initial,
            self.transitions,
            events=with_effects + self._extra_events,
            hooks=self._hooks,
            states=self.states,
            history_limit=self.history_limit,
            name=self.name,
        )

    def _register(
        self,
        kind: HookKind,
        fn_or_states: Any,
        positional: str,
        to: _Filter,
        source: _Filter,
        event: _Filter,
        order: int,
        name: str | None,
    ) -> Any:
        bare = callable(fn_or_states) and not isinstance(fn_or_states, str)
        states = None if bare else fn_or_states

        def register(fn: _F) -> _F:
            filters = {"to": to, "source": source}
            if states is not None:
                filters[positional] = states
            self._hooks.append(
                Hook(
                    kind,
                    fn,
                    name or _describe(fn),
                    to=_names(filters["to"], f"{kind} 'to'"),
                    source=_names(filters["source"], f"{kind} 'source'"),
                    event=_names(event, f"{kind} 'event'"),
                    order=order,
                )
            )
            return fn

        return register(fn_or_states) if bare else register

    # Each decorator works bare (@b.guard) or called (@b.guard("paid", order=1)).
    # The positional argument names states: the target for pre_transition, guard,
    # enter and after_commit; the state being left for exit.

    @overload
    def pre_transition(self, fn: _F, /) -> _F: ...
    @overload
    def pre_transition(
        self,
        states: _Filter = None,
        /,
        *,
        to: _Filter = None,
        source: _Filter = None,
        event: _Filter = None,
        order: int = 0,
        name: str | None = None,
    ) -> Callable[[_F], _F]: ...
    def pre_transition(
        self,
        fn_or_states: Any = None,
        /,
        *,
        to: _Filter = None,
        source: _Filter = None,
        event: _Filter = None,
        order: int = 0,
        name: str | None = None,
    ) -> Any:
        """Register a hook that may enrich the payload: it returns a mapping of
        additions, or None. Runs first, before guards."""
        return self._register("pre_transition", fn_or_states, "to", to, source, event, order, name)

    @overload
    def guard(self, fn: _F, /) -> _F: ...
    @overload
    def guard(
        self,
        states: _Filter = None,
        /,
        *,
        to: _Filter = None,
        source: _Filter = None,
        event: _Filter = None,
        order: int = 0,
        name: str | None = None,
    ) -> Callable[[_F], _F]: ...
    def guard(
        self,
        fn_or_states: Any = None,
        /,
        *,
        to: _Filter = None,
        source: _Filter = None,
        event: _Filter = None,
        order: int = 0,
        name: str | None = None,
    ) -> Any:
        """Register a guard (validator). It vetoes by returning ``False`` or by
        raising `Reject` with a reason; anything else lets the move go on."""
        return self._register("guard", fn_or_states, "to", to, source, event, order, name)

    validator = guard

    @overload
    def on_exit(self, fn: _F, /) -> _F: ...
    @overload
    def on_exit(
        self,
        states: _Filter = None,
        /,
        *,
        to: _Filter = None,
        source: _Filter = None,
        event: _Filter = None,
        order: int = 0,
        name: str | None = None,
    ) -> Callable[[_F], _F]: ...
    def on_exit(
        self,
        fn_or_states: Any = None,
        /,
        *,
        to: _Filter = None,
        source: _Filter = None,
        event: _Filter = None,
        order: int = 0,
        name: str | None = None,
    ) -> Any:
        """Register a hook run when leaving a state. It may return a mapping of
        changes to the machine's data, or veto like a guard."""
        return self._register("exit", fn_or_states, "source", to, source, event, order, name)

    @overload
    def on_enter(self, fn: _F, /) -> _F: ...
    @overload
    def on_enter(
        self,
        states: _Filter = None,
        /,
        *,
        to: _Filter = None,
        source: _Filter = None,
        event: _Filter = None,
        order: int = 0,
        name: str | None = None,
    ) -> Callable[[_F], _F]: ...
    def on_enter(
        self,
        fn_or_states: Any = None,
        /,
        *,
        to: _Filter = None,
        source: _Filter = None,
        event: _Filter = None,
        order: int = 0,
        name: str | None = None,
    ) -> Any:
        """Register a hook run when entering a state. It may return a mapping of
        changes to the machine's data, or veto like a guard."""
        return self._register("enter", fn_or_states, "to", to, source, event, order, name)

    @overload
    def after_commit(self, fn: _F, /) -> _F: ...
    @overload
    def after_commit(
        self,
        states: _Filter = None,
        /,
        *,
        to: _Filter = None,
        source: _Filter = None,
        event: _Filter = None,
        order: int = 0,
        name: str | None = None,
    ) -> Callable[[_F], _F]: ...
    def after_commit(
        self,
        fn_or_states: Any = None,
        /,
        *,
        to: _Filter = None,
        source: _Filter = None,
        event: _Filter = None,
        order: int = 0,
        name: str | None = None,
    ) -> Any:
        """Register a hook run once the move is committed: for side effects. It
        cannot undo the commit; its errors are reported, not raised to the caller."""
        return self._register("after_commit", fn_or_states, "to", to, source, event, order, name)

    def event(
        self, name: str, source: str | Iterable[str] | None = None, target: str | None = None
    ) -> Callable[[_F], _F]:
        """Register the effect of an event: a function run between the exit and enter
        hooks that may return a mapping of changes to the machine's data.

        With ``source`` and ``target`` the event is defined here as well;
        without them it must already be defined in ``events``::

            @cats.event("survive", "unknown", "alive")
            def survive(ctx):
                return {"can_meow": True}
        """

        def register(fn: _F) -> _F:
            if source is None and target is None:
                if name in self._effects:
                    raise MachineDefinitionError(
                        f"event {name!r} already has an effect", event=name
                    )
                self._effects[name] = fn
            elif source is None or target is None:
                raise MachineDefinitionError(
                    f"event {name!r}: give both source and target, or neither", event=name
                )
            else:
                sources = _names(source, f"event {name!r} sources")
                assert sources is not None
                self._extra_events.append(Event(name, sources, target, fn))
            return fn

        return register
