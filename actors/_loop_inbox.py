"""Replies reach an event loop in batches: one wake-up for many answers.

A task awaiting a `Reply` waits on a future of its event loop. The answer is
mostly set on another thread (a host's worker), and waking the loop from
another thread costs a write to its self-pipe and a trip round the loop
(``call_soon_threadsafe``). So answers for a loop go through that loop's
`LoopInbox`: a thread that sets an answer appends the waiting future to the
inbox's deque, and only the append that finds no drain pending schedules
one. The drain runs on the loop and resolves every future queued by then. A
thousand answers set while the loop is busy cost it one wake-up, not a
thousand.

The discipline is the mailbox's (`_mailbox.py`): whoever empties the inbox
looks once more. The inbox holds one *token*; a sender that appended takes it
(``list.pop`` is atomic) and schedules the drain; a sender that finds it
taken does nothing, since the drain it is waiting for has not put the token
back yet. The drain puts the token back *before* it empties the deque, so a
future appended after that point finds the token and schedules a new drain,
and one appended before is in the deque this drain empties. Nothing is left
behind, and at most one drain is pending at a time.

There is one inbox per loop and thread that awaits (a thread runs one loop at
a time; `inbox_for` keeps the current one of each thread), so no registry of
loops outlives them.
"""

from __future__ import annotations

import asyncio
import collections
import threading


class LoopInbox:
    """Futures of one event loop, resolved there in batches; see the module."""

    __slots__ = ("_queue", "_token", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._queue: collections.deque[asyncio.Future[bool]] = collections.deque()
        # One token while no drain is pending; empty while one is.
        self._token = [True]

    def deliver(self, waiter: asyncio.Future[bool], _done: object = None) -> None:
        """Resolve ``waiter`` (with True) on its loop: at once when called on
        that loop, else in the next drain there (scheduled if none is pending).

        It is a done-callback of a `Reply` (``_done`` is the reply), so it runs
        on whichever thread sets the answer, and never raises.
        """
        if asyncio._get_running_loop() is self.loop:
            resolve(waiter)  # the answer was set on the loop itself: no wake-up needed
            return
        self._queue.append(waiter)
        try:
            self._token.pop()
        except IndexError:
            return  # a drain is pending and has not started: it takes this one too
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:
            # The loop has closed: nobody awaits there any more. Give the token
            # back, so that the next answer finds the same and drops its own.
            self._queue.clear()
            self._token.append(True)

    def _drain(self) -> None:
        """On the loop: resolve every future queued (the scheduled callback)."""
        self._token.append(True)  # first: a future appended from now on schedules anew
        queue = self._queue
        while True:
            try:
                waiter = queue.popleft()
            except IndexError:
                return
            resolve(waiter)

    def pending(self) -> int:
        """How many futures wait for the next drain."""
        return len(self._queue)


def resolve(waiter: asyncio.Future[bool], answered: bool = True) -> None:
    """Set ``waiter``'s result unless it is done (or was cancelled) already;
    on its loop's thread."""
    if not waiter.done():
        waiter.set_result(answered)


class _Current(threading.local):
    inbox: LoopInbox | None = None


_current = _Current()


def inbox_for(loop: asyncio.AbstractEventLoop) -> LoopInbox:
    """The inbox of ``loop``, the loop running on the calling thread."""
    inbox = _current.inbox
    if inbox is None or inbox.loop is not loop:
        _current.inbox = inbox = LoopInbox(loop)
    return inbox


def expire(waiter: asyncio.Future[bool]) -> None:
    """A wait's timer: resolve ``waiter`` with False (no answer in time)."""
    resolve(waiter, False)


__all__ = ["LoopInbox", "expire", "inbox_for", "resolve"]
