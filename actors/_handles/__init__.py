"""Handles: the thread-safe objects users hold. Each one fronts one actor.

`ActorHandle` (in ``_base``) is what every kind shares: checking a call,
sending its message, waiting for the answer, observers, stopping. Each kind
adds its reads and the messages its writes send: `StateMachine` (``_machine``),
`StateManager` (``_manager``), `ConfigManager` (``_config``).
"""

from ._base import ActorHandle, ActorOptions
from ._config import ConfigManager
from ._machine import StateMachine
from ._manager import StateManager
from ._timer_service import TimerService, serve_timers

__all__ = [
    "ActorHandle",
    "ActorOptions",
    "ConfigManager",
    "StateMachine",
    "StateManager",
    "TimerService",
    "serve_timers",
]
