"""Stopping an actor's lifecycle: draining its mailbox, or refusing what is
queued at once, and giving up on an actor that did not stop in time.

`Lifecycle` (``_lifecycle.py``) inherits `LifecycleStop`. A stop request
(`stop_request`) is queued behind what the actor has queued, so the actor
stops once it has handled it; an idle actor (started, nothing queued, its
turn free) stops on the caller's thread instead, with no turn on a worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ._cell import Cell
from ._context import current_cell
from ._reply import Reply


class Stop:
    """The operation of a stop request: the actor stops once everything queued
    before it is handled.

    ``terminal``: for good (the handle is done). ``exit``: the actor stopped
    itself, which its supervisor may answer with a restart (permanent children).
    """

    def __init__(self, reason: str, *, terminal: bool = True, exit: bool = False) -> None:
        self.reason = reason
        self.terminal = terminal
        self.exit = exit

    def describe(self) -> str:
        return "stop()"


def stop_request(
    cell: Cell, reason: str, *, terminal: bool = True, exit: bool = False
) -> Reply[Any]:
    """Queue a stop behind what ``cell`` has queued; never blocks."""
    reply: Reply[Any] = Reply(cell, Stop(reason, terminal=terminal, exit=exit))
    cell.mailbox.put(reply)
    return reply


def queued_stop(cell: Cell) -> Stop | None:
    """The operation of the first stop request queued for ``cell``, if any."""
    for item in list(cell.mailbox.queue or ()):  # one step under the GIL
        if type(item.request) is Stop:
            return item.request
    return None


class LifecycleStop:
    """How a `Lifecycle` stops its actor; see the module."""

    __slots__ = ()

    # The lifecycle's own, set by its __init__ and methods.
    cell: Cell
    incarnation: Any  # the newest `Incarnation`, or None
    retire: Callable[[], None]

    @property
    def _lock(self) -> threading.Lock:
        """Orders starts, restarts, passivations and stops (the lifecycle's)."""
        raise NotImplementedError

    # -- stopping ------------------------------------------------------------------------------

    def is_running(self) -> bool:
        """Whether an incarnation takes requests (or is starting to)."""
        incarnation = self.incarnation
        return incarnation is not None and not incarnation.retired

    def request_stop(self, reason: str, *, terminal: bool = True) -> None:
        """Ask the actor to stop once it has handled what is queued now.

        With no incarnation running (a crashed one waiting for its restart, or
        one already stopped), it stops at once and what is queued is refused.
        Does not wait: see `wait_stopped`.
        """
        if self.is_running() and self.cell.mailbox.closed_reason is None:
            if not self._stop_if_idle(reason, terminal):
                stop_request(self.cell, reason, terminal=terminal)
            return
        self.stop_now(reason, terminal=terminal)

    def _stop_if_idle(self, reason: str, terminal: bool) -> bool:
        """Stop a started actor with nothing queued and its turn free on the
        calling thread, as its stop request would: no turn on a worker for it.
        False (nothing done) if it is not idle."""
        cell = self.cell
        mailbox = cell.mailbox
        incarnation = self.incarnation
        if (
            incarnation is None
            or not incarnation.started
            or mailbox.queue
            or current_cell.get() is cell
        ):
            return False
        turn = self._take_idle_turn()
        if not turn:
            return False
        try:
            if self.incarnation is not incarnation:
                return False
            cell.messages += 1  # as the stop request would count
            if terminal:
                cell.stop_reason = reason
            mailbox.close(reason)
            incarnation.retire(end_here=True)
            return True
        finally:
            self._give_back_turn(turn)

    def _take_idle_turn(self) -> int:
        """Take the cell's turn if its actor is idle: started, taking requests,
        nothing queued and nobody running it: its token; 0 (nothing taken) if not.
        Give it back with `_give_back_turn`."""
        cell = self.cell
        mailbox = cell.mailbox
        turn = mailbox.take_turn()
        if not turn:
            return 0  # running a message, or handed to a worker
        if not mailbox.queue and cell.ready and mailbox.closed_reason is None:
            return turn
        self._give_back_turn(turn)
        return 0

    def _give_back_turn(self, turn: int) -> None:
        mailbox = self.cell.mailbox
        mailbox.give_turn(turn)
        if mailbox.queue:
            mailbox.kick()  # a message came while the turn was held

    def stop_now(self, reason: str, *, terminal: bool = True) -> None:
        """Refuse what is queued and anything sent from now on, and end the
        incarnation after its current message."""
        cell = self.cell
        if terminal and cell.stop_reason is None:
            cell.stop_reason = reason
        mailbox = cell.mailbox
        with self._lock:  # a passivation or an activation sees it closed, or it sees them
            running = self.is_running()
            if mailbox.closed_reason is None:
                mailbox.closed_reason = reason
        mailbox.close(reason)  # and answer what is queued
        self.retire()
        if not running:
            if terminal:
                cell.release()
            cell.mark_stopped()

    def wait_stopped(self, deadline: float) -> bool:
        """Wait until the actor has stopped and its worker ended, at the latest
        until ``deadline`` (on `time.monotonic`). True if it stopped.

        Called on the actor's own turn (a supervisor above it giving up while
        it handles its crash, or one of its handlers stopping its supervisor),
        nothing is waited for: its worker ends only after that turn, so the
        wait could only run out the deadline while the turn held its thread
        (and the actor be abandoned as if it had hung). True then: its stop
        is under way (its incarnation retired, or a stop request queued) and
        completes once that turn ends, as `stop` does for itself.
        """
        cell = self.cell
        if current_cell.get() is cell:
            return True
        longest = threading.TIMEOUT_MAX  # a deadline of 1e300 s: wait that long
        cell.wait_stopped(min(longest, max(0.0, deadline - time.monotonic())))
        incarnation = self.incarnation
        worker = incarnation.worker if incarnation is not None else None
        if worker is not None:
            worker.join(min(longest, max(0.0, deadline - time.monotonic())))
        return cell.is_stopped

    def stop(self, reason: str, timeout: float, *, wait: bool, terminal: bool = True) -> None:
        """Stop the actor: after draining its mailbox when ``wait`` and it runs,
        waiting up to ``timeout`` seconds; at once otherwise.

        A ``terminal`` stop is for good; otherwise (a supervisor giving up) its
        supervisor's parent may restart it later.
        """
        if wait and self.is_running() and self.cell.mailbox.closed_reason is None:
            self.request_stop(reason, terminal=terminal)
            if current_cell.get() is not self.cell:  # it cannot wait for itself
                self.wait_stopped(time.monotonic() + timeout)
            return
        self.stop_now(reason, terminal=terminal)

    def abandon(self, reason: str) -> int:
        """Give up on an actor that did not stop in time.

        Its running incarnation is fenced (whatever it still runs commits
        nothing and is answered with `ActorStopped`), an async hook it awaits
        is cancelled, and every queued request is refused with ``reason``.
        Returns how many requests it gives up on so: the one running, if
        any, and those queued.
        """
        cell = self.cell
        mailbox = cell.mailbox
        # Counted before the refusal: a request running holds the turn; a
        # stop request queued is the runtime's, not work given up.
        queued = mailbox.queue
        waiting = [] if queued is None else list(queued)  # one step under the GIL
        dropped = sum(not isinstance(item.request, Stop) for item in waiting)
        dropped += 1 if mailbox.turn else 0
        with cell.commit_lock:
            cell.generation += 1
            inflight, cell.inflight = cell.inflight, None
            awaiting = cell.awaiting
        if cell.stop_reason is None:
            cell.stop_reason = reason
        cell.mailbox.close(reason)
        self.retire()
        if inflight is not None:  # watched by a deadline: no one else answers it now
            cell._answer_fenced(inflight)
        if awaiting is not None:
            awaiting.cancel()
        cell.release()
        return dropped
