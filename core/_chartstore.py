"""What a statechart stores besides a flat machine's, and the check on reading it.

A statechart's snapshot document has ``configuration`` (and ``memory`` once a
history state remembers something: see `MachineSnapshot.to_state`); its
journal deltas `chart_delta` under ``chart`` in their optional fourth item, a
dict (`MachineCodec.delta`; a delta written before timers has it as the item
itself). A flat machine writes neither, so what it writes is what it always
wrote. `fit_chart` checks what was read
against the definition it is recovered with.
"""

from __future__ import annotations

from typing import Any

from ._chart import ChartState
from ._snapshot import MachineSnapshot
from ._spec import MachineSpec

__all__ = ["chart_delta", "chart_from_delta", "fit_chart"]


def chart_delta(chart: ChartState) -> tuple[Any, ...]:
    """The configuration and memory after a commit, encodable."""
    return (tuple(sorted(chart.configuration)), chart.memory)


def chart_from_delta(value: Any) -> ChartState:
    active, memory = value
    return ChartState(frozenset(active), tuple((str(h), tuple(s)) for h, s in memory))


def fit_chart(spec: MachineSpec, snapshot: MachineSnapshot) -> MachineSnapshot | str:
    """``snapshot`` as a machine of ``spec``, or what does not fit (for a
    `DefinitionMismatch`): a stored configuration or memory that does not fit
    ``spec``'s tree, or a statechart's stored for a flat spec. A flat
    machine's snapshot read into a statechart gets the configuration its state
    implies (the state and the states it is inside, when that is all of it)."""
    chart = spec._chart
    stored = snapshot.chart
    if chart is None:
        if stored is not None and stored.configuration != {snapshot.state}:
            return (
                f"it was stored by a statechart (active: {_listed(stored.configuration)}) "
                "and the definition has no compound or parallel states"
            )
        return snapshot if stored is None else _replace_chart(snapshot, None)
    if stored is None:
        active = chart.implied(snapshot.state)
        if chart.current(active) != snapshot.state:
            return (
                f"it was stored in state {snapshot.state!r} without a configuration, and "
                "in this definition that state is not all that would be active"
            )
        return _replace_chart(snapshot, ChartState(active))
    problem = chart.problem(stored.configuration)
    if problem is None and chart.current(stored.configuration) != snapshot.state:
        problem = f"its state {snapshot.state!r} is not the configuration's current state"
    for history, states in stored.memory:
        if problem is not None:
            break
        if history not in chart.history:
            problem = f"it remembers history state {history!r}, which the definition lacks"
        elif any(
            s not in chart.parent or not chart.is_below(s, chart.history[history][0])
            for s in states
        ):
            problem = f"history state {history!r} remembers states not inside its parent"
    if problem is not None:
        return f"its stored configuration ({_listed(stored.configuration)}) does not fit: {problem}"
    return snapshot


def _replace_chart(snapshot: MachineSnapshot, chart: ChartState | None) -> MachineSnapshot:
    return MachineSnapshot(
        snapshot.state, snapshot.version, snapshot.data, snapshot.history, chart, snapshot.timers
    )


def _listed(states: frozenset[str]) -> str:
    return ", ".join(map(repr, sorted(states)))
