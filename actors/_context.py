"""Which actor the running code belongs to, per thread and per asyncio task."""

from __future__ import annotations

import contextvars
from typing import Any

#: The cell whose handler, hook or observer is running in this thread or task,
#: if any: a blocking call, or a wait, from there on the same actor could never
#: be answered, because the actor is busy running the caller.
current_cell: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "stateward_current_cell", default=None
)
