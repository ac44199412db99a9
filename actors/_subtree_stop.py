"""Stopping a supervisor's subtree against one deadline shared by all.

Every child of the whole subtree is asked to stop first; then the supervisor
waits for them, newest first, until the one deadline, and abandons those still
busy then (``_supervisor``'s docstring says what that means for them).
`Supervisor.stop` and the runtime's shutdown do it through `SubtreeStop`,
which `Supervisor` inherits.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from ._supervision import ChildRecord, ShutdownReport, SupervisorEvent

logger = logging.getLogger("stateward.actors")


class SubtreeStop:
    """How a `Supervisor` stops its subtree; see the module."""

    # The supervisor's own, set by its __init__ and methods.
    name: str
    runtime: Any
    shutdown_timeout: float
    _lock: threading.Lock
    _children: list[ChildRecord]
    _stopping: bool
    _stop_reason: str
    _crashed_in_stop: list[str]
    _event: Callable[..., SupervisorEvent]
    _emit: Callable[[list[SupervisorEvent]], None]

    def _shutdown(
        self, timeout: float | None, reason: str, *, terminal: bool = True
    ) -> ShutdownReport:
        budget = self.shutdown_timeout if timeout is None else timeout
        if not 0 <= budget < math.inf:
            raise ValueError(
                f"stop timeout must be >= 0 seconds, got {budget!r}; and finite: "
                "nothing waits forever"
            )
        started = time.monotonic()
        self._ask_to_stop(reason, terminal=terminal)
        dropped: dict[str, int] = {}
        abandoned, crashed = self._await_stop(started + budget, reason, budget, dropped)
        report = ShutdownReport(
            self.name,
            budget,
            time.monotonic() - started,
            tuple(abandoned),
            tuple(crashed),
            tuple(dropped.items()),
        )
        if not report.clean:
            logger.error("%s", report.describe())
        return report

    def _ask_to_stop(self, reason: str, *, terminal: bool = True) -> None:
        """Stop restarting, and queue a stop behind every child's requests."""
        with self._lock:
            self._stopping = True
            self._stop_reason = reason
            children = list(self._children)
        for child in reversed(children):
            if child.pending is not None:
                child.pending.cancel()
                if not child.is_supervisor and child.target.cell.mailbox.queue:
                    # Crashed, and now never restarted: what it has queued is refused.
                    with self._lock:
                        self._crashed_in_stop.append(child.name)
            if child.is_supervisor:
                child.target._ask_to_stop(reason, terminal=terminal)
            else:
                child.target.request_stop(reason, terminal=terminal)

    def _await_stop(
        self, deadline: float, reason: str, budget: float, dropped: dict[str, int]
    ) -> tuple[list[str], list[str]]:
        """Wait for the children, newest first, until ``deadline``; abandon
        those still busy then. Returns the abandoned and the crashed; puts in
        ``dropped`` how many requests each abandoned one gave up on."""
        with self._lock:
            children = list(self._children)
        abandoned: list[str] = []
        crashed: list[str] = []
        for child in reversed(children):
            if child.is_supervisor:
                more_abandoned, more_crashed = child.target._await_stop(
                    deadline, reason, budget, dropped
                )
                abandoned += more_abandoned
                crashed += more_crashed
            elif not child.target.wait_stopped(deadline):
                dropped[child.name] = child.target.abandon(
                    f"{reason}, and it was still busy when the {budget:g} s given to stop ran out"
                )
                abandoned.append(child.name)
            with self._lock:
                if child.target._child is child:
                    child.target._child = None
                    _remove_newest_first(self._children, child)
            if not child.is_supervisor:
                self.runtime._forget_cell(child.target.cell)
            self._emit([self._event("stopped", child.name)])
        with self._lock:
            crashed += [name for name in self._crashed_in_stop if name not in abandoned]
        self._emit([self._event("stopped", None)])
        return abandoned, crashed


def _remove_newest_first(children: list[ChildRecord], child: ChildRecord) -> None:
    """Remove ``child`` from ``children``, looking from the end: a subtree stops
    newest first, so each child is found at once (``list.remove`` looks from
    the front: stopping N children took O(N^2) time)."""
    for index in range(len(children) - 1, -1, -1):
        if children[index] is child:
            del children[index]
            return
