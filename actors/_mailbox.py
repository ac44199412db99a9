"""An actor's mailbox, kept across restarts, and its *turn*.

Sending is a deque append (atomic under the GIL) plus one try-lock. The
mailbox outlives the actor's incarnations: when one crashes, the requests
queued behind the crashing one wait here for the next.

The *turn* is the right to run the actor's messages: whoever holds it runs
them, one at a time, in order. Nobody waits for it. A sender that appends to
the queue and finds the turn free takes it and calls `Mailbox.dispatch` (set
by the cell's lifecycle), which hands it to a host's worker: so a cell is
scheduled when its mailbox goes from empty to non-empty. Whoever gives the
turn up looks at the queue once more afterwards (`Mailbox.kick`), so a
message appended while the turn was held is never left behind. A blocking
call that finds the queue empty and the turn free may take the turn and run
its message on its own thread (an inline call).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

from ._reply import Reply


def _nobody_serves(mailbox: Mailbox) -> None:
    mailbox.turn.release()  # no lifecycle yet: the first start dispatches


class Mailbox:
    """FIFO of requests (`Reply` objects), in the order sent, and the turn."""

    __slots__ = ("_refuse", "closed_reason", "dispatch", "queue", "turn")

    def __init__(self, refuse: Callable[[Reply[Any]], None]) -> None:
        self.queue: collections.deque[Any] = collections.deque()
        #: Held by whoever runs the actor's messages. A deadline fence gives
        #: the mailbox a new one while the hung run keeps the old one.
        self.turn = threading.Lock()
        self._refuse = refuse
        self.closed_reason: str | None = None
        #: Called with the turn held when there may be work: hands the turn
        #: to a worker, or releases it (and looks again) if nobody serves.
        self.dispatch: Callable[[], None] = lambda: _nobody_serves(self)

    # -- senders ---------------------------------------------------------------------

    def put(self, item: Reply[Any]) -> None:
        """Queue ``item``; a request put after `close` is answered as refused."""
        if self.closed_reason is not None:
            self._refuse(item)
            return
        self.queue.append(item)
        if self.closed_reason is not None:
            # close() may have drained the queue between our check and our
            # append: whoever sees it closed after appending drains again.
            self.refuse_queued()
            return
        turn = self.turn
        if turn.acquire(False):  # the actor was idle: schedule it
            if turn is self.turn:
                self.dispatch()
            else:  # a turn replaced by a fence meanwhile: look at the new one
                turn.release()
                self.kick()

    def kick(self) -> None:
        """Take the turn for queued work if nobody holds it, and dispatch."""
        while True:
            turn = self.turn
            if not turn.acquire(False):
                return  # its holder looks at the queue when it gives the turn up
            if turn is self.turn:
                self.dispatch()
                return
            turn.release()

    def empty(self) -> bool:
        return not self.queue

    def qsize(self) -> int:
        return len(self.queue)

    # -- closing -------------------------------------------------------------------------

    def close(self, reason: str) -> None:
        """Refuse requests from now on, and answer every request still queued."""
        if self.closed_reason is None:
            self.closed_reason = reason
        self.refuse_queued()

    def reopen(self) -> None:
        """Take requests again (a stopped actor that its supervisor restarts)."""
        self.closed_reason = None

    def refuse_queued(self) -> None:
        while True:
            try:
                item = self.queue.popleft()
            except IndexError:
                return
            self._refuse(item)
