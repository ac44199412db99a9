"""An actor's mailbox, kept across restarts, and each incarnation's view of it.

Sending is a deque append (atomic under the GIL) plus, only when the actor
sleeps, a wake-up. The mailbox outlives the actor's incarnations: when one
crashes, the requests queued behind the crashing one wait here for the next.

Each incarnation (one pykka actor, one thread) reads the mailbox through its
own `Inbox`. Retiring an incarnation gives its inbox a private stop message,
so a retired or fenced incarnation never takes another request from the
shared queue, and pykka's end-of-life drain of "its" inbox takes nothing.

The *turn* (`Cell.turn`) is the right to run one of the actor's messages. An
incarnation holds it while awake and gives it up to sleep; a blocking call
that finds the mailbox empty and the actor idle may take it and run its
message on the calling thread (see `Cell.try_inline`).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

from ._reply import Reply


class Inbox:
    """One incarnation's view of the mailbox; what pykka sees as ``actor_inbox``."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox
        self.turn: threading.Lock | None = None  # set by the incarnation when it starts
        self.control: collections.deque[Any] = collections.deque()
        self.retired = False
        self.wakeup = threading.Lock()
        self.wakeup.acquire()

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        # pykka's own messages (its stop) stay with this incarnation.
        self.control.append(item)
        self.mailbox.wake(self)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        return self.mailbox.take(self)

    def empty(self) -> bool:
        return not self.control and (self.retired or self.mailbox.empty())

    def qsize(self) -> int:
        return len(self.control) + (0 if self.retired else self.mailbox.qsize())


class Envelope:
    """What pykka's loop takes from an inbox: the message and no pykka future
    (the `Reply` is our own future)."""

    __slots__ = ("message",)
    reply_to = None

    def __init__(self, message: Reply[Any]) -> None:
        self.message = message


class Mailbox:
    """FIFO of requests (`Reply` objects), in the order sent."""

    def __init__(self, refuse: Callable[[Reply[Any]], None]) -> None:
        self.queue: collections.deque[Any] = collections.deque()
        self._mutex = threading.Lock()
        self._sleeper: Inbox | None = None
        self._refuse = refuse
        self.closed_reason: str | None = None

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
        if self._sleeper is not None:
            self.wake(None)

    def wake(self, inbox: Inbox | None) -> None:
        """Wake the sleeping incarnation (only if it is ``inbox``, when given)."""
        with self._mutex:
            sleeper = self._sleeper
            if sleeper is None or (inbox is not None and sleeper is not inbox):
                return
            self._sleeper = None
            sleeper.wakeup.release()

    # -- the incarnation's side ----------------------------------------------------------

    def take(self, inbox: Inbox) -> Any:
        """The next envelope for ``inbox`` (what pykka's loop takes: a request
        is wrapped in one); sleeps (without the turn) while there is none."""
        queue = self.queue
        control = inbox.control
        while True:
            if control:
                return control.popleft()
            if not inbox.retired:
                try:
                    return Envelope(queue.popleft())
                except IndexError:
                    pass
            # Register as the sleeper first, then look again: a sender that
            # appends after our look sees us registered and wakes us.
            with self._mutex:
                self._sleeper = inbox
            if control or (queue and not inbox.retired):
                with self._mutex:
                    if self._sleeper is inbox:
                        self._sleeper = None
                    else:
                        inbox.wakeup.acquire()  # a sender already woke us: take that
                continue
            turn = inbox.turn
            if turn is not None:
                turn.release()
            inbox.wakeup.acquire()
            if turn is not None:
                turn.acquire()

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
