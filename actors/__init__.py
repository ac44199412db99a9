"""stateward.actors: state machines, stores and config as actors (built on pykka).

Every handle is safe to use from any thread. Reads return the last published
immutable snapshot without a message or a lock; writes are messages that the
actor handles one at a time, from any thread or awaited from asyncio.
"""

import logging as _logging

from ._cell import ActorStats, ErrorReport
from ._errors import ActorStopped, ActorTimeout, DuplicateActorName, RuntimeStopped, SelfCallError
from ._handles import ActorHandle, ConfigManager, StateMachine, StateManager
from ._reply import Reply
from ._runtime import Runtime, default_runtime

_logging.getLogger("stateward").addHandler(_logging.NullHandler())

__all__ = [
    "ActorHandle",
    "ActorStats",
    "ActorStopped",
    "ActorTimeout",
    "ConfigManager",
    "DuplicateActorName",
    "ErrorReport",
    "Reply",
    "Runtime",
    "RuntimeStopped",
    "SelfCallError",
    "StateMachine",
    "StateManager",
    "default_runtime",
]
