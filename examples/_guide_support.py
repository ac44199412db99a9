"""A small local stand-in for the two names the guide takes from provide.foundation.

The guide's classes call ``logger.info("event_name", key=value)`` in the style of
structlog and ask for ``get_hub()``. stateward does not depend on
provide.foundation, so this module gives the example those two names and nothing
more: the logger prints one line per call, the hub is an empty placeholder.
"""

from __future__ import annotations

import threading
from typing import Any


class _PrintLogger:
    """Prints ``log: event key=value ...``, one line per call, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # observers log from the actor's thread

    def _emit(self, level: str, event: str, fields: dict[str, Any]) -> None:
        shown = " ".join(f"{key}={value!r}" for key, value in fields.items())
        prefix = "log" if level == "info" else f"log[{level}]"
        with self._lock:
            print(f"    {prefix}: {event} {shown}".rstrip())

    def info(self, event: str, **fields: Any) -> None:
        self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit("error", event, fields)


class _Hub:
    """Stands in for foundation's hub; the guide only fetches it."""

    def __repr__(self) -> str:
        return "<stand-in hub>"


logger = _PrintLogger()
_hub = _Hub()


def get_hub() -> _Hub:
    """The one stand-in hub."""
    return _hub
