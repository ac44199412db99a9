"""Machine definitions: `MachineSpec` (immutable, validated) and `MachineBuilder`.

A machine is a set of states, one initial state, the allowed moves between
states, optional named events, and hooks. Moves come from the mapping form
``{state: [allowed next states]}``, from events (``"pay": "pending -> paid"``),
or both; an event's move is allowed even if the mapping leaves it out.

Hooks run in this order for one transition (see `apply_transition`)::

    pre_transition -> guard -> exit(old) -> event effect -> enter(new) -> commit -> after_commit

Every hook takes one argument, a `TransitionContext`, and may be a plain
function or a coroutine function.

The parts a spec is made of (hooks and their checks) are in `_parts`, events
and their alternatives in `_events`, the move tables a spec is read from in
`_spec_tables`; the
decorators `MachineBuilder` registers hooks with are in `_decorators`. The
builder itself stays here, beside the spec: it builds one, and
`MachineSpec.to_builder` turns a spec back into one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ._chart import Chart
from ._chartdef import TreeQueries
from ._decorators import Decorators
from ._errors import MachineDefinitionError
from ._events import (
    Event,
    parse_events,
    plan_move,
)
from ._parts import (
    ANY,
    Hook,
    HookKind,
    MovePlan,
    ReadOnlyTable,
)
from ._spec_tables import awaits, hooks_by_kind, move_tables
from ._timers import StateTimeout, parse_timeouts, timeouts_form

__all__ = ["ANY", "Event", "Hook", "HookKind", "MachineBuilder", "MachineSpec", "MovePlan"]


class MachineSpec(TreeQueries):
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
        compound: nested states, ``{parent: [children]}`` in document order (the
            first child is the initial one) or ``{parent: {"initial": child,
            "states": [...]}}``; see docs/statecharts.md.
        parallel: orthogonal regions, ``{parent: [regions]}``, all active together.
        history: history pseudo-states, ``{name: parent}`` (shallow) or
            ``{name: (parent, "deep")}``.
        timeouts: state timeouts, ``{state: (seconds, event)}`` (or
            ``(seconds, event, payload)``, or ``{"after": seconds, "event":
            event, "payload": {...}}``): ``seconds`` after the state is
            entered, the event fires unless the state was left meanwhile
            (see docs/statecharts.md, "Timers"). The spec's ``timeouts``
            attribute holds them as `StateTimeout` values, by state.

    Raises:
        MachineDefinitionError: the definition cannot work (no or unknown initial
            state, unknown target, duplicate or ambiguous event, hook on an
            unknown state or event, a timeout on an unknown state, of an
            unknown event or one that cannot fire from its state, or whose
            seconds are not a finite number > 0). The message names the culprit.
    """

    __slots__ = (
        "_allowed",
        "_awaits",
        "_chart",
        "_chart_moves",
        "_event_table",
        "_events_from",
        "_events_to",
        "_hooks_by_kind",
        "_moves",
        "_plans",
        "_tree",
        "events",
        "history_limit",
        "hooks",
        "initial",
        "name",
        "states",
        "timeouts",
        "transitions",
    )

    initial: str
    states: tuple[str, ...]
    transitions: Mapping[str, tuple[str, ...]]
    events: tuple[Event, ...]
    hooks: tuple[Hook, ...]
    history_limit: int
    name: str | None
    timeouts: Mapping[str, StateTimeout]
    _allowed: dict[str, frozenset[str]]
    _awaits: bool
    _event_table: dict[tuple[str, str], tuple[Event, ...]]
    _events_from: dict[str, tuple[str, ...]]
    _hooks_by_kind: dict[str, tuple[Hook, ...]]
    _plans: dict[tuple[str | None, str, str | None, Event | None], MovePlan]
    #: checked moves, by (source, target or None, event or None) as requested
    _moves: dict[tuple[str, str | None, str | None], tuple[str, str | None, MovePlan]]
    _events_to: dict[tuple[str, str], tuple[str, ...]]
    #: the state tree of a hierarchical spec (None: a flat machine)
    _chart: Chart | None
    #: checked moves of a hierarchical spec, by configuration and request
    _chart_moves: dict[Any, Any]
    #: the keywords the tree was given, for `to_builder`
    _tree: tuple[Any, Any, Any]

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
        compound: Mapping[str, Any] | None = None,
        parallel: Mapping[str, Any] | None = None,
        history: Mapping[str, Any] | None = None,
        timeouts: Mapping[str, Any] | None = None,
    ) -> None:
        event_list = parse_events(events)
        hook_list = list(hooks)
        ordered, chart, table, event_table, allowed, events_from, events_to = move_tables(
            initial, transitions, states, event_list, hook_list, compound, parallel, history
        )
        if (
            not isinstance(history_limit, int)
            or isinstance(history_limit, bool)
            or history_limit < 0
        ):
            raise MachineDefinitionError(
                f"history_limit must be an int >= 0 (0 keeps no history), got {history_limit!r}"
            )
        state_timeouts = parse_timeouts(
            timeouts,
            ordered,
            lambda ev_name, state: (ev_name, state) in event_table,
            lambda ev_name: any(ev.name == ev_name for ev in event_list),
        )
        by_kind = hooks_by_kind(hook_list)
        put = object.__setattr__
        put(self, "initial", initial)
        put(self, "states", tuple(ordered))
        put(self, "transitions", ReadOnlyTable(table))
        put(self, "events", tuple(event_list))
        put(self, "hooks", tuple(h for kind in by_kind.values() for h in kind))
        put(self, "history_limit", history_limit)
        put(self, "name", name)
        put(self, "timeouts", MappingProxyType(state_timeouts))
        put(self, "_allowed", allowed)
        put(self, "_event_table", event_table)
        put(self, "_events_from", events_from)
        put(self, "_hooks_by_kind", by_kind)
        put(self, "_plans", {})
        put(self, "_moves", {})
        put(self, "_events_to", events_to)
        put(self, "_chart", chart)
        put(self, "_chart_moves", {})
        put(self, "_tree", (compound, parallel, history))
        put(self, "_awaits", awaits(self.hooks, event_list))

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
        """The event ``name`` as it fires from ``state`` (its first alternative
        when it has several: see `alternatives`), or None if it cannot."""
        alternatives = self._event_table.get((name, state))
        return alternatives[0] if alternatives else None

    def alternatives(self, name: str, state: str) -> tuple[Event, ...]:
        """The alternatives (branches) of event ``name`` from ``state``, in the
        order they are tried; empty if it cannot fire from there."""
        return self._event_table.get((name, state), ())

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

    def plan(
        self, source: str | None, target: str, event: str | None, alternative: Event | None = None
    ) -> MovePlan:
        """Every hook that runs for ``source -> target`` (by ``event``), in run order.

        ``alternative`` is the `Event` that makes the move, when the event has
        several from ``source``; by default the first of them that leads to
        ``target``. Its own guards run before the guard hooks; an internal
        transition runs no exit or enter hook. Computed once per move and kept:
        the spec never changes.
        """
        ev = alternative
        if ev is None and event is not None and source is not None:
            ev = next((a for a in self.alternatives(event, source) if a.target == target), None)
        key = (source, target, event, ev)
        plan = self._plans.get(key)
        if plan is None:
            plan = plan_move(self.hooks_for, source, target, event, ev)
            self._plans[key] = plan  # idempotent: a race computes the same plan twice
        return plan

    def branching_plan(self, source: str, event: str, alternatives: tuple[Event, ...]) -> MovePlan:
        """The plan of the first of ``alternatives``, each linked to the next by
        `MovePlan.otherwise`: the order in which they are tried."""
        plan: MovePlan | None = None
        for ev in reversed(alternatives):
            plan = self.plan(source, ev.target, event, ev)._replace(otherwise=plan)
        assert plan is not None, "no alternatives"
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
        return self._awaits

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
            compound=self._tree[0],
            parallel=self._tree[1],
            history=self._tree[2],
            timeouts=timeouts_form(self.timeouts),
        )
        builder._hooks.extend(self.hooks)
        return builder


