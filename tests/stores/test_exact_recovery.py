"""Recovery from a durable store gives back exactly what was acknowledged.

Equal is not enough: ``True`` stays ``True`` (not ``1``), ``-0.0`` keeps its sign, a
datetime keeps its timezone, a dict its key order. And a value as deep as a value may
be (MAX_DEPTH) is stored and recovered by every kind of actor, while a deeper one is
refused when it is set, without crashing the actor. Each case writes with one
runtime, shuts it down, and reads back with a fresh one from the same file.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from support import TOGGLE, assert_identical
from twins import BASE_TWINS, ORDER_TWINS, UTC_PLUS_2, twins

from stateward.actors import ConfigManager, Runtime, SQLiteStore, StateMachine, StateManager
from stateward.core import MAX_DEPTH, ImmutableState, MachineBuilder, UnencodableValueError

#: Large enough that recovery replays the journal rather than reading a snapshot.
JOURNAL_ONLY = 1000


def recovered_state(path: Path) -> ImmutableState:
    with Runtime("read", store=SQLiteStore(path)) as runtime:
        return StateManager({}, name="m", runtime=runtime).get_state()


def acknowledge(path: Path, first: Any, then: Any, durability: str = "strict") -> ImmutableState:
    store = SQLiteStore(path, durability=durability, snapshot_every=JOURNAL_ONLY)  # type: ignore[arg-type]
    with Runtime("write", store=store) as runtime:
        manager = StateManager({"x": first, "other": 1}, name="m", runtime=runtime)
        manager.update_state({"x": then})
        return manager.get_state()


def test_the_issues_examples_come_back_as_acknowledged(tmp_path: Path) -> None:
    at = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
    path = tmp_path / "store.db"
    store = SQLiteStore(path, snapshot_every=JOURNAL_ONLY)
    with Runtime("write", store=store) as runtime:
        manager = StateManager(
            {"at": at, "cfg": {"flag": 1}, "zero": 0.0}, name="m", runtime=runtime
        )
        manager.update_state({"at": at.astimezone(UTC_PLUS_2), "cfg": {"flag": True}, "zero": -0.0})
        acknowledged = manager.get_state()
    back = recovered_state(path)
    assert_identical(back, acknowledged)
    assert back["at"].utcoffset() == dt.timedelta(hours=2)
    assert back["cfg"]["flag"] is True


@pytest.mark.parametrize("durability", ["strict", "batched"])
@pytest.mark.parametrize(("a", "b"), BASE_TWINS + ORDER_TWINS)
def test_an_equal_twin_written_over_a_value_is_recovered(
    tmp_path: Path, durability: str, a: Any, b: Any
) -> None:
    path = tmp_path / "store.db"
    acknowledged = acknowledge(path, {"nested": [a]}, {"nested": [b]}, durability)
    assert_identical(recovered_state(path), acknowledged)


@settings(max_examples=25, deadline=None, database=None)
@given(pair=twins())
def test_any_equal_twin_is_recovered_as_acknowledged(pair: tuple[Any, Any]) -> None:
    a, b = pair
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "store.db"
        acknowledged = acknowledge(path, a, b)
        assert_identical(recovered_state(path), acknowledged)


def test_a_config_change_to_an_equal_twin_is_recovered(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    at = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
    store = SQLiteStore(path, snapshot_every=JOURNAL_ONLY)
    with Runtime("write", store=store) as runtime:
        config = ConfigManager({"limit": 1, "at": at}, name="c", runtime=runtime)
        config.update_config({"limit": True, "at": at.astimezone(UTC_PLUS_2)})
        config.rollback(0)
        acknowledged = config.get_history()
    with Runtime("read", store=SQLiteStore(path)) as runtime:
        history = ConfigManager({}, name="c", runtime=runtime).get_history()
    assert len(history) == len(acknowledged) == 3
    for mine, theirs in zip(history, acknowledged, strict=True):
        assert_identical(mine.config, theirs.config)
        assert_identical(mine.changes, theirs.changes)
    assert "limit" in history[-1].changes  # the rollback from True to 1 is a change


# -- the nesting limit through a store ---------------------------------------------------------


def deep(levels: int) -> Any:
    value: Any = dt.datetime(2026, 1, 1, tzinfo=UTC_PLUS_2)
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.parametrize("snapshot_every", [1, JOURNAL_ONLY])
def test_every_kind_of_actor_stores_and_recovers_a_value_at_the_limit(
    tmp_path: Path, snapshot_every: int
) -> None:
    path = tmp_path / "store.db"
    at_limit = deep(MAX_DEPTH - 1)  # the state holding it makes MAX_DEPTH
    flow = MachineBuilder("a", TOGGLE)

    @flow.on_enter("b")
    def keep(ctx: Any) -> Any:
        return {"x": ctx.payload["x"], "n": ctx.version}

    spec = flow.build()
    with Runtime("write", store=SQLiteStore(path, snapshot_every=snapshot_every)) as runtime:
        manager = StateManager({"x": at_limit}, name="m", runtime=runtime)
        manager.update_state({"x": at_limit, "n": 1})
        config = ConfigManager({"x": at_limit}, name="c", runtime=runtime)
        config.update_config({"x": at_limit, "n": 1})
        machine = StateMachine(spec, name="s", runtime=runtime, data={"x": at_limit})
        machine.transition("b", {"x": at_limit})
        acknowledged = (manager.get_state(), config.get_history(), machine.snapshot)
    with Runtime("read", store=SQLiteStore(path)) as runtime:
        recovered = (
            StateManager({}, name="m", runtime=runtime).get_state(),
            ConfigManager({}, name="c", runtime=runtime).get_history(),
            StateMachine(spec, name="s", runtime=runtime).snapshot,
        )
    assert_identical(recovered[0], acknowledged[0])
    for mine, theirs in zip(recovered[1], acknowledged[1], strict=True):
        assert_identical(mine.config, theirs.config)
    assert_identical(recovered[2].data, acknowledged[2].data)
    assert recovered[2].state == "b"


def test_a_value_past_the_limit_is_refused_and_the_actor_carries_on(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with Runtime("write", store=SQLiteStore(path)) as runtime:
        manager = StateManager({"n": 0}, name="m", runtime=runtime, on_error="restart")
        with pytest.raises(UnencodableValueError) as caught:
            manager.update_state({"x": deep(MAX_DEPTH)})
        assert caught.value.path.startswith("changes.x.a.a")
        manager.update_state({"n": 1})
        assert manager.restarts == 0
        assert manager.get_state() == {"n": 1}
    assert recovered_state(path) == {"n": 1}
