"""A read of a row's state on a locked SQLite database is `RowBusy`, never a raw
"database is locked", as a transition is."""

from __future__ import annotations

from typing import Any

import pytest

from stateward.actors.rows import RowBinding, RowBusy, RowMachines, SQLAlchemyAdapter
from stateward.core import MachineSpec


def test_state_of_on_a_database_locked_past_the_busy_timeout_is_row_busy(
    sqlite_db: Any, order_model: Any, runtime: Any
) -> None:

    spec = MachineSpec("pending", {"pending": ["paid"], "paid": []})
    adapter = SQLAlchemyAdapter(sqlite_db.engine, busy_timeout=0.2)
    with RowMachines(spec, RowBinding(order_model), adapter, runtime=runtime) as rows:
        key = rows.create().key
        with sqlite_db.other.connect() as holder:
            holder.exec_driver_sql("BEGIN EXCLUSIVE")  # no reader may read now
            try:
                with pytest.raises(RowBusy, match="busy timeout") as busy:
                    rows.state_of(key)
                assert (busy.value.table, busy.value.row) == ("orders", key)
            finally:
                holder.rollback()
        assert rows.state_of(key) == "pending"
