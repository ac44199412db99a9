"""Statecharts bound to database rows: a compound machine's row holds its active
leaf and moves defined on a parent apply from it; a machine with parallel
regions is refused when it is bound."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from stateward.actors.rows import ParallelStatesUnbindable, RowBinding, RowMachines
from stateward.core import InvalidTransition, MachineBuilder, MachineSpec, StatewardError

Databases = Any
MachinesFactory = Callable[..., RowMachines]

EVENTS = {
    "pay": "pending -> paid",
    "pick": "paid -> picking",
    "pack": "picking -> packed",
    "cancel": "open -> cancelled",
    "ship": "packed -> shipped",
}
COMPOUND = {"open": ["pending", "fulfilment"], "fulfilment": ["paid", "picking", "packed"]}


def compound_orders(calls: list[str]) -> MachineBuilder:
    builder = MachineBuilder(
        "open", events=EVENTS, compound=COMPOUND, states=["cancelled", "shipped"], name="orders"
    )
    for state in ("open", "pending", "fulfilment", "paid", "cancelled"):
        builder.on_exit(state)(lambda ctx, s=state: calls.append(f"exit {s}"))
        builder.on_enter(state)(lambda ctx, s=state: calls.append(f"enter {s}"))
    return builder


def test_a_compound_machine_binds_by_its_active_leaf(
    machines: MachinesFactory, engines: Databases
) -> None:
    calls: list[str] = []
    rows = machines(compound_orders(calls))
    created = rows.create({"amount": 5.0})
    assert created.state == "pending"  # the initial compound state's initial leaf
    assert engines.row(created.key)["status"] == "pending"
    assert calls == ["enter open", "enter pending"]
    rows.trigger(created.key, "pay")
    assert engines.row(created.key)["status"] == "paid"
    calls.clear()
    # "cancel" is defined on "open": it applies from the leaf the row holds
    result = rows.trigger(created.key, "cancel")
    assert result.state == "cancelled" and engines.row(created.key)["status"] == "cancelled"
    assert calls == ["exit paid", "exit fulfilment", "exit open", "enter cancelled"]
    assert result.record is not None
    assert result.record.configuration_before == {"open", "fulfilment", "paid"}
    with pytest.raises(InvalidTransition):
        rows.trigger(created.key, "pay")


def test_a_machine_with_parallel_regions_is_refused_when_bound(
    sqlite_db: Databases, runtime: Any, order_model: Any
) -> None:
    spec = MachineSpec(
        "running",
        events={"a": "a1 -> a2", "b": "b1 -> b2"},
        compound={"left": ["a1", "a2"], "right": ["b1", "b2"]},
        parallel={"running": ["left", "right"]},
    )
    with pytest.raises(
        ParallelStatesUnbindable, match="parallel states \\('running'\\)"
    ) as refused:
        RowMachines(spec, RowBinding(order_model), sqlite_db.engine, runtime=runtime)
    assert isinstance(refused.value, StatewardError) and isinstance(refused.value, ValueError)
    assert "compound states are fine" in str(refused.value)
