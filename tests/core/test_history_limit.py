"""A machine's history keeps its last records up to the spec's history_limit,
and a longer history (from a larger limit, or built by hand) is cut on the next move."""

from __future__ import annotations

import pytest
from support import BOTH, DRIVERS, T0, TOGGLE

from stateward.core import ImmutableState, MachineBuilder, MachineSnapshot, TransitionRecord


@pytest.mark.parametrize("driver", list(DRIVERS))
@pytest.mark.parametrize("limit", [0, 1, 2, 100])
def test_history_keeps_the_last_records_up_to_the_limit(limit: int, driver: str) -> None:
    spec = MachineBuilder("a", TOGGLE, history_limit=limit).build()
    snap = MachineSnapshot.initial(spec)
    records: list[TransitionRecord] = []
    for step in range(1, 151):
        target = "b" if snap.state == "a" else "a"
        out = DRIVERS[driver](spec, snap, target=target)
        snap = out.snapshot
        records.append(out.record)
        kept = records[-limit:] if limit else []
        assert list(snap.history) == kept, step
        assert len(snap.history) == min(limit, step)
    assert [r.version for r in snap.history] == list(range(151 - limit, 151))[:limit]


@pytest.mark.parametrize("driver", BOTH)
@pytest.mark.parametrize("limit", [0, 1, 2, 100])
def test_a_longer_history_than_the_limit_is_cut_on_the_next_move(limit: int, driver: str) -> None:
    """A snapshot kept under a larger limit (or built by hand) is trimmed, oldest first."""
    spec = MachineBuilder("a", TOGGLE, history_limit=limit).build()
    old = tuple(
        TransitionRecord(v, "a" if v % 2 else "b", "b" if v % 2 else "a", None, T0)
        for v in range(1, 121)
    )
    snap = MachineSnapshot("a", 120, ImmutableState(), old)
    out = DRIVERS[driver](spec, snap, target="b")
    want = [*old, out.record][-limit:] if limit else []
    assert list(out.snapshot.history) == want
    assert out.snapshot.version == 121
    assert list(snap.history) == list(old)
