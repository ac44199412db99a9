"""WorkflowContext: declared, typed requirements checked on entry, and a history summary.

Every unmet requirement is listed at once, in one `RequirementError`, before
anything is written. Dict requirements validate against a dataclass, or a
pydantic model. The workflow's first move creates its row in the start state;
later moves transition it, reading its state from the database each time.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

import pydantic
import pytest
from support import ORDER_FLOW_PAID_IS_FINAL

from stateward.actors.rows import RequirementError, RowMachines, WorkflowContext
from stateward.core import InvalidTransition, MachineBuilder, StatewardError

#: The fixtures' types (conftest.py's Databases and machines factory), for reading only.
Databases = Any
MachinesFactory = Callable[..., RowMachines]


@dataclasses.dataclass(frozen=True)
class OrderData:
    amount: float
    customer_email: str
    note: str = ""


class OrderSchema(pydantic.BaseModel):
    amount: float = pydantic.Field(..., gt=0)
    customer_email: str


def order_machines(machines: MachinesFactory) -> RowMachines:
    builder = MachineBuilder(
        "pending",
        ORDER_FLOW_PAID_IS_FINAL,
        events={"pay": "pending -> paid", "ship": "paid -> shipped"},
    )
    numbers = itertools.count(1)

    @builder.pre_transition("pending")
    def generate_order_id(ctx):
        return {"order_id": f"ORD-{next(numbers):04d}"}

    return machines(builder)


def workflow_class(schema: type, model: type) -> type[WorkflowContext]:
    class OrderWorkflow(WorkflowContext):
        def define_requirements(self) -> None:
            self.require_value("customer_id", str)
            self.require_value("priority", int, required=False)
            self.require_dict("order_data", schema)
            self.require_model("order", model, created_in_state="pending")

    return OrderWorkflow


VALID = {"amount": 99.99, "customer_email": "ana@example.com"}


def refused(flow: WorkflowContext, error: type[Exception] = RequirementError, **match: str) -> Any:
    """Enter ``flow``'s block, which must fail with ``error`` before it runs."""
    with pytest.raises(error, **match) as caught:
        flow.__enter__()
    return caught.value


# -- requirements ----------------------------------------------------------------------------


def test_require_value_reports_wrong_types_and_missing_values(
    engines: Databases, machines: MachinesFactory, order_model: Any
) -> None:
    orders = order_machines(machines)
    workflow = workflow_class(OrderData, order_model)

    err = refused(workflow(orders, customer_id=123, priority="high", order_data=VALID))
    assert isinstance(err, StatewardError)
    assert isinstance(err, ValueError)
    assert err.problems == [
        "'customer_id' must be str, got 123 (int)",
        "'priority' must be int, got 'high' (str)",
    ]
    assert "workflow OrderWorkflow cannot start" in str(err)

    missing = refused(workflow(orders, order_data=VALID))
    assert missing.problems == ["'customer_id' is required"]

    with workflow(orders, customer_id="C-1", order_data=VALID) as flow:  # priority is optional
        assert flow.values["customer_id"] == "C-1"
    assert engines.count() == 0  # checking writes nothing


def test_require_dict_with_a_dataclass(
    engines: Databases, machines: MachinesFactory, order_model: Any
) -> None:
    orders = order_machines(machines)
    workflow = workflow_class(OrderData, order_model)

    with workflow(orders, customer_id="C-1", order_data={**VALID, "amount": 5}) as flow:
        data = flow.values["order_data"]
        assert data == OrderData(5, "ana@example.com")  # an int is a valid float
        assert isinstance(data, OrderData)

    unmet = refused(
        workflow(orders, customer_id=7, order_data={"amount": "lots", "colour": "red", "note": 3})
    )
    assert unmet.problems == [
        "'customer_id' must be str, got 7 (int)",
        "'order_data': unexpected field 'colour'",
        "'order_data': field 'amount' must be float, got 'lots' (str)",
        "'order_data': missing field 'customer_email'",
        "'order_data': field 'note' must be str, got 3 (int)",
    ]

    not_a_dict = refused(workflow(orders, customer_id="C-1", order_data=["amount", 5]))
    assert not_a_dict.problems == ["'order_data' must be a dict for OrderData, got list"]
    assert engines.count() == 0


