"""stateward.actors: state machines, stores and config as actors (built on pykka).

Every handle is safe to use from any thread. Reads return the last published
immutable snapshot without a message or a lock; writes are messages that the
actor handles one at a time, from any thread or awaited from asyncio.
"""

import logging as _logging

from ._change_stream import ChangeStream
from ._clock import ManualClock, SystemClock
from ._default import default_runtime
from ._endpoint import MetricsEndpoint
from ._errors import (
    ActorCrashed,
    ActorNotFound,
    ActorOwned,
    ActorStopped,
    ActorTimeout,
    DeadlineExceeded,
    DuplicateActorName,
    LeaseLost,
    MailboxFull,
    RecoveryError,
    RequestCancelled,
    RuntimeStopped,
    SelfCallError,
    ShutdownIncomplete,
    StoreError,
    StoreOpenError,
    StoreWriteError,
    SupervisorGaveUp,
    SupervisorStopped,
    WaitTimeout,
)
from ._handles import (
    ActorHandle,
    ConfigManager,
    StateMachine,
    StateManager,
    TimerService,
    serve_timers,
)
from ._health import Health
from ._reply import Reply
from ._runtime import Runtime, RuntimeStats
from ._signals import NotInMainThread
from ._stats import ActorStats, ErrorReport
from ._supervision import Backoff, ShutdownReport, SupervisorEvent
from ._supervisor import Supervisor
from .stores import (
    MemoryStore,
    PostgresStore,
    RecoveryReport,
    SQLiteStore,
    Store,
    StoredActor,
)

_logging.getLogger("stateward").addHandler(_logging.NullHandler())

__all__ = [
    "ActorCrashed",
    "ActorHandle",
    "ActorNotFound",
    "ActorOwned",
    "ActorStats",
    "ActorStopped",
    "ActorTimeout",
    "Backoff",
    "ChangeStream",
    "ConfigManager",
    "DeadlineExceeded",
    "DuplicateActorName",
    "ErrorReport",
    "Health",
    "LeaseLost",
    "MailboxFull",
    "ManualClock",
    "MemoryStore",
    "MetricsEndpoint",
    "NotInMainThread",
    "PostgresStore",
    "RecoveryError",
    "RecoveryReport",
    "Reply",
    "RequestCancelled",
    "Runtime",
    "RuntimeStats",
    "RuntimeStopped",
    "SQLiteStore",
    "SelfCallError",
    "ShutdownIncomplete",
    "ShutdownReport",
    "StateMachine",
    "StateManager",
    "Store",
    "StoreError",
    "StoreOpenError",
    "StoreWriteError",
    "StoredActor",
    "Supervisor",
    "SupervisorEvent",
    "SupervisorGaveUp",
    "SupervisorStopped",
    "SystemClock",
    "TimerService",
    "WaitTimeout",
    "default_runtime",
    "serve_timers",
]