@dataclass
class MachineBuilder(Decorators):
    """Collects a machine definition and its hooks; `build` makes the `MachineSpec`.

    Hooks register by decorator, with or without parentheses, in the module that
    defines the machine or in any other module that imports the builder:

    ```python
    orders = MachineBuilder("pending", {"pending": ["paid", "cancelled"],
                                        "paid": ["shipped", "cancelled"],
                                        "shipped": [], "cancelled": []})

    @orders.guard("paid")             # only for moves into "paid"
    def amount_positive(ctx):
        return ctx.payload.get("amount", 0) > 0

    @orders.after_commit              # every committed move
    def notify(ctx): ...

    spec = orders.build()
    ```

    A machine takes the definition as it is when it is created: hooks registered
    later do not reach machines that already exist.
    """

    initial: str | None = None
    transitions: Mapping[str, Iterable[str]] | None = None
    events: Mapping[str, object] | Iterable[Event | str] | None = None
    states: Iterable[str] = ()
    history_limit: int = 100
    name: str | None = None
    compound: Mapping[str, Any] | None = None
    parallel: Mapping[str, Any] | None = None
    history: Mapping[str, Any] | None = None
    timeouts: Mapping[str, Any] | None = None
    _hooks: list[Hook] = field(default_factory=list, repr=False)
    _effects: dict[str, Callable[..., Any]] = field(default_factory=dict, repr=False)
    _extra_events: list[Event] = field(default_factory=list, repr=False)

    def build(self) -> MachineSpec:
        """Validate and freeze the definition.

        Raises:
            MachineDefinitionError: see `MachineSpec`.
        """
        events = parse_events(self.events)
        with_effects = [
            dataclasses.replace(ev, effect=self._effects.get(ev.name, ev.effect)) for ev in events
        ]
        with_effects += [
            ev
            if ev.effect is not None
            else dataclasses.replace(ev, effect=self._effects.get(ev.name))
            for ev in self._extra_events
        ]
        for name in self._effects:
            if not any(ev.name == name for ev in with_effects):
                raise MachineDefinitionError(
                    f"effect registered for unknown event {name!r}", event=name
                )
        return MachineSpec(
            self.initial,
            self.transitions,
            events=with_effects,
            hooks=self._hooks,
            states=self.states,
            history_limit=self.history_limit,
            name=self.name,
            compound=self.compound,
            parallel=self.parallel,
            history=self.history,
            timeouts=self.timeouts,
        )
