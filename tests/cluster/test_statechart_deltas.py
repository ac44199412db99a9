"""A statechart's snapshot travels back from a shard with its configuration
(nothing here starts Ray): shrunk against the one its client holds and
rebuilt equal, configuration and history memory included."""

from __future__ import annotations

import datetime as dt

from stateward.actors.ray._delta import grow, held_of, shrink
from stateward.core import MachineSpec, apply_creation, apply_transition

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SPEC = MachineSpec(
    "off",
    events={"power": "off -> on", "off": "on -> off", "work": "idle -> busy"},
    compound={"on": ["idle", "busy"]},
    history={"on_h": "on"},
    history_limit=5,
)


def test_a_statecharts_snapshot_is_rebuilt_with_its_configuration() -> None:
    snapshots = [apply_creation(SPEC, machine="m").snapshot]
    for i, event in enumerate(["power", "work", "off", "power"]):
        at = START + dt.timedelta(seconds=i + 1)
        moved = apply_transition(SPEC, snapshots[-1], event=event, clock=lambda at=at: at)
        snapshots.append(moved.snapshot)
    for i, base in enumerate(snapshots):
        for later in snapshots[i:]:
            done = shrink(later, held_of(base))  # type: ignore[arg-type]
            assert done is not None
            rebuilt = grow(base, done[0])
            assert rebuilt == later and rebuilt.configuration == later.configuration
            assert rebuilt.chart == later.chart


def test_a_flat_machines_shrunk_snapshot_keeps_its_form() -> None:
    spec = MachineSpec("a", {"a": ["a"]}, history_limit=5)
    first = apply_creation(spec, machine="m").snapshot
    moved = apply_transition(spec, first, "a").snapshot
    done = shrink(moved, held_of(first))  # type: ignore[arg-type]
    assert done is not None and len(done[0]) == 5


def test_pending_timers_travel_back_with_the_snapshot_flat_or_statechart() -> None:
    flat = MachineSpec(
        "off",
        events={"power": "off -> on", "expire": "on -> off"},
        timeouts={"on": (60, "expire")},
        history_limit=5,
    )
    chart = MachineSpec(
        "off",
        events={"power": "off -> on", "expire": "on -> off", "work": "idle -> busy"},
        compound={"on": ["idle", "busy"]},
        timeouts={"on": (60, "expire")},
        history_limit=5,
    )
    for spec in (flat, chart):
        first = apply_creation(spec, machine="m").snapshot
        on = apply_transition(spec, first, event="power", clock=lambda: START).snapshot
        assert on.timers
        done = shrink(on, held_of(first))  # type: ignore[arg-type]
        assert done is not None
        rebuilt = grow(first, done[0])
        assert rebuilt == on and rebuilt.timers == on.timers
