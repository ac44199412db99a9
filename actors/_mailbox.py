"""An actor's mailbox: a FIFO that refuses requests once closed, and the actor's turn.

Sending is a deque append (atomic under the GIL) plus, only when the actor is
asleep, a wake-up. The actor thread takes messages with `get`, which pykka's
loop calls; when the mailbox is empty it sleeps until the next `put`.

The *turn* is the right to run one of this actor's messages. The actor thread
holds it whenever it is awake and gives it up only to sleep. A blocking call
that finds the mailbox empty and the turn free may take the turn and run its
own message on the calling thread (`try_inline`), which saves two thread
switches and keeps every guarantee: one message at a time, each sender's
messages in the order sent (an empty mailbox means nothing of the caller's is
still waiting), and the published snapshot as the only shared value.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

from ._reply import Reply


class Mailbox:
    """FIFO of envelopes (objects with ``.message`` and ``.reply_to``) for pykka's loop."""

    def __init__(self, refuse: Callable[[Reply[Any]], None]) -> None:
        self._queue: collections.deque[Any] = collections.deque()
        self._mutex = threading.Lock()
        self._wakeup = threading.Lock()
        self._wakeup.acquire()
        self._sleeping = False
        self._refuse = refuse
        self.turn = threading.Lock()
        self.closed_reason: str | None = None

    # -- senders ---------------------------------------------------------------------

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Queue ``item``; a request put after `close` is answered as refused."""
        if self.closed_reason is not None and type(item.message) is Reply:
            self._refuse(item.message)
            return
        self._queue.append(item)
        if self.closed_reason is not None:
            # close() may have drained the queue between our check and our
            # append: whoever sees it closed after appending drains again.
            self._refuse_queued()
            return
        if self._sleeping:
            self._wake()

    def _wake(self) -> None:
        with self._mutex:
            if self._sleeping:
                self._sleeping = False
                self._wakeup.release()

    def try_inline(self) -> bool:
        """Take the turn if the actor is idle and nothing is queued.

        On True the caller runs its message itself and must `end_inline` after.
        """
        if self._queue or self.closed_reason is not None:
            return False
        if not self.turn.acquire(False):
            return False
        if self._queue or self.closed_reason is not None:
            self.turn.release()
            if self._sleeping:
                self._wake()
            return False
        return True

    def end_inline(self) -> None:
        self.turn.release()
        if self._queue and self._sleeping:  # a message arrived while we ran
            self._wake()

    # -- the actor thread ------------------------------------------------------------------

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """The next envelope; sleeps (without the turn) while there is none."""
        queue = self._queue
        while True:
            try:
                return queue.popleft()
            except IndexError:
                pass
            with self._mutex:
                if queue:
                    continue
                self._sleeping = True
            self.turn.release()
            self._wakeup.acquire()
            self.turn.acquire()

    def empty(self) -> bool:
        return not self._queue

    def qsize(self) -> int:
        return len(self._queue)

    # -- closing -------------------------------------------------------------------------

    def close(self, reason: str) -> None:
        """Refuse requests from now on, and answer every request still queued."""
        if self.closed_reason is None:
            self.closed_reason = reason
        self._refuse_queued()

    def _refuse_queued(self) -> None:
        kept = []
        while True:
            try:
                item = self._queue.popleft()
            except IndexError:
                break
            if type(item.message) is Reply:
                self._refuse(item.message)
            else:
                kept.append(item)  # pykka's own stop message: the actor needs it
        for item in kept:
            self._queue.append(item)
        if kept and self._sleeping:
            self._wake()
