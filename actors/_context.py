"""Which actor, and which runtime, the running code belongs to, per thread and
per asyncio task.

Both live in context variables, low in the layers, so that any module can ask
without importing the runtime: the runtime module registers how to make the
process-wide default runtime (`set_default_runtime`) when it is imported.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

#: The cell whose handler, hook or observer is running in this thread or task,
#: if any: a blocking call, or a wait, from there on the same actor could never
#: be answered, because the actor is busy running the caller.
current_cell: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "stateward_current_cell", default=None
)


def as_cell(cell: Any, fn: Callable[[Any, Any], Any], first: Any, second: Any) -> Any:
    """``fn(first, second)`` as ``cell``'s own code: what a request's
    behaviour step, after-commit hooks and observers run through, in the
    request's context (``reply.context.run(as_cell, cell, fn, ...)``; two
    arguments, not ``*args``: it runs for every request).

    That context is a copy of the sender's, so ``current_cell`` in it is the
    sender's (None, or the cell whose hook sent it) until set here; it stays
    set in that copy, which belongs to the one request, so it needs no reset.
    """
    current_cell.set(cell)
    return fn(first, second)


#: The id a `RayRuntime` client gave the request being sent, set by its shard
#: around the send: the request's reply copies it with the sender's context,
#: and its commit is written with it (`Cell.process`), so that a retry of the
#: same request is found applied (`stores._requests`).
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "stateward_request_id", default=None
)


#: The runtime of the innermost ``with Runtime(...)`` block of this context, and
#: the value it replaced (so nested blocks restore the outer one): a pair, or
#: None. Threads start with an empty context; asyncio tasks copy theirs.
current_block: contextvars.ContextVar[tuple[Any, Any] | None] = contextvars.ContextVar(
    "stateward_current_runtime", default=None
)

_default_runtime: list[Callable[[], Any]] = []


def set_default_runtime(factory: Callable[[], Any]) -> None:
    """Register the function that returns the process-wide default runtime
    (the runtime module does, when it is imported)."""
    _default_runtime[:] = [factory]


def current_runtime() -> Any:
    """The runtime a handle or supervisor created without ``runtime=`` belongs
    to: the one of the innermost ``with Runtime(...)`` block of the calling
    context, else the process-wide default runtime."""
    entry = current_block.get()
    if entry is not None:
        return entry[0]
    if not _default_runtime:  # pragma: no cover - stateward.actors registers it on import
        raise RuntimeError("import stateward.actors before creating actors")
    return _default_runtime[0]()
