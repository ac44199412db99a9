"""stateward.actors.rows: state machines bound to database rows (SQLAlchemy 2.x, Django).

Install with ``pip install 'stateward[sqlalchemy]'`` or ``'stateward[django]'``:
this package needs neither ORM; each binding imports its own when it is used
(`RowBinding`, `SQLAlchemyAdapter` and `AUDIT_TABLE` SQLAlchemy,
``stateward.actors.rows.django`` Django), and says which extra to install
without it.

A transition on a bound row reads the row's state inside the database
transaction (never the caller's copy), runs hooks and guards, writes, audits
and commits; after-commit hooks run only once the commit succeeded. PostgreSQL
row locks, optimistic version checks on any database, and SQLite's immediate
transactions keep several processes from stepping on each other; in one
process each row's transitions queue in one actor's mailbox.
"""

from typing import TYPE_CHECKING, Any

from ._adapter import AUDIT_KEY_LENGTH, ORMAdapter, RowTransaction
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

if TYPE_CHECKING:
    from ._sqlalchemy import AUDIT_TABLE, RowBinding, SQLAlchemyAdapter

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

#: The names of the SQLAlchemy binding, imported from it when first used.
_SQLALCHEMY_NAMES = ("AUDIT_TABLE", "RowBinding", "SQLAlchemyAdapter")


def __getattr__(name: str) -> Any:
    if name in _SQLALCHEMY_NAMES:
        from . import _sqlalchemy  # raises an ImportError naming the extra without SQLAlchemy

        return getattr(_sqlalchemy, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
