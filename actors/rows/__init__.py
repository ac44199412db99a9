"""stateward.actors.rows: state machines bound to database rows (SQLAlchemy 2.x).

Install with ``pip install 'stateward[sqlalchemy]'``. A transition on a bound
row reads the row's state inside the database transaction (never the caller's
copy), runs hooks and guards, writes, audits and commits; after-commit hooks
run only once the commit succeeded. PostgreSQL row locks, optimistic version
checks on any database, and SQLite's ``BEGIN IMMEDIATE`` keep several processes
from stepping on each other; in one process each row's transitions queue in
one actor's mailbox.
"""

# Before anything imports SQLAlchemy for real: without the extra, say which one to install.
try:
    import sqlalchemy as _sqlalchemy
except ModuleNotFoundError as _missing:
    if _missing.name != "sqlalchemy":
        raise  # SQLAlchemy is there, something it needs is not: its own error says what
    raise ModuleNotFoundError(
        "stateward.actors.rows needs SQLAlchemy 2.0 or newer, which is not installed: "
        "pip install 'stateward[sqlalchemy]' (or 'stateward[postgresql]' for the "
        "PostgreSQL driver too)",
        name="sqlalchemy",
    ) from None
if int(_sqlalchemy.__version__.split(".")[0]) < 2:
    raise ImportError(
        f"stateward.actors.rows needs SQLAlchemy 2.0 or newer, found "
        f"{_sqlalchemy.__version__}: pip install 'stateward[sqlalchemy]' (or "
        "pip install --upgrade 'sqlalchemy>=2.0')",
        name="sqlalchemy",
    )

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
    ParallelStatesUnbindable,
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
    "ParallelStatesUnbindable",
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
