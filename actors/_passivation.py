"""Virtual actors: idle actors leave memory and come back on their next message.

A runtime made with ``idle_after=`` or ``max_active=`` passivates idle actors
(`Lifecycle.passivate`): their incarnation ends (so a pooled worker or a
dedicated thread is no longer theirs) and their snapshot is dropped; it is in
the store already, since nothing is published before its commit. Their handle
stays valid: the next message activates the actor, with a new incarnation that
recovers from the store exactly as a restart does, and messages sent meanwhile
wait in its mailbox, in order.

Which actors count as idle is decided with one bit per cell (``Cell.used``,
set by every request it runs) and the second-chance (clock) rule, so the
per-message cost is one attribute write:

- ``idle_after=S``: every S seconds a sweep passivates the active actors that
  ran no request since the previous sweep, and clears the bit of the others.
  An actor is thus passivated between S and 2 S seconds after its last request.
- ``max_active=N``: when an activation (or a creation) makes more than N
  actors active, the longest active ones are looked at first: one used since
  it was last looked at gets its bit cleared and a second chance, an idle one
  is passivated, a busy one (running or with messages queued) is skipped.
  Busy actors are never passivated, so N is a target that a burst of busy
  actors may exceed for as long as they stay busy.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ._clock import Cancel, Timer
from ._lifecycle import Lifecycle

logger = logging.getLogger("stateward.actors")


class Passivation:
    """Passivates one runtime's idle actors (see the module docstring)."""

    def __init__(self, timer: Timer, idle_after: float | None, max_active: int | None) -> None:
        self.timer = timer
        self.idle_after = idle_after
        self.max_active = max_active
        self._lock = threading.Lock()
        #: The active actors, oldest activation first (a dict as an ordered set).
        self._active: dict[Lifecycle, None] = {}
        self.passivations = 0
        self.activations = 0
        self._closed = False
        self._sweep_timer: Cancel | None = None
        if idle_after is not None:
            self._schedule()

    # -- activation -------------------------------------------------------------------------

    def activated(self, lifecycle: Lifecycle, was_passive: bool) -> None:
        """An incarnation of ``lifecycle`` started (its worker or an inline caller
        holds the cell's turn): count it active, and make room past ``max_active``."""
        with self._lock:
            active = self._active
            active.pop(lifecycle, None)
            active[lifecycle] = None
            if was_passive:
                self.activations += 1
            excess = 0 if self.max_active is None else len(active) - self.max_active
        if excess > 0:
            self._make_room(excess)

    def _make_room(self, excess: int) -> None:
        """Passivate up to ``excess`` idle actors, the longest active first.

        Looks at no more than twice the active count (each gets at most one
        second chance), so a crowd of busy actors cannot make it spin.
        """
        with self._lock:
            budget = 2 * len(self._active)
        while excess > 0 and budget > 0:
            budget -= 1
            with self._lock:
                if not self._active:
                    return
                lifecycle = next(iter(self._active))
                del self._active[lifecycle]
            cell = lifecycle.cell
            if cell.is_stopped or cell.mailbox.closed_reason is not None:
                excess -= 1  # stopped: no longer active
                continue
            if cell.used:
                cell.used = False  # a second chance, at the back
            elif self._passivate(lifecycle):
                excess -= 1
                continue
            with self._lock:
                # Not one passivated or stopped meanwhile: a stop closes the
                # mailbox before the runtime forgets it (`forget`, under this lock).
                if (
                    lifecycle not in self._active
                    and not cell.passive
                    and cell.mailbox.closed_reason is None
                ):
                    self._active[lifecycle] = None

    # -- the idle sweep ---------------------------------------------------------------------

    def _schedule(self) -> None:
        assert self.idle_after is not None
        self._sweep_timer = self.timer.call_later(self.idle_after, self._sweep)

    def _sweep(self) -> None:
        """Passivate the actors that ran no request since the last sweep."""
        with self._lock:
            if self._closed:
                return
            candidates = list(self._active)
        try:
            for lifecycle in candidates:
                cell = lifecycle.cell
                if cell.used:
                    cell.used = False
                elif cell.is_stopped or cell.mailbox.closed_reason is not None:
                    self.forget(lifecycle)
                else:
                    self._passivate(lifecycle)
        except Exception:  # pragma: no cover - passivate only reads and retires
            logger.exception("passivating idle actors failed")
        finally:
            with self._lock:
                if not self._closed:
                    self._schedule()

    # -- passivating ------------------------------------------------------------------------

    def passivate_idle(self) -> int:
        """Passivate every actor idle now, whatever its bit; how many were."""
        with self._lock:
            candidates = list(self._active)
        return sum(1 for lifecycle in candidates if self._passivate(lifecycle))

    def _passivate(self, lifecycle: Lifecycle) -> bool:
        if not lifecycle.passivate():
            return False
        self.forget(lifecycle)
        with self._lock:
            self.passivations += 1
        return True

    def forget(self, lifecycle: Lifecycle) -> None:
        """No longer count ``lifecycle`` active: passivated, or stopped for
        good (the runtime forgets it: `Runtime._forget_cell`), after which
        nothing here may keep its cell and snapshot alive."""
        with self._lock:
            self._active.pop(lifecycle, None)

    def counts(self) -> dict[str, Any]:
        with self._lock:
            return {"passivations": self.passivations, "activations": self.activations}

    def close(self) -> None:
        """Stop sweeping (the runtime is shutting down)."""
        with self._lock:
            self._closed = True
            timer, self._sweep_timer = self._sweep_timer, None
        if timer is not None:
            timer.cancel()
