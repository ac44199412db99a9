"""An actor's mailbox, kept across restarts, and its *turn*.

Sending is a deque append (atomic under the GIL) plus one try-lock. The
mailbox outlives the actor's incarnations: when one crashes, the requests
queued behind the crashing one wait here for the next.

The *turn* is the right to run the actor's messages: whoever holds it runs
them, one at a time, in order. Nobody waits for it, so it is no lock: it is
a number in the mailbox (`Mailbox.turn`), 0 while free, else the token its
holder took (`take_turn`), set and cleared under a lock shared by many
mailboxes. A sender that appends to
the queue and finds the turn free takes it and calls its cell's `dispatch`
(the cell's lifecycle's), which hands it to a host's worker: so a cell is
scheduled when its mailbox goes from empty to non-empty. Whoever gives the
turn up looks at the queue once more afterwards (`Mailbox.kick`), so a
message appended while the turn was held is never left behind. A blocking
call that finds the queue empty and the turn free may take the turn and run
its message on its own thread (an inline call).

A sender to an actor with a mailbox limit offers instead of putting
(`Mailbox.offer`): it is refused, nothing queued, when the limit is reached
(see `_backpressure`). The limit is not the mailbox's: it is passed in.
"""

from __future__ import annotations

import collections
import itertools
import threading
from typing import Any, Protocol

from ._backpressure import waiting, wake_all
from ._reply import Reply

#: How many locks guard the making and dropping of queues, for all mailboxes.
_QUEUE_STRIPES = 64
_queue_locks = tuple(threading.Lock() for _ in range(_QUEUE_STRIPES))
#: ... and the taking and giving back of turns.
_turn_locks = tuple(threading.Lock() for _ in range(_QUEUE_STRIPES))
#: ... and the counting and appending of senders that offer (`Mailbox.offer`).
_room_locks = tuple(threading.Lock() for _ in range(_QUEUE_STRIPES))
#: Turn tokens: each taking of a turn gets a new one (`next` is atomic).
_tokens = itertools.count(1)


class Owner(Protocol):
    """What a mailbox needs of its cell (a `Cell`, one layer up)."""

    def _refuse(self, reply: Reply[Any]) -> None:
        """Answer ``reply`` as refused: the actor has stopped."""

    def dispatch(self, turn: int) -> None:
        """Called with ``turn`` held when there may be work: hand the turn to
        a worker, or give it back (and look again) if nobody serves."""


