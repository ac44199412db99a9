"""Backpressure: a bound on the requests waiting in an actor's mailbox, and
senders that wait for room in it.

An actor's *mailbox limit* (its handle's ``mailbox_limit=``, else its
runtime's default) bounds the requests *waiting* in its mailbox: not the one
it runs, which it has taken off the queue, and not a blocking call that runs
inline on an idle actor, which never queues. A sender counts and appends
under a lock shared by many mailboxes (`Mailbox.offer`), so senders that
offer never queue more than the limit between them. When the mailbox is at
its limit:

- a ``request_*`` call raises `MailboxFull` at once (the handle does);
- a blocking call waits for room within its timeout (`send_when_room`), and
  on timeout raises `ActorTimeout` with nothing sent;
- an awaited call suspends until there is room (`asend_when_room`), leaving
  the event loop free, and is queued as a blocking one is.

Room appears when the holder of the actor's turn takes a message off the
queue: it then wakes one waiter (`room_made`). Waiters live in one dict
shared by every mailbox, `waiting`, and only while someone waits, so the
turn pays one truth test per message taken and a mailbox pays nothing.
Closing a mailbox wakes every waiter (`wake_all`): each then finds it closed
and its request is refused with the stopped error, as any request sent to a
closed mailbox is. A waiter woken that leaves without sending (a timeout, a
cancellation) passes the wake on, so room never goes unseen.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from typing import Any, Protocol

from stateward.core import ArgumentTypeError, ArgumentValueError

from ._errors import ActorTimeout, MailboxFull
from .stores._group_commit import flush_staged

__all__ = [
    "asend_when_room",
    "check_mailbox_limit",
    "is_full",
    "room_made",
    "send_when_room",
    "waiting",
    "wake_all",
]


class Bounded(Protocol):
    """What backpressure needs of a mailbox (a `Mailbox`, same layer)."""

    queue: collections.deque[Any] | None
    closed_reason: str | None

    def offer(self, item: Any, limit: int) -> bool: ...


class Sent(Protocol):
    """What backpressure reads of the request it sends (a `Reply`)."""

    @property
    def actor(self) -> str: ...

    def describe(self) -> str: ...


def check_mailbox_limit(value: Any, call: str, outcome: str) -> int | None:
    """A ``mailbox_limit=``: None (no limit of its own), or an int >= 1."""
    if value is None:
        return None
    if type(value) is not int:
        raise ArgumentTypeError(
            call,
            "mailbox_limit",
            "None or an int >= 1 (how many requests may wait in the mailbox)",
            value,
            "Pass mailbox_limit=1000, say, or leave it out for no limit.",
            outcome=outcome,
        )
    if value < 1:
        raise ArgumentValueError(
            call,
            "mailbox_limit",
            "None or an int >= 1 (how many requests may wait in the mailbox)",
            value,
            "A mailbox needs room for one request at least; leave it out for no limit.",
            outcome=outcome,
        )
    return value


def is_full(mailbox: Bounded, limit: int) -> bool:
    """Whether ``limit`` requests (or more) wait in ``mailbox``, which takes requests."""
    queue = mailbox.queue
    return queue is not None and len(queue) >= limit and mailbox.closed_reason is None


# -- who waits -----------------------------------------------------------------------------


class _Waiter:
    """One sender waiting for room in one mailbox; woken at most once."""

    __slots__ = ()

    def wake(self) -> None:
        raise NotImplementedError


class _ThreadWaiter(_Waiter):
    """A blocked thread: a lock held until it is woken."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def wake(self) -> None:
        self._lock.release()

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds``; True if woken."""
        return self._lock.acquire(True, min(seconds, threading.TIMEOUT_MAX))


class _LoopWaiter(_Waiter):
    """A suspended coroutine: a future of its loop, resolved from any thread."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()

    def wake(self) -> None:
        try:
            self.loop.call_soon_threadsafe(_resolve, self.future)
        except RuntimeError:  # the loop has closed: its wait ended long ago
            pass


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


#: The mailboxes that senders wait for room in, and their waiters, oldest
#: first; a mailbox is here only while someone waits. Never rebound: the turn
#: (`Incarnation.run_turn`) tests it by the name it imported.
waiting: dict[Bounded, collections.deque[_Waiter]] = {}
_lock = threading.Lock()


