"""The wall clock core reads a transition's or a config change's time from.

Only a way to read the time: a `WallClock` is any callable returning an aware
`datetime`; `utc_now` is the default one. Sleeping, timers and deadlines are
the business of the actors (their `SystemClock` and `ManualClock`).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

__all__ = ["WallClock", "utc_now"]

#: Returns the current time, timezone-aware: what ``clock=`` takes in core.
WallClock = Callable[[], _dt.datetime]

_now = _dt.datetime.now
_UTC = _dt.UTC


def utc_now() -> _dt.datetime:
    """The default clock: the current time, timezone-aware, in UTC."""
    return _now(_UTC)