class Mailbox:
    """FIFO of requests (`Reply` objects), in the order sent, and the turn.

    The queue (a deque) exists only while requests wait: an idle mailbox has
    none. Senders make it (under a lock shared by many mailboxes, so two
    senders never make two); the holder of the turn drops it when it finds
    it empty (`drop_queue`). A sender that appended to a queue dropped meanwhile
    finds it no longer the mailbox's and moves what it holds to the current
    one (`_rescue`): nothing sent is lost, and a sender's requests stay in
    the order sent.
    """

    __slots__ = ("closed_reason", "owner", "queue", "turn", "turn_lock")

    def __init__(self, owner: Owner) -> None:
        #: The requests waiting, oldest first; None when none wait.
        self.queue: collections.deque[Any] | None = None
        #: 0 while nobody runs the actor's messages, else the token of
        #: whoever does. A deadline fence frees it while the hung run still
        #: holds its token: that token gives back nothing any more.
        self.turn = 0
        #: Guards the taking and giving back of the turn: shared with other
        #: mailboxes (one of `_turn_locks`), never held while a turn runs.
        self.turn_lock = _turn_locks[(id(self) >> 4) % _QUEUE_STRIPES]
        #: Who serves it: its cell, then the cell's lifecycle (see `Owner`).
        self.owner = owner
        self.closed_reason: str | None = None

    # -- senders ---------------------------------------------------------------------

    def put(self, item: Reply[Any]) -> None:
        """Queue ``item``; a request put after `close` is answered as refused."""
        if self.closed_reason is not None:
            self.owner._refuse(item)
            return
        queue = self.queue
        if queue is None:
            queue = self._open()
        queue.append(item)
        if self.queue is not queue:  # dropped meanwhile: move to the current one
            self._rescue(queue)
        if self.closed_reason is not None:
            # close() may have drained the queue between our check and our
            # append: whoever sees it closed after appending drains again.
            self.refuse_queued()
            return
        if not self.turn:
            turn = self.take_turn()
            if turn:  # the actor was idle: schedule it
                self.owner.dispatch(turn)

    def offer(self, item: Reply[Any], limit: int) -> bool:
        """Queue ``item`` as `put` does, unless ``limit`` requests wait
        already: then False, and nothing is queued (see `_backpressure`).

        Senders that offer count and append under one lock of a set shared by
        many mailboxes, and the turn only takes requests off the queue, so
        they never queue more than ``limit`` between them. A request offered
        after `close` is answered as refused (True: it was dealt with)."""
        if self.closed_reason is None:
            with _room_locks[(id(self) >> 4) % _QUEUE_STRIPES]:
                queue = self.queue
                if queue is not None and len(queue) >= limit:
                    return False
                if queue is None:
                    queue = self._open()
                queue.append(item)
                if self.queue is not queue:  # dropped meanwhile: move to the current one
                    self._rescue(queue)
            if self.closed_reason is None:
                if not self.turn:
                    turn = self.take_turn()
                    if turn:  # the actor was idle: schedule it
                        self.owner.dispatch(turn)
                return True
            self.refuse_queued()  # closed meanwhile: as in `put`
            return True
        self.owner._refuse(item)
        return True

    def _open(self) -> collections.deque[Any]:
        with _queue_locks[(id(self) >> 4) % _QUEUE_STRIPES]:
            queue = self.queue
            if queue is None:
                self.queue = queue = collections.deque()
            return queue

    def _rescue(self, orphan: collections.deque[Any]) -> None:
        """Put what ``orphan`` (a queue dropped after we read it) holds back in
        the mailbox: as the queue itself if there is none, else behind it."""
        with _queue_locks[(id(self) >> 4) % _QUEUE_STRIPES]:
            current = self.queue
            if current is orphan:
                return
            if current is None:
                self.queue = orphan
                return
            while True:
                try:
                    current.append(orphan.popleft())
                except IndexError:
                    return

    def drop_queue(self, queue: collections.deque[Any]) -> None:
        """Drop ``queue``, found empty by the holder of the turn, unless a
        request arrived meanwhile.

        No lock: only the holder drops, and a queue is made only where there
        is none (`_open`, under the lock), so nobody replaces it meanwhile. A
        request appended between the look and the drop is put back by
        `_rescue` (here, or by its sender, who looks after appending)."""
        if self.queue is queue and not queue:
            self.queue = None
            if queue:
                self._rescue(queue)

    # -- the turn ------------------------------------------------------------------------

    def take_turn(self) -> int:
        """Take the turn if it is free: its token, or 0 if somebody holds it."""
        if self.turn:
            return 0
        lock = self.turn_lock
        lock.acquire()  # (not `with`: this is every inline call's path)
        if self.turn:
            lock.release()
            return 0
        self.turn = turn = next(_tokens)
        lock.release()
        return turn

    def give_turn(self, turn: int) -> bool:
        """Give back the turn taken as ``turn``; False if a fence freed it
        meanwhile (then it is somebody else's, or free, and stays so)."""
        lock = self.turn_lock
        lock.acquire()
        if self.turn == turn:
            self.turn = 0
            lock.release()
            return True
        lock.release()
        return False

    def fence_turn(self) -> None:
        """Free the turn while its holder (a hung run) still holds its token."""
        with self.turn_lock:
            self.turn = 0

    def kick(self) -> None:
        """Take the turn for queued work if nobody holds it, and dispatch."""
        turn = self.take_turn()
        if turn:  # else its holder looks at the queue when it gives the turn up
            self.owner.dispatch(turn)

    def empty(self) -> bool:
        return not self.queue

    def qsize(self) -> int:
        queue = self.queue
        return len(queue) if queue is not None else 0

    # -- closing -------------------------------------------------------------------------

    def close(self, reason: str) -> None:
        """Refuse requests from now on, and answer every request still queued."""
        if self.closed_reason is None:
            self.closed_reason = reason
        self.refuse_queued()
        if waiting:  # senders wait for room: they find it closed and are refused
            wake_all(self)

    def reopen(self) -> None:
        """Take requests again (a stopped actor that its supervisor restarts)."""
        self.closed_reason = None

    def refuse_queued(self) -> None:
        queue = self.queue
        if queue is None:
            return
        refuse = self.owner._refuse
        while True:
            try:
                item = queue.popleft()
            except IndexError:
                break
            refuse(item)
        if self.queue is not queue:  # dropped and made again meanwhile
            self.refuse_queued()
