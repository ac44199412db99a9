"""The hook methods of a chart class, found by name in every class body.

``on_enter_<state>``, ``on_exit_<state>``, ``prepare_<event>``,
``before_<event>``, ``on_<event>`` and ``after_<event>`` (see `StateChart`):
a method names a state or an event declared in its own class body or in a
nested state's body inside it. `chart_hooks` turns them into the spec's
`Hook` objects; `effect_of` finds a move's ``on_<event>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._chart_read import PREFIXES as _PREFIXES
from ._chart_read import ChartReader
from ._chart_states import State, Transitions
from ._chart_tree import Body, HistoryState
from ._parts import Hook

__all__ = ["HookMethod", "chart_hooks", "effect_of", "hook_methods"]


@dataclass(frozen=True, slots=True)
class HookMethod:
    """A hook method found by name: its prefix, the state attribute or event
    it names, the bound method, a label, what it names and the body it is in."""

    prefix: str
    rest: str
    fn: Any
    label: str
    named: State | str
    body: Body


def _named(chart: ChartReader, body: Body, kind: str, rest: str, attr: str) -> State | str:
    """What a hook method of ``body`` names: a state (of the body, else the
    one state of that attribute inside it) or an event (declared in it or
    inside it)."""
    where = body.subtree()
    if kind == "event":
        if any(rest in b.events for b in where):
            return rest
        names = dict.fromkeys(e for b in where for e in b.events)
    else:
        if rest in body.states:
            return body.states[rest]
        found = [b.states[rest] for b in where if rest in b.states]
        if len(found) == 1:
            return found[0]
        if found:
            raise chart.error(
                f"method {attr!r}: {len(found)} states inside {body.label} have the "
                f"attribute {rest!r}; write the hook in the class that declares the one "
                "meant",
                state=rest,
            )
        names = dict.fromkeys(a for b in where for a in b.states)
    places = "this chart" if body.owner is None else body.label
    raise chart.error(
        f"method {attr!r} is named like a hook of the {kind} {rest!r}, which "
        f"{places} does not declare ({kind}s: {', '.join(names) or 'none'}); "
        "rename it if it is not a hook",
        **{kind: rest},
    )


def hook_methods(chart: ChartReader, instance: object) -> list[HookMethod]:
    """The hook methods of every body, found by name."""
    found: list[HookMethod] = []
    for body in chart.bodies:
        if body.owner is None:
            attrs = dict.fromkeys(a for klass in chart.cls.__mro__ for a in vars(klass))
            where = f"{chart.cls.__qualname__}."
        else:
            attrs = dict.fromkeys(body.attributes)
            where = f"{body.owner.qualname}."
        for attr in attrs:
            prefix = next((p for p, _ in _PREFIXES if attr.startswith(p)), None)
            if prefix is None:
                continue
            if body.owner is None:
                if not callable(getattr(chart.cls, attr, None)):
                    continue
                fn = getattr(instance, attr)
            else:
                value = body.attributes[attr]
                if not callable(value) or isinstance(value, State | Transitions):
                    continue
                fn = value.__get__(instance, type(instance)) if hasattr(value, "__get__") else value
            rest = attr[len(prefix) :]
            named = _named(chart, body, dict(_PREFIXES)[prefix], rest, attr)
            if isinstance(named, HistoryState):
                raise chart.error(
                    f"method {attr!r}: history state {rest!r} is never entered or left "
                    "(it is only a target); hook its parent's children instead",
                    state=rest,
                )
            fn = chart.check_signature(fn, f"hook method {attr!r}", None)
            found.append(HookMethod(prefix, rest, fn, where + attr, named, body))
    return found


def chart_hooks(chart: ChartReader, methods: list[HookMethod]) -> list[Hook]:
    hooks: list[Hook] = []
    for m in methods:
        state = chart.names[id(m.named)] if isinstance(m.named, State) else ""
        if m.prefix == "on_enter_":
            hooks.append(Hook("enter", m.fn, m.label, to=frozenset({state})))
        elif m.prefix == "on_exit_":
            hooks.append(Hook("exit", m.fn, m.label, source=frozenset({state})))
        elif m.prefix == "prepare_":
            hooks.append(
                Hook("pre_transition", m.fn, m.label, event=frozenset({chart.event_names[m.rest]}))
            )
        elif m.prefix == "before_":
            # Before the state's exit hooks: the exit stage runs them by order.
            hooks.append(
                Hook("exit", m.fn, m.label, event=frozenset({chart.event_names[m.rest]}), order=-1)
            )
        elif m.prefix == "after_":
            hooks.append(
                Hook("after_commit", m.fn, m.label, event=frozenset({chart.event_names[m.rest]}))
            )
    return hooks


def effect_of(
    chart: ChartReader, effects: dict[tuple[int, str], HookMethod], body: Body, event: str
) -> Any:
    """The ``on_<event>`` method for a move of ``event`` declared in ``body``:
    written in that body or in one around it (at most one of them)."""
    found = [effects[(id(b), event)] for b in body.path() if (id(b), event) in effects]
    if len(found) > 1:
        raise chart.error(
            f"event {event!r}: {found[0].label} and {found[1].label} are both its effect "
            "for the same moves; keep one",
            event=event,
        )
    return found[0].fn if found else None