def _enlist(mailbox: Bounded, waiter: _Waiter) -> None:
    with _lock:
        waiters = waiting.get(mailbox)
        if waiters is None:
            waiting[mailbox] = waiters = collections.deque()
        waiters.append(waiter)


def _leave(mailbox: Bounded, waiter: _Waiter) -> None:
    """Take ``waiter`` off the list; if it was woken meanwhile (no longer on
    it), pass the wake on: the room it signals is somebody else's now."""
    with _lock:
        waiters = waiting.get(mailbox)
        try:
            waiters.remove(waiter)  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            woken = True
        else:
            woken = False
            if not waiters:
                del waiting[mailbox]
    if woken:
        room_made(mailbox)


def room_made(mailbox: Bounded) -> None:
    """A request left ``mailbox``'s queue: wake the oldest sender waiting for room."""
    if mailbox not in waiting:  # others wait, not for this one: no lock taken
        return  # (one enlisting now looks for room itself once it is on the list)
    with _lock:
        waiters = waiting.get(mailbox)
        if waiters is None:
            return
        waiter = waiters.popleft()
        if not waiters:
            del waiting[mailbox]
    waiter.wake()


def wake_all(mailbox: Bounded) -> None:
    """``mailbox`` closed: wake every sender waiting for room (each is then refused)."""
    with _lock:
        waiters = waiting.pop(mailbox, None)
    for waiter in waiters or ():
        waiter.wake()


# -- waiting -------------------------------------------------------------------------------


def _timed_out(actor: str, message: str, limit: int, seconds: float) -> ActorTimeout:
    error = ActorTimeout(
        actor,
        message,
        seconds,
        started=False,
        fate=f"its mailbox stayed at its limit of {limit} waiting requests, so it was not sent",
    )
    error.__cause__ = MailboxFull(actor, limit, message)
    return error


def send_when_room(mailbox: Bounded, item: Sent, limit: int, seconds: float) -> float:
    """Queue ``item`` in ``mailbox`` once fewer than ``limit`` requests wait
    there, blocking up to ``seconds``; return the seconds left.

    Raises:
        ActorTimeout: no room in time; nothing was sent.
    """
    deadline = time.monotonic() + seconds
    flush_staged()  # on a pooled worker: what it staged is answered before it blocks
    while True:
        waiter = _ThreadWaiter()
        _enlist(mailbox, waiter)
        try:
            if mailbox.offer(item, limit):  # room, or closed (then refused): done
                _leave(mailbox, waiter)
                return max(0.0, deadline - time.monotonic())
            if waiter.wait(deadline - time.monotonic()):
                continue  # woken: room was made, or the mailbox closed
        except BaseException:
            _leave(mailbox, waiter)
            raise
        _leave(mailbox, waiter)
        raise _timed_out(item.actor, item.describe(), limit, seconds)


async def asend_when_room(mailbox: Bounded, item: Sent, limit: int, seconds: float) -> float:
    """`send_when_room` for a coroutine: suspend (the event loop stays free)
    until ``item`` is queued in ``mailbox``, at most ``seconds``; return the
    seconds left. Queued by `Mailbox.offer`, as every bounded sender is, so
    awaited and blocking senders never queue more than ``limit`` between them.

    Raises:
        ActorTimeout: no room in time; nothing was sent.
        asyncio.CancelledError: the awaiting task was cancelled; nothing was sent.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        waiter = _LoopWaiter(loop)
        _enlist(mailbox, waiter)
        try:
            if mailbox.offer(item, limit):  # room, or closed (then refused): done
                _leave(mailbox, waiter)
                return max(0.0, deadline - loop.time())
            async with asyncio.timeout_at(deadline):
                await waiter.future  # woken: room was made, or the mailbox closed
        except TimeoutError:
            _leave(mailbox, waiter)
            error = _timed_out(item.actor, item.describe(), limit, seconds)
            raise error from error.__cause__  # not the loop's own TimeoutError
        except BaseException:
            _leave(mailbox, waiter)
            raise
