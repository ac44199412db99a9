"""Reply futures: one message to an actor and, once handled, its answer.

A `Reply` is both the message in the mailbox and the future its sender holds:
one object per request. It can be waited on from a thread (``result(timeout)``),
given done-callbacks, or awaited from asyncio without blocking the event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Generator
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

from stateward.core._arguments import check_timeout

from ._context import current_cell
from ._errors import ActorTimeout, RequestCancelled, SelfCallError
from ._loop_inbox import expire, inbox_for
from .stores._group_commit import flush_staged

T = TypeVar("T")


class Recipient(Protocol):
    """What a reply needs of the actor it goes to (a `Cell`, one layer up)."""

    name: str
    callback_lock: threading.Lock

    @property
    def default_timeout(self) -> float: ...

    def report(self, source: str, name: str, error: BaseException) -> None: ...


_PENDING = 0
_RESULT = 1
_ERROR = 2


class Reply(Generic[T]):
    """The future answer to one request sent to an actor.

    - ``result(timeout=None)`` waits (the runtime's default timeout when None)
      and returns the answer or raises the handler's exception.
    - ``add_done_callback(fn)`` calls ``fn(reply)`` once it is done: at once, on
      the calling thread, if it already is; else on the thread that sets the
      answer, right after it is set (the host's worker that ran the request,
      a caller's thread that ran it inline, or the thread of a caller whose
      wait timed out and withdrew it).
    - ``await reply`` waits without blocking the event loop; cancelling the
      awaiting task withdraws a request not yet started, as a timeout does.

    A request whose wait timed out before the actor started it is withdrawn and
    never runs (see `ActorTimeout`); the reply is then answered with that
    error, so every other waiter and done-callback learns of it at once.

    The sender's `contextvars` are copied when the reply is made: the
    request's hooks, guards, after-commit hooks and observers run in that
    copy (``context``), whichever thread runs them.
    """

    __slots__ = (
        "_callbacks",
        "_cell",
        "_claim",
        "_done",
        "_outcome",
        "_status",
        "context",
        "request",
    )

    def __init__(self, cell: Recipient, request: Any) -> None:
        self._cell = cell
        #: What was asked: a frozen message (`stateward.core._messages`) for the
        #: cell's behaviour, or a stop request.
        self.request = request
        #: The sender's context variables, copied now (O(1): the copy shares
        #: the sender's mapping): the request's code runs in it (`Cell.process`),
        #: so it sees what the sender set, and what it sets stays there. None
        #: once the request has run and been answered: a reply kept around
        #: does not keep the sender's values alive.
        self.context: contextvars.Context | None = contextvars.copy_context()
        self._status = _PENDING
        self._outcome: Any = None
        # Made by the first thread that has to wait (most replies are done
        # before anyone looks), held until the answer is set; waiters acquire
        # it, then pass it on.
        self._done: threading.Lock | None = None
        # Whoever pops it first decides: the actor (to run the request) or a
        # caller whose wait timed out (to withdraw it). list.pop is atomic.
        self._claim = [True]
        self._callbacks: list[Callable[[Reply[T]], Any]] | None = None

    # -- the actor's side ------------------------------------------------------------

    def claim(self) -> bool:
        """Take the request to run it (or to withdraw it); False if already taken."""
        try:
            self._claim.pop()
        except IndexError:
            return False
        return True

    def set_result(self, value: T) -> None:
        self._outcome = value
        self._status = _RESULT
        self._finish()

    def set_exception(self, error: BaseException) -> None:
        self._outcome = error
        self._status = _ERROR
        self._finish()

    def _finish(self) -> None:
        # The status is set first, the lock read second; a waiter installs the
        # lock first and reads the status second (`_wait`): one of the two
        # always sees the other.
        done = self._done
        if done is not None:
            done.release()
        # `add_done_callback` checks the status and appends under the callback
        # lock: if someone holds it now, wait until they are out, so that their
        # callback is either in the list read below or run by themselves.
        lock = self._cell.callback_lock
        if lock.locked():
            with lock:
                pass
        callbacks = self._callbacks
        if callbacks:
            self._run_callbacks(callbacks)

    def _run_callbacks(self, callbacks: list[Callable[[Reply[T]], Any]]) -> None:
        for fn in callbacks:
            try:
                fn(self)
            except Exception as exc:
                self._cell.report("callback", getattr(fn, "__qualname__", repr(fn)), exc)

    # -- the caller's side ---------------------------------------------------------------

    @property
    def actor(self) -> str:
        """The name of the actor the request went to."""
        return self._cell.name

    def describe(self) -> str:
        """The request as a short call, such as ``transition('paid')``."""
        description: str = self.request.describe()
        return description

    def done(self) -> bool:
        """Whether the answer (or error) is set."""
        return self._status != _PENDING

    def _refuse_self_wait(self) -> None:
        if current_cell.get() is self._cell:
            raise SelfCallError(
                self._cell.name,
                f"waiting for {self.describe()}",
                where="its own handler, hook or observer",
                fix="Do not wait for that reply there: it is handled after the current "
                "message; react to it with add_done_callback instead",
            )

    def _wait(self, timeout: float | None) -> None:
        if self._status != _PENDING:
            return
        self._refuse_self_wait()
        if timeout is not None:
            check_timeout(timeout, "Reply.result", outcome=_NOT_WAITED)
        flush_staged()  # on a pooled worker: what it staged is answered before it blocks
        # A wait longer than a lock can time (1e300 s) waits as long as it can.
        seconds = min(
            self._cell.default_timeout if timeout is None else timeout, threading.TIMEOUT_MAX
        )
        done = self._done
        if done is None:
            fresh = threading.Lock()
            fresh.acquire()
            with self._cell.callback_lock:
                done = self._done
                if done is None:
                    self._done = done = fresh
        # Re-read the status once the lock is there, also when another waiter
        # installed it: an answer set before that saw no lock to release.
        if self._status != _PENDING:
            return
        if done.acquire(True, seconds):
            done.release()
            return
        raise self._timed_out(seconds)

    def _timed_out(self, seconds: float) -> ActorTimeout:
        """The error for a wait that timed out. A request the actor has not
        started is withdrawn: it never runs, and the reply is answered with this
        error, so other waiters and done-callbacks learn it too."""
        withdrawn = self.claim()
        error = ActorTimeout(self._cell.name, self.describe(), seconds, started=not withdrawn)
        if withdrawn:
            self.set_exception(error)
        return error

    def _cancelled(self) -> None:
        """The awaiting task was cancelled: withdraw the request as a timeout
        does (`_timed_out`) if the actor has not started it, answering the
        reply with `RequestCancelled`; else let it complete."""
        if self.claim():
            self.set_exception(RequestCancelled(self._cell.name, self.describe()))

    def result(self, timeout: float | None = None) -> T:
        """Wait for the answer and return it, or raise the handler's exception.

        Args:
            timeout: seconds to wait; None means the runtime's default timeout.

        Raises:
            ActorTimeout: no answer in time.
            Exception: whatever the request raised in the actor.
        """
        self._wait(timeout)
        if self._status == _ERROR:
            raise self._outcome
        return self._outcome  # type: ignore[no-any-return]

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Wait, then return the request's exception, or None if it succeeded."""
        self._wait(timeout)
        return self._outcome if self._status == _ERROR else None

    def add_done_callback(self, fn: Callable[[Reply[T]], Any]) -> None:
        """Call ``fn(reply)`` once done; errors it raises are reported, not raised."""
        if self._status == _PENDING:
            with self._cell.callback_lock:
                if self._status == _PENDING:
                    if self._callbacks is None:
                        self._callbacks = []
                    self._callbacks.append(fn)
                    return
        self._run_callbacks([fn])

    def __await__(self) -> Generator[Any, None, T]:
        return self.wait().__await__()

    async def wait(self, timeout: float | None = None) -> T:
        """Await the answer without blocking the event loop.

        The answer reaches the loop through its inbox (`_loop_inbox.py`): the
        answers set on other threads while the loop is busy wake it once.

        Cancelling the awaiting task (``task.cancel()``, ``asyncio.timeout``,
        ``asyncio.wait_for``) before the actor has started the request
        withdraws it, exactly as a timeout does: it never runs, and the reply
        is answered with `RequestCancelled` (other waiters and done-callbacks
        see that). Once the actor has started it, it completes and commits;
        the cancelled task just does not see the answer.

        Args:
            timeout: seconds to wait; None means the runtime's default timeout.

        Raises:
            ActorTimeout: no answer in time.
            asyncio.CancelledError: the awaiting task was cancelled.
            Exception: whatever the request raised in the actor.
        """
        if self._status == _PENDING:
            self._refuse_self_wait()
            if timeout is not None:
                check_timeout(timeout, "Reply.wait", outcome=_NOT_WAITED)
            seconds = self._cell.default_timeout if timeout is None else timeout
            loop = asyncio.get_running_loop()
            # Resolved with True by the answer, with False by the timer.
            waiter: asyncio.Future[bool] = loop.create_future()
            self.add_done_callback(partial(inbox_for(loop).deliver, waiter))
            timer = loop.call_later(seconds, expire, waiter)
            try:
                answered = await waiter
            except asyncio.CancelledError:
                self._cancelled()
                raise
            finally:
                timer.cancel()
            if not answered and self._status == _PENDING:
                raise self._timed_out(seconds)
        if self._status == _ERROR:
            raise self._outcome
        return self._outcome  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        state = {_PENDING: "pending", _RESULT: "done", _ERROR: "failed"}[self._status]
        return f"<Reply {self.describe()} to {self._cell.name!r}: {state}>"


#: What a refused timeout of a reply left undone: only the wait.
_NOT_WAITED = "nothing waited (the request itself was sent, and is answered as usual)"
