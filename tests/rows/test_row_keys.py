"""A row key is read as the key column's type: one spelling per row (so a row's
audit history is complete whichever spelling the caller used), and a key that
cannot be a value of the column is refused with `InvalidRowKey`, the same way
on SQLite and PostgreSQL, before anything reaches the database."""

from __future__ import annotations

import decimal
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from support import ORDER_FLOW_PAID_IS_FINAL

from stateward.actors import Runtime
from stateward.actors.rows import (
    AUDIT_KEY_LENGTH,
    InvalidRowKey,
    RowBinding,
    RowMachines,
    RowNotFound,
)
from stateward.core import ArgumentTypeError, MachineSpec, StatewardError

Databases = Any
MachinesFactory = Callable[..., RowMachines]

FLOW = MachineSpec(
    "pending",
    ORDER_FLOW_PAID_IS_FINAL,
)


def _replayed(entries: list[dict[str, Any]]) -> str:
    """The state a row's audit history leads to, move by move."""
    state = None
    for entry in entries:
        assert entry["from_state"] == state, entries
        state = entry["to_state"]
    assert state is not None
    return state


def test_any_spelling_of_an_integer_key_is_the_same_row_and_the_same_history(
    engines: Databases, machines: MachinesFactory, runtime: Runtime
) -> None:
    orders = machines(FLOW)
    key = orders.create({"amount": 5.0}).key
    assert key == 1 and type(key) is int

    paid = orders.transition(1.0, "paid")
    shipped = orders.transition(decimal.Decimal("1.00"), "shipped")

    assert (paid.key, shipped.key) == (1, 1)
    assert type(paid.key) is int and type(shipped.key) is int
    history = orders.history(1)
    assert [e["to_state"] for e in history] == ["pending", "paid", "shipped"]
    assert {e["row_key"] for e in history} == {"1"}
    assert _replayed(history) == orders.state_of(1) == engines.row(1)["status"] == "shipped"
    assert orders.history(1.0) == history
    [actor] = [name for name in runtime.names() if name.startswith("orders[")]
    assert actor.startswith("orders[1]#")  # one actor for the row, whatever the spelling


def test_a_key_given_to_create_is_stored_and_audited_as_the_column_holds_it(
    engines: Databases, machines: MachinesFactory
) -> None:
    orders = machines(FLOW)
    created = orders.create({"id": 7.0, "amount": 1.0})
    assert created.key == 7 and type(created.key) is int
    orders.transition(7, "paid")
    assert _replayed(orders.history(7)) == "paid"
    with pytest.raises(InvalidRowKey):
        orders.create({"id": 7.5, "amount": 1.0})
    assert engines.count() == 1


BAD_INTEGER_KEYS = [
    pytest.param("abc", id="text"),
    pytest.param("1", id="digits"),
    pytest.param(1.5, id="fraction"),
    pytest.param(float("nan"), id="nan"),
    pytest.param(float("inf"), id="inf"),
    pytest.param(decimal.Decimal("1.5"), id="decimal-fraction"),
    pytest.param(True, id="bool"),
    pytest.param(None, id="none"),
    pytest.param([1], id="list"),
    pytest.param(2**70, id="2**70"),
    pytest.param(-(2**70), id="-2**70"),
    pytest.param(2**63, id="2**63"),
]


@pytest.mark.parametrize("key", BAD_INTEGER_KEYS)
def test_a_key_that_cannot_be_an_integer_column_value_is_refused_on_every_database(
    engines: Databases, machines: MachinesFactory, runtime: Runtime, key: Any
) -> None:
    orders = machines(FLOW)
    orders.create({"amount": 5.0})
    before = engines.row(1)
    actors = runtime.names()

    for call in (
        lambda: orders.transition(key, "paid"),
        lambda: orders.trigger(key, "pay"),
        lambda: orders.state_of(key),
        lambda: orders.history(key),
    ):
        with pytest.raises(InvalidRowKey) as caught:
            call()
        error = caught.value
        assert isinstance(error, StatewardError)
        assert isinstance(error, TypeError) and isinstance(error, ValueError)
        assert (error.table, error.column, error.argument) == ("orders", "id", "key")
        assert "orders.id" in str(error)

    assert engines.row(1) == before
    assert len(engines.audit(1)) == 1
    assert runtime.names() == actors, "a row actor was started for a refused key"