def test_require_dict_with_a_pydantic_model(
    engines: Databases, machines: MachinesFactory, order_model: Any
) -> None:
    orders = order_machines(machines)
    workflow = workflow_class(OrderSchema, order_model)

    with workflow(orders, customer_id="C-1", order_data=VALID) as flow:
        data = flow.values["order_data"]
        assert isinstance(data, OrderSchema)
        assert data.amount == 99.99

    unmet = refused(workflow(orders, customer_id=None, order_data={"amount": 0}))
    assert unmet.problems == [
        "'customer_id' is required",
        "'order_data': field 'amount': Input should be greater than 0 (got 0)",
        "'order_data': missing field 'customer_email'",
    ]
    assert "'customer_email'" in str(unmet)
    assert engines.count() == 0


def test_require_dict_needs_a_dataclass_or_a_pydantic_model(
    machines: MachinesFactory,
) -> None:
    orders = order_machines(machines)

    class Loose(WorkflowContext):
        def define_requirements(self) -> None:
            self.require_dict("order_data", dict)

    refused(Loose(orders, order_data={}), TypeError, match="dataclass or a pydantic model")


def test_require_model_is_filled_when_the_row_is_created(
    engines: Databases, machines: MachinesFactory, order_model: Any
) -> None:
    orders = order_machines(machines)
    workflow = workflow_class(OrderData, order_model)

    with workflow(orders, customer_id="C-1", order_data=VALID) as flow:
        assert "order" not in flow.values  # not required before the creation
        created = flow.transition_to("pending", {"amount": 99.99})
        assert flow.values["order"] == created.key == flow.key
        assert engines.row(created.key)["status"] == "pending"

    wrong = refused(workflow(orders, customer_id="C-1", order_data=VALID, order="ORD-1"))
    assert wrong.problems == ["'order' must be a Order instance, got str"]

    class Misspelt(WorkflowContext):
        def define_requirements(self) -> None:
            self.require_model("order", order_model, created_in_state="pendng")

    refused(Misspelt(orders), ValueError, match="'pendng' is not a state")


# -- moving ----------------------------------------------------------------------------------


def test_transition_to_creates_the_row_then_transitions_it(
    engines: Databases, machines: MachinesFactory, order_model: Any
) -> None:
    orders = order_machines(machines)
    workflow = workflow_class(OrderData, order_model)

    with workflow(orders, customer_id="C-1", order_data=VALID) as flow:
        with pytest.raises(ValueError, match="first move must be to the initial state 'pending'"):
            flow.transition_to("paid")
        assert engines.count() == 0

        flow.transition_to("pending", {"amount": 99.99, "customer": "C-1"})
        flow.transition_to("paid", {"method": "card"})
        flow.transition_to("shipped")
        key = flow.key

    row = engines.row(key)
    assert (row["status"], row["version"], row["order_id"], row["customer"]) == (
        "shipped",
        2,
        "ORD-0001",
        "C-1",
    )
    assert [(e["from_state"], e["to_state"]) for e in engines.audit(key)] == [
        (None, "pending"),
        ("pending", "paid"),
        ("paid", "shipped"),
    ]
    assert [r.state for r in flow.results] == ["pending", "paid", "shipped"]

    # Each move reads the row: a change behind the workflow's back is seen.
    with workflow(orders, customer_id="C-2", order_data=VALID) as second:
        second.transition_to("pending", {"amount": 5.0})
        engines.execute("UPDATE orders SET status = 'cancelled' WHERE id = :k", k=second.key)
        with pytest.raises(InvalidTransition) as refused:
            second.transition_to("paid")
        assert refused.value.state == "cancelled"
        assert len(second.results) == 1


def test_history_summary_lists_every_committed_move(
    engines: Databases, machines: MachinesFactory, order_model: Any
) -> None:
    orders = order_machines(machines)
    workflow = workflow_class(OrderData, order_model)

    with workflow(orders, customer_id="C-1", order_data=VALID) as flow:
        assert flow.get_history_summary() == "workflow OrderWorkflow on orders[None]:"
        flow.transition_to("pending", {"amount": 99.99})
        flow.transition_to("paid", {"method": "card", "reference": "R-1"})
        flow.transition_to("shipped")
        summary = flow.get_history_summary()

    assert summary.splitlines() == [
        f"workflow OrderWorkflow on orders[{flow.key!r}]:",
        "  1. (new) -> pending",
        "  2. pending -> paid by 'pay' with method, reference",
        "  3. paid -> shipped by 'ship'",
        "  now: shipped (version 2)",
    ]
