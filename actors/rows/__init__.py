"""stateward.actors.rows: state machines bound to database rows (SQLAlchemy 2.x).

Install with ``pip install 'stateward[sqlalchemy]'``. A transition on a bound
row reads the row's state inside the database transaction (never the caller's
copy), runs hooks and guards, writes, audits and commits; after-commit hooks
run only once the commit succeeded. PostgreSQL row locks, optimistic version
checks on any database, and SQLite's ``BEGIN IMMEDIATE`` keep several processes
from stepping on each other; in one process each row's transitions queue in
one actor's mailbox.
"""

from ._binding import (
    AUDIT_KEY_LENGTH,
    AUDIT_TABLE,
    ORMAdapter,
    RowBinding,
    RowTransaction,
    SQLAlchemyAdapter,
)
from ._errors import (
    ConcurrentTransition,
    InvalidRowKey,
    RequirementError,
    RowBusy,
    RowNotFound,
    UnknownStateValue,
    UnmappedColumn,
)
from ._machines import RetryPolicy, RowMachines, RowResult
from ._workflow import WorkflowContext

__all__ = [
    "AUDIT_KEY_LENGTH",
    "AUDIT_TABLE",
    "ConcurrentTransition",
    "InvalidRowKey",
    "ORMAdapter",
    "RequirementError",
    "RetryPolicy",
    "RowBinding",
    "RowBusy",
    "RowMachines",
    "RowNotFound",
    "RowResult",
    "RowTransaction",
    "SQLAlchemyAdapter",
    "UnknownStateValue",
    "UnmappedColumn",
    "WorkflowContext",
]
