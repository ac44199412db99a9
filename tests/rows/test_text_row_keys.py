"""A text key that no database column can hold is refused the same way everywhere.

A key with a NUL character passed on SQLite (a row was even created under it)
and failed on PostgreSQL with the driver's ``DataError`` ("text fields cannot
contain NUL"); a key with a lone surrogate (``"\\ud800"``), which is not UTF-8,
failed on both with a raw ``UnicodeEncodeError`` from the driver. Each is now
refused with `InvalidRowKey` before anything is read or written, by every call
that takes a key.
"""

from __future__ import annotations

from typing import Any

import pytest

from stateward.actors.rows import InvalidRowKey, RowBinding
from stateward.core import MachineSpec, UnencodableValueError

Databases = Any

SPEC = MachineSpec("open", {"open": ["closed"], "closed": []})


@pytest.mark.parametrize(
    "key", ["T\x00-1", "\x00", "T-\ud800"], ids=["nul", "only-nul", "surrogate"]
)
def test_a_text_key_no_column_can_hold_is_refused_before_the_database(
    engines: Databases, machines: Any, ticket_model: Any, key: str
) -> None:
    binding = RowBinding(
        ticket_model, state="state", version="rev", states={"open": 0, "closed": 1}
    )
    tickets = machines(SPEC, binding)
    tickets.create({"code": "T-1", "title": "printer"})
    calls = {
        "transition": lambda: tickets.transition(key, "closed"),
        "history": lambda: tickets.history(key),
        "state_of": lambda: tickets.state_of(key),
    }
    for name, call in calls.items():
        with pytest.raises(InvalidRowKey, match=r"tickets\.code") as refused:
            call()
        assert refused.value.column == "code", name
    # create checks its data first: a key that is not UTF-8 is refused there.
    with pytest.raises((InvalidRowKey, UnencodableValueError), match="code"):
        tickets.create({"code": key, "title": "bad key"})
    assert engines.count("tickets") == 1
    assert tickets.transition("T-1", "closed").state == "closed"
