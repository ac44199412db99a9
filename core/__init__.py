"""stateward.core: pure values and logic. No threads, no pykka.

Everything here is immutable or a pure function of immutable values, so the
same logic runs inside an actor, in a test, or in another host. It imports
neither ``threading`` nor ``logging`` (which imports ``threading``), and it never
logs: errors are raised or returned, and the actors report them.
"""

from ._chart_class import HistoryState, State, StateChart
from ._codec import SCHEMA_VERSION, decode, encode
from ._config import ConfigChange, ConfigDiff, ConfigHistory, VersionedConfig
from ._errors import (
    ArgumentTypeError,
    ArgumentValueError,
    DecodeError,
    FrozenStateError,
    InvalidArgument,
    InvalidTransition,
    MachineDefinitionError,
    Reject,
    SchemaVersionError,
    StatewardError,
    TransitionRejected,
    UnencodableValueError,
    UninitializedStateError,
    UnknownVersionError,
)
from ._frozen import MAX_DEPTH, FrozenDict, FrozenList, freeze, thaw
from ._graph import to_dot, to_mermaid
from ._history import History
from ._machine import (
    CreationOutcome,
    HookFailure,
    HookReturnError,
    MachineSnapshot,
    TransitionContext,
    TransitionOutcome,
    TransitionRecord,
    apply_creation,
    apply_transition,
    apply_transition_async,
    run_after_commit,
    run_after_commit_async,
    utc_now,
)
from ._persist import (
    RECORD_SCHEMA,
    ConfigCodec,
    DefinitionMismatch,
    KindCodec,
    MachineCodec,
    ManagerCodec,
    RecordUpgrades,
)
from ._spec import ANY, Event, Hook, MachineBuilder, MachineSpec
from ._state import ImmutableState
from ._store import StoreSnapshot
from ._timer_fire import TimerFiring
from ._timers import PendingTimer, StateTimeout

__all__ = [
    "ANY",
    "MAX_DEPTH",
    "RECORD_SCHEMA",
    "SCHEMA_VERSION",
    "ArgumentTypeError",
    "ArgumentValueError",
    "ConfigChange",
    "ConfigCodec",
    "ConfigDiff",
    "ConfigHistory",
    "CreationOutcome",
    "DecodeError",
    "DefinitionMismatch",
    "Event",
    "FrozenDict",
    "FrozenList",
    "FrozenStateError",
    "History",
    "HistoryState",
    "Hook",
    "HookFailure",
    "HookReturnError",
    "ImmutableState",
    "InvalidArgument",
    "InvalidTransition",
    "KindCodec",
    "MachineBuilder",
    "MachineCodec",
    "MachineDefinitionError",
    "MachineSnapshot",
    "MachineSpec",
    "ManagerCodec",
    "PendingTimer",
    "RecordUpgrades",
    "Reject",
    "SchemaVersionError",
    "State",
    "StateChart",
    "StateTimeout",
    "StatewardError",
    "StoreSnapshot",
    "TimerFiring",
    "TransitionContext",
    "TransitionOutcome",
    "TransitionRecord",
    "TransitionRejected",
    "UnencodableValueError",
    "UninitializedStateError",
    "UnknownVersionError",
    "VersionedConfig",
    "apply_creation",
    "apply_transition",
    "apply_transition_async",
    "decode",
    "encode",
    "freeze",
    "run_after_commit",
    "run_after_commit_async",
    "thaw",
    "to_dot",
    "to_mermaid",
    "utc_now",
]
