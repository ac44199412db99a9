"""Creating the audit table when several processes start at once.

Each `RowMachines` with ``audit=True`` creates the audit table if it is missing.
Processes that start together may all find it missing and all create it; the
ones that lose that race get "already exists" from the database. Here the race
is made to happen, every time: the table is created on a second connection
just after the first one found it missing and just before it creates it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from stateward.actors.rows import AUDIT_TABLE, SQLAlchemyAdapter
from stateward.core import MachineBuilder

if TYPE_CHECKING:  # the fixtures' types; a bare 'conftest' import depends on collection order
    from conftest import Databases, MachinesFactory

FLOW = {"pending": ["paid"], "paid": []}


@pytest.fixture
def created_meanwhile(engines: Databases) -> Iterator[list[bool]]:
    """Create the audit table on another connection at the last moment, once."""
    done: list[bool] = []

    def create_elsewhere(table: sa.Table, connection: sa.Connection, **_: object) -> None:
        if done:
            return
        done.append(True)
        with engines.other.begin() as other:
            table.create(other)

    sa.event.listen(AUDIT_TABLE, "before_create", create_elsewhere)
    try:
        yield done
    finally:
        sa.event.remove(AUDIT_TABLE, "before_create", create_elsewhere)


def test_losing_the_race_to_create_the_audit_table_is_not_an_error(
    engines: Databases, machines: MachinesFactory, created_meanwhile: list[bool]
) -> None:
    with engines.other.connect() as conn:
        assert not sa.inspect(conn).has_table(AUDIT_TABLE.name)
    orders = machines(MachineBuilder("pending", FLOW, name="orders"))
    assert created_meanwhile == [True]  # the race happened, and was lost
    key = orders.create({"amount": 5.0}).key
    orders.transition(key, "paid")
    assert [(e["from_state"], e["to_state"]) for e in engines.audit(key)] == [
        (None, "pending"),
        ("pending", "paid"),
    ]


def test_a_table_that_cannot_be_created_is_still_an_error(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    writable = sa.create_engine(f"sqlite:///{path}")
    with writable.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT)")
    writable.dispose()
    readonly = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        with pytest.raises(sa.exc.OperationalError, match="readonly"):
            SQLAlchemyAdapter(readonly).create_audit_table()
    finally:
        readonly.dispose()