def test_the_range_of_an_integer_key_is_the_columns_on_that_database(
    engines: Databases, machines: MachinesFactory
) -> None:
    """PostgreSQL's INTEGER holds 32 bits, SQLite's 64: a key past the column's
    range is refused; within it, a missing row is RowNotFound."""
    orders = machines(FLOW)
    if engines.kind == "postgresql":
        with pytest.raises(InvalidRowKey, match="-2147483648 to 2147483647"):
            orders.transition(2**31, "paid")
    else:
        with pytest.raises(RowNotFound):
            orders.transition(2**31, "paid")
    with pytest.raises(RowNotFound):
        orders.transition(2**31 - 1, "paid")


def test_a_text_key_column_takes_text_only(
    engines: Databases, machines: MachinesFactory, ticket_model: Any
) -> None:
    tickets = machines(
        MachineSpec("open", {"open": ["closed"], "closed": []}),
        RowBinding(ticket_model, state="state", version="rev", states={"open": 0, "closed": 1}),
    )
    tickets.create({"code": "T-1", "title": "printer"})
    for key in (1, 1.0, None, b"T-1"):
        with pytest.raises(InvalidRowKey, match=r"a str for tickets\.code"):
            tickets.transition(key, "closed")
    assert tickets.transition("T-1", "closed").key == "T-1"


class _Base(DeclarativeBase):
    pass


class _Device(_Base):
    __tablename__ = "devices"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(20))


def test_a_uuid_key_column_takes_a_uuid_or_its_text(engines: Databases, runtime: Runtime) -> None:
    _Base.metadata.create_all(engines.engine)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    with RowMachines(
        MachineSpec("off", {"off": ["on"], "on": ["off"]}),
        RowBinding(_Device),
        engines.engine,
        runtime=runtime,
    ) as devices:
        devices.create({"id": str(ident)})
        assert devices.transition(ident.hex, "on").key == ident
        assert devices.transition(ident, "off").key == ident
        assert [e["to_state"] for e in devices.history(str(ident).upper())] == ["off", "on", "off"]
        with pytest.raises(InvalidRowKey, match="a UUID, or its text form"):
            devices.state_of("not-a-uuid")


def test_bad_arguments_to_a_row_transition_are_refused_before_the_database(
    engines: Databases, machines: MachinesFactory, runtime: Runtime
) -> None:
    orders = machines(FLOW)
    orders.create({"amount": 5.0})
    before = engines.row(1)
    actors = runtime.names()
    with pytest.raises(ArgumentTypeError, match="'target' must be a str"):
        orders.transition(1, ["paid"])
    with pytest.raises(ArgumentTypeError, match="'data' must be a mapping"):
        orders.transition(1, "paid", 5)
    with pytest.raises(ArgumentTypeError, match="'event' must be a str"):
        orders.trigger(1, 5)
    with pytest.raises(TypeError, match="'timeout' must be a number"):
        orders.transition(1, "paid", timeout="soon")
    with pytest.raises(ArgumentTypeError, match=r"RowMachines\.create\(\): 'data' must be"):
        orders.create(5)
    assert engines.row(1) == before
    assert runtime.names() == actors


def test_a_text_key_longer_than_the_audit_keeps_is_refused_before_the_database(
    engines: Databases, machines: MachinesFactory, ticket_model: Any
) -> None:
    # The audit table's row_key holds AUDIT_KEY_LENGTH characters: a longer key
    # would pass on SQLite and fail the audit insert on PostgreSQL, after the
    # row was read. Refused the same way on both, before anything is read.
    binding = RowBinding(
        ticket_model, state="state", version="rev", states={"open": 0, "closed": 1}
    )
    tickets = machines(MachineSpec("open", {"open": ["closed"], "closed": []}), binding)
    longest = "T" * AUDIT_KEY_LENGTH
    with pytest.raises(InvalidRowKey, match=f"at most {AUDIT_KEY_LENGTH} characters"):
        tickets.create({"code": longest + "X", "title": "too long"})
    with pytest.raises(InvalidRowKey, match=f"at most {AUDIT_KEY_LENGTH} characters"):
        tickets.transition(longest + "X", "closed")
    assert engines.count("tickets") == 0

    unaudited = machines(
        MachineSpec("open", {"open": ["closed"], "closed": []}), binding, audit=False
    )
    with pytest.raises(RowNotFound):  # without an audit, the key column alone decides
        unaudited.transition(longest + "X", "closed")
