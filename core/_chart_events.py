"""The class form's moves as `Event` objects: `event_of` checks one declared
move (its sources, target, options, guards and effect) against the chart
`ChartReader` read, and every error it raises names the chart."""

from __future__ import annotations

from typing import Any

from ._chart_read import ChartReader, unknown_options
from ._chart_states import Move, State, describe_move
from ._chart_tree import Body, HistoryState, NestedState
from ._events import Event

__all__ = ["event_of"]


def _conditions(
    chart: ChartReader, instance: object, value: object, what: str, event: str, body: Body
) -> Any:
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
    return tuple(chart.function(instance, item, what, event, body) for item in items)


def event_of(
    chart: ChartReader,
    instance: object,
    event: str,
    move: Move,
    effect: Any,
    finals: set[str],
    body: Body,
) -> Event:
    """The `Event` of one move declared in ``body``: ``from_.any()`` means
    every state of that body that is not final (inside a nested state: its
    children)."""
    written = describe_move(move)
    if move.unknown:
        raise chart.error(
            f"event {event!r}: {written}: {unknown_options(move.unknown)}", event=event
        )
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
    history = [s for s in move.sources or () if isinstance(s, HistoryState)]
    if history:
        raise chart.error(
            f"event {event!r}: {written} leaves the history state {history[0].label!r}; "
            "a history state is only a target (a machine is never in it)",
            state=history[0].label,
            event=event,
        )
    target = chart.name_of(move.target, event)
    if move.sources is None:
        sources = frozenset(
            name
            for name in (chart.names[id(s)] for s in body.states.values())
            if name not in finals and name not in chart.history_names
        )
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
    inside = (
        isinstance(move.sources, tuple)
        and len(move.sources) == 1
        and _contains(move.sources[0], move.target)
    )
    if move.internal and sources != {target} and not inside:
        raise chart.error(
            f"event {event!r}: {written} cannot be internal: an internal transition "
            f"stays in its state (or goes to a state inside it); write "
            f"{target}.to.itself(internal=True)",
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
        effect = chart.function(instance, move.on, "on=", event, body)
    return Event(
        event,
        sources,
        target,
        effect,
        _conditions(chart, instance, move.cond, "cond=", event, body),
        _conditions(chart, instance, move.unless, "unless=", event, body),
        move.internal,
    )


def _contains(outer: object, state: object) -> bool:
    """Whether ``state`` is declared inside the nested state ``outer``, at any depth."""
    if not isinstance(outer, NestedState):
        return False
    return any(v is state or _contains(v, state) for v in outer.body.values())
