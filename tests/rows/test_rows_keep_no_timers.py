"""Machines bound to rows keep their state in a column and no timers: a spec
with state timeouts is refused when bound, a hook's timer refuses its
transition, and nothing is written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from support import ORDER_FLOW_UNTIL_SHIPPED

from stateward.actors.rows import RowMachines
from stateward.core import ArgumentValueError, MachineBuilder, MachineDefinitionError

#: The fixtures' types (conftest.py's Databases and machines factory), for reading only.
Databases = Any
MachinesFactory = Callable[..., RowMachines]


def test_a_spec_with_state_timeouts_is_refused_by_the_row_bindings(
    machines: MachinesFactory,
) -> None:
    builder = MachineBuilder(
        "pending",
        ORDER_FLOW_UNTIL_SHIPPED,
        events={"expire": "pending -> cancelled"},
        timeouts={"pending": (1800, "expire")},
    )
    with pytest.raises(MachineDefinitionError, match="no timers"):
        machines(builder)


def test_a_hook_that_asks_for_a_timer_refuses_the_row_transition_and_writes_nothing(
    engines: Databases, machines: MachinesFactory
) -> None:
    builder = MachineBuilder("pending", ORDER_FLOW_UNTIL_SHIPPED, events={"remind": "paid -> paid"})

    @builder.on_enter("paid")
    def remind_later(ctx):  # type: ignore[no-untyped-def]
        ctx.start_timer("reminder", 60, "remind")

    @builder.on_enter("pending")
    def remind_at_once(ctx):  # type: ignore[no-untyped-def]
        if ctx.payload.get("timer"):
            ctx.send_later(60, "remind")

    orders = machines(builder)
    created = orders.create({"amount": 5.0})
    with pytest.raises(ArgumentValueError, match="no timers"):
        orders.transition(created.key, "paid")
    assert engines.row(created.key)["status"] == "pending"
    assert engines.row(created.key)["version"] == 0
    with pytest.raises(ArgumentValueError, match="nothing was written"):
        orders.create({"amount": 1.0, "timer": True})
    assert engines.count() == 1
