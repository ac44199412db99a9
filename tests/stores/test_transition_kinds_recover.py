"""A machine recovered from a durable store keeps what each history record says
about how the move was made: internal, self or external (the journal and the
snapshots carry the internal flag)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stateward.actors import Runtime, SQLiteStore, StateMachine

EVENTS = {
    "poke": {"move": "idle -> idle", "internal": True},
    "restart": "idle -> idle",
    "start": "idle -> busy",
}
STATES = {"idle": [], "busy": []}


@pytest.mark.parametrize("snapshot_every", [1, 1000], ids=["from-snapshots", "from-the-journal"])
def test_internal_self_and_external_records_survive_recovery(
    tmp_path: Path, snapshot_every: int
) -> None:
    path = tmp_path / "kinds.db"
    with Runtime("first", store=SQLiteStore(path, snapshot_every=snapshot_every)) as rt:
        m = StateMachine("idle", STATES, events=EVENTS, name="m", runtime=rt)
        for event in ("poke", "restart", "poke", "start"):
            m.trigger(event)
        before = [(r.version, r.event, r.kind) for r in m.history]
    assert [kind for _, _, kind in before] == ["internal", "self", "internal", "external"]
    with Runtime("second", store=SQLiteStore(path, snapshot_every=snapshot_every)) as rt:
        m = StateMachine("idle", STATES, events=EVENTS, name="m", runtime=rt)
        assert m.recovered
        assert [(r.version, r.event, r.kind) for r in m.history] == before
