"""Errors of machines bound to database rows."""

from __future__ import annotations

from typing import Any

from stateward.core import InvalidArgument, StatewardError


class ConcurrentTransition(StatewardError):
    """Another transaction changed the row between our read and our write.

    Attributes:
        table: the table.
        row: the row's key.
        expected: the state this transition read.
        found: the state the row has now (None if it could not be read).
    """

    def __init__(self, table: str, row: object, expected: str, found: str | None) -> None:
        self.table = table
        self.row = row
        self.expected = expected
        self.found = found
        super().__init__(
            f"row {table}[{row!r}] changed under this transition: it read state "
            f"{expected!r}, and the row is now in {found!r}. Nothing was written; retry "
            "(RowMachines(retry=RetryPolicy(...))) to re-read the row and decide again"
        )


class RowBusy(StatewardError):
    """The row (or, on SQLite, the database) is locked by another transaction.

    Attributes:
        table: the table.
        row: the row's key.
        reason: what the database said.
    """

    def __init__(self, table: str, row: object, reason: str) -> None:
        self.table = table
        self.row = row
        self.reason = reason
        super().__init__(
            f"row {table}[{row!r}] is locked by another transaction ({reason}). Nothing "
            "was written; retry later, or let RowMachines(retry=RetryPolicy(...)) do it"
        )


class RowNotFound(StatewardError, LookupError):
    """No row with that key."""

    def __init__(self, table: str, row: object) -> None:
        self.table = table
        self.row = row
        super().__init__(f"no row {table}[{row!r}]; create it with RowMachines.create(...)")

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownStateValue(StatewardError, ValueError):
    """The row's state column holds a value the machine does not know.

    Attributes:
        table: the table.
        row: the row's key.
        value: the value found.
    """

    def __init__(
        self, table: str, row: object, column: str, value: object, known: list[object]
    ) -> None:
        self.table = table
        self.row = row
        self.value = value
        super().__init__(
            f"row {table}[{row!r}] has {column}={value!r}, which is not a state of the "
            f"machine (known values: {', '.join(map(repr, known))}); nothing was written. "
            "Fix the row, or add the state to the definition"
        )


class UnmappedColumn(StatewardError, AttributeError):
    """A column name that the bound model does not have."""

    def __init__(self, table: str, column: str, known: list[str], where: str) -> None:
        self.table = table
        self.column = column
        super().__init__(
            f"{where}: table {table!r} has no column {column!r} (columns: "
            f"{', '.join(known)}); nothing was written"
        )


class RequirementError(StatewardError, ValueError):
    """A workflow's declared requirements are not met.

    Attributes:
        problems: one line per unmet requirement.
    """

    def __init__(self, workflow: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"workflow {workflow} cannot start:\n{lines}")


class InvalidRowKey(InvalidArgument, TypeError, ValueError):
    """A row key that cannot be a value of the table's key column; nothing was
    read or written.

    It is both a `TypeError` and a `ValueError`: a key can be wrong by its type
    (``"abc"`` for an integer column) or by its value (``1.5``, or ``2**70``,
    out of the column's range).

    Attributes:
        table: the table.
        column: the key column.
    """

    def __init__(
        self, call: str, table: str, column: str, expected: str, key: object, fix: str = ""
    ) -> None:
        self.table = table
        self.column = column
        super().__init__(call, "key", f"{expected} for {table}.{column}", key, fix)


class ParallelStatesUnbindable(StatewardError, ValueError):
    """A machine with parallel regions bound to a database row: one state
    column cannot hold several active states.

    Attributes:
        table: the table the binding is for.
        parallel: the machine's parallel states.
    """

    def __init__(self, table: str, spec: Any) -> None:
        self.table = table
        self.parallel = tuple(s for s in spec.states if spec.is_parallel(s))
        super().__init__(
            f"cannot bind a machine with parallel states ({', '.join(map(repr, self.parallel))}) "
            f"to the rows of {table!r}: its state column holds one state, and a parallel "
            "state has several active at once. Bind a machine without parallel= (compound "
            "states are fine: a row holds the active leaf), or keep the machine in a "
            "StateMachine with a store"
        )
