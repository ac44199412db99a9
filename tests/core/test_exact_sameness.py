""" "Unchanged" means the same value, not an equal one: types, signs, timezones and order.

Journal deltas, config rollbacks and config diffs decide what changed. Deciding it
with ``==`` drops a change from ``1`` to ``True``, from ``0.0`` to ``-0.0`` or from
a datetime to the same instant in another timezone, so recovery gave back a value
other than the one acknowledged. Here the pure delta functions are checked over
hypothesis-drawn pairs of equal twins; tests/stores/test_exact_recovery.py checks
the same through a durable store and a restart.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from support import assert_identical
from twins import BASE_TWINS, twins

from stateward.core import (
    ConfigDiff,
    ConfigHistory,
    ImmutableState,
    MachineBuilder,
    MachineCodec,
    MachineSnapshot,
    ManagerCodec,
    StoreSnapshot,
    apply_transition,
)
from stateward.core._codec import decode_record, encode_checked
from stateward.core._same import same

EXAMPLES = settings(max_examples=150, deadline=None, database=None)


def through_a_record(delta: Any) -> Any:
    """The delta as a store writes and reads it back."""
    return decode_record(encode_checked(("name", "kind", 1, 1, delta)))[4]


@EXAMPLES
@given(pair=twins())
def test_equal_twins_are_not_the_same_value(pair: tuple[Any, Any]) -> None:
    a, b = pair
    assert a == b
    assert not same(a, b)
    assert not same(b, a)
    assert same(a, a)
    assert same(b, b)


def test_same_compares_what_the_codec_keeps() -> None:
    nan = float("nan")
    assert same(nan, nan)
    assert same([1, {"a": (2.5, "x")}], [1, {"a": (2.5, "x")}])
    assert same(ImmutableState(a=[1]), ImmutableState(a=[1]))
    assert not same([1], (1,))
    assert not same([1], [1, 2])
    assert not same({"a": 1}, {"b": 1})
    assert not same({1}, {2})
    naive = dt.datetime(2026, 10, 25, 2, 30)
    assert not same(naive, naive.replace(fold=1))  # equal, but fold is kept
    assert same(naive, dt.datetime(2026, 10, 25, 2, 30))


@EXAMPLES
@given(pair=twins())
def test_a_state_delta_gives_back_exactly_the_new_value(pair: tuple[Any, Any]) -> None:
    a, b = pair
    codec = ManagerCodec()
    old = StoreSnapshot(ImmutableState(x=a, other=1), 1)
    new = old.update({"x": b})
    delta = through_a_record(codec.delta(old, new))
    assert_identical(codec.apply(old, delta).state, new.state)


@EXAMPLES
@given(pair=twins())
def test_a_machine_delta_gives_back_exactly_the_new_data(pair: tuple[Any, Any]) -> None:
    a, b = pair
    flow = MachineBuilder("idle", {"idle": ["busy"], "busy": ["idle"]})

    @flow.on_enter("busy")
    def store(ctx: Any) -> Any:
        return {"x": ctx.payload["x"]}

    spec = flow.build()
    codec = MachineCodec(spec)
    old = MachineSnapshot.initial(spec, {"x": a})
    new = apply_transition(spec, old, "busy", payload={"x": b}).snapshot
    delta = through_a_record(codec.delta(old, new))
    assert_identical(codec.apply(old, delta).data, new.data)


@pytest.mark.parametrize(("a", "b"), BASE_TWINS)
def test_a_config_rollback_records_an_equal_twin_as_a_change(a: Any, b: Any) -> None:
    history = ConfigHistory.start({"x": a}).update({"x": b})
    rolled = history.rollback(0)
    assert "x" in rolled.current.changes
    assert_identical(rolled.current.changes["x"], ImmutableState(x=a)["x"])
    assert_identical(rolled.config["x"], ImmutableState(x=a)["x"])


@EXAMPLES
@given(pair=twins(orders=False))  # a diff is by key path: key order is no path's value
def test_a_config_diff_reports_an_equal_twin_as_changed(pair: tuple[Any, Any]) -> None:
    a, b = pair
    diff = ConfigDiff.between({"x": a}, {"x": b})
    assert diff, "an equal twin is a change"
    (path,) = diff.changed
    assert path.startswith("x")
    old, new = diff.changed[path]
    assert old == new
    assert not same(old, new)
