"""The handle every kind shares: what users hold to reach one actor.

Reads (``current_state``, ``get_state()``, ``get_config()``, ``snapshot``,
``history``) return the last published immutable snapshot: no message, no lock,
never a wait. Writes are messages: a handle checks the call's arguments, builds
one frozen message (`stateward.core._messages`) and sends it; the actor's
behaviour (`stateward.core._behaviours`) does the rest. Blocking calls wait for
the answer (with a finite timeout), ``request_*`` calls return a `Reply` at once.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from stateward.core import ArgumentTypeError, ArgumentValueError
from stateward.core._arguments import check_callable, check_timeout
from stateward.core._behaviours import Behaviour
from stateward.core._messages import Message
from stateward.core._persist import KindCodec

from .._backpressure import asend_when_room, check_mailbox_limit, send_when_room
from .._cell import Cell
from .._context import current_cell
from .._errors import MailboxFull, SelfCallError
from .._loop_inbox import inbox_for
from .._loop_turn import LoopTurn, slots_of
from .._reply import Reply
from .._runtime import Runtime, current_runtime, stop_request
from .._supervisor import Supervisor
from ._watching import Watching

T = TypeVar("T")
Observer = Callable[[Any, Any], Any]
_NOT_CREATED = "no actor was created"


def check_actor_name(name: Any, call: str) -> str:
    """``name`` as a plain, non-empty ``str`` that a store can keep (UTF-8
    encodable: no lone surrogate), or an `InvalidArgument`, before anything
    is created or written."""
    if not isinstance(name, str):
        raise ArgumentTypeError(
            call, "name", "a str, the actor's name, or None", name, outcome=_NOT_CREATED
        )
    text: str = str.__str__(name)  # a str subclass (a StrEnum member) is read as its text
    if not text:
        raise ArgumentValueError(
            call,
            "name",
            "a non-empty str",
            text,
            "Pass a name such as 'orders', or leave it out for a generated one",
            outcome=_NOT_CREATED,
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ArgumentValueError(
            call,
            "name",
            "a str encodable as UTF-8 (no lone surrogate such as '\\ud800')",
            name,
            "Stores keep names as UTF-8 text: pass a name without unpaired surrogates",
            outcome=_NOT_CREATED,
        ) from None
    return text


class _Stored:
    """``snapshot`` of a handle whose actor is passivated.

    A mirrored handle keeps its snapshot in its ``__dict__``, found before
    this (a non-data descriptor); a passivation removes it from there, and a
    read then gets the snapshot from the store (`Cell.read`) without
    activating the actor.
    """

    def __get__(self, handle: ActorHandle | None, owner: type) -> Any:
        if handle is None:
            return self
        if not handle._mirrored:  # a kind with no snapshot attribute (a config)
            raise AttributeError(f"{type(handle).__name__!r} object has no attribute 'snapshot'")
        return handle._cell.read()


class ActorHandle(Watching):
    """What every handle has: a name, its runtime, observers, stats, stop, and
    ways to watch its commits (``wait_until``, ``await_until``, ``changes()``)."""

    _kind = "actor"
    #: Whether ``snapshot`` is a plain attribute of the handle, kept current by
    #: the actor (a read is then one attribute lookup: no property call).
    _mirrored = False
    snapshot: Any = _Stored()
    _cell: Cell
    _runtime: Runtime

    def __init__(
        self,
        name: str | None,
        runtime: Runtime | None,
        snapshot: Any,
        view: Callable[[Any], Any],
        version_of: Callable[[Any], int],
        options: ActorOptions,
        codec: KindCodec,
    ) -> None:
        limit = check_mailbox_limit(options.mailbox_limit, type(self).__name__, _NOT_CREATED)
        supervisor = options.supervisor
        if runtime is None:
            runtime = supervisor.runtime if supervisor is not None else current_runtime()
        if name is not None:
            name = check_actor_name(name, type(self).__name__)
        # Set past the read-only check of `__setattr__` (a Python call each).
        put = object.__setattr__
        put(self, "_runtime", runtime)
        cell = Cell(
            runtime,
            name or runtime._unique_name(self._kind),
            self._kind,
            snapshot,
            view,
            version_of,
            on_error=options.on_error,
            deadline=options.deadline,
            on_start=options.on_start,
            codec=codec,
            maker=self,
        )
        put(self, "_cell", cell)
        if limit is not None:
            cell.mailbox_limit = limit  # in the cell's side object: most cells have no limit
        if self._mirrored:
            self.__dict__["snapshot"] = snapshot
            cell.mirror = self.__dict__
        runtime._start(self, cell, supervisor, options.restart, options.dedicated)

    def _behaviour(self, cell: Cell) -> Behaviour:
        """The kind's behaviour from core, bound to ``cell`` (its name, its
        runtime's clock, its way of running a coroutine hook)."""
        raise NotImplementedError(f"{type(self).__qualname__} gives its actor no behaviour")

    def __setattr__(self, name: str, value: object) -> None:
        if name == "snapshot":
            raise AttributeError(
                f"{type(self).__name__}.snapshot is read-only: it is the last committed "
                "snapshot, changed only by the actor's requests"
            )
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if name == "snapshot":
            raise AttributeError(f"{type(self).__name__}.snapshot cannot be deleted")
        object.__delattr__(self, name)

    def __copy__(self: T) -> T:
        # A handle stands for its actor: a copy is the handle itself. A new
        # object with a __dict__ of its own would keep the snapshot it was
        # copied with, since the actor writes only this handle's __dict__.
        return self

    @property
    def recovered(self) -> bool:
        """Whether the actor picked up a state stored under its name."""
        return self._cell.recovered

    @property
    def name(self) -> str:
        """The actor's name, unique in its runtime."""
        return self._cell.name

    @property
    def runtime(self) -> Runtime:
        """The runtime that owns the actor."""
        return self._runtime

    @property
    def alive(self) -> bool:
        """Whether the actor still takes requests."""
        cell = self._cell
        return cell.mailbox.closed_reason is None and not cell.is_stopped

    def stats(self) -> Any:
        """This actor's `ActorStats`."""
        return self._cell.stats()

    @property
    def restarts(self) -> int:
        """How many times its supervisor has restarted this actor."""
        return self._cell.restarts

    @property
    def supervisor(self) -> Supervisor | None:
        """The supervisor this actor runs under."""
        supervisor: Supervisor | None = self._cell.supervisor
        return supervisor

    # -- messaging -------------------------------------------------------------------

    def _where(self, method: str) -> str:
        """``StateMachine.transition``: how errors name a call of this handle."""
        return f"{type(self).__name__}.{method}"

    def _call(self, request: Message, timeout: float | None) -> Any:
        # Every argument is checked before the message exists: a bad one is
        # refused here, in the caller's thread, and never reaches the actor.
        if timeout is not None:
            timeout = check_timeout(timeout, self._where(request.call))
        cell = self._cell
        if current_cell.get() is cell:
            raise SelfCallError(cell.name, request.describe())
        if self._runtime.in_event_loop_thread():
            raise SelfCallError(
                cell.name,
                request.describe(),
                where="an async hook on the runtime's event loop",
                fix="Await the call's awaited form there (atransition, aupdate_state, amodify, "
                "aupdate_config, ...) or a request_* reply",
            )
        reply: Reply[Any] = Reply(cell, request)
        turn = cell.try_inline() if self._runtime.inline_calls else 0
        if turn:
            cell.process_inline(reply, turn)  # the actor was idle: run it here, in turn
        else:
            limit = cell.room_limit()
            if limit is None:
                cell.mailbox.put(reply)
            elif not cell.mailbox.offer(reply, limit):  # full: wait for room, within the timeout
                seconds = cell.default_timeout if timeout is None else timeout
                timeout = send_when_room(cell.mailbox, reply, limit, seconds)
        return reply.result(timeout)

    async def _acall(self, request: Message, timeout: float | None) -> Any:
        """The awaited form of `_call`, behind every ``a*`` call (``atransition``,
        ``amodify``, ...): the request is sent and its answer awaited without
        blocking the event loop.

        An actor found idle runs the request here, on the awaiting loop's
        thread, and its awaitables (async hooks, guards, ``modify``
        functions) are awaited on this loop, its turn held meanwhile
        (`_loop_turn`): no hop to a worker thread or to the runtime's event
        loop. Not for an actor whose store is durable (its write and fsync
        never run on the loop: a worker's group commit writes it) or whose
        commit would make the loop wait (`_runs_on_loop`); nor for one with a
        ``deadline=``, as for blocking calls. At most `ROUND` requests run in
        a row on one loop before it serves its other callbacks.
        """
        if timeout is not None:
            timeout = check_timeout(timeout, self._where(f"a{request.call}"))
        cell = self._cell
        if current_cell.get() is cell:
            raise SelfCallError(cell.name, request.describe())
        reply: Reply[Any] = Reply(cell, request)
        turn = 0
        if self._runtime.inline_calls and self._runs_on_loop(cell):
            slots = slots_of(asyncio.get_running_loop())
            if not slots.take():
                await slots.wait()  # this round of the loop is spent: a later one
            turn = cell.try_inline()
            if turn:
                LoopTurn(cell, reply, turn, slots.loop).start()
                if reply.done():
                    return reply.result()
        if not turn:
            timeout = await self._asend(reply, timeout)
        return await reply.wait(timeout)

    def _runs_on_loop(self, cell: Cell) -> bool:
        """Whether a request of this actor may run inline on an event loop:
        its store is a memory one (a durable store's write never runs on a
        loop), no deadline watches it, and nothing after its commit awaits
        (an async after-commit hook or observer would make the loop wait for
        the runtime's event loop)."""
        if cell.deadline is not None:
            return False
        store = cell.store
        if store is not None and getattr(store, "durability", None) != "memory":
            return False
        observers = cell.observers
        if observers and any(inspect.iscoroutinefunction(fn) for fn in observers):
            return False
        return not self._awaits_after_commit()

    def _awaits_after_commit(self) -> bool:
        """Whether the actor's after-commit work may await (a machine's
        coroutine after-commit hooks)."""
        return False

    def _request(
        self, request: Message, callback: Callable[[Reply[Any]], Any] | None
    ) -> Reply[Any]:
        if callback is not None:
            check_callable(callback, self._where(f"request_{request.call}"), "callback")
        cell = self._cell
        reply: Reply[Any] = Reply(cell, request)
        limit = cell.room_limit()
        if limit is None:
            cell.mailbox.put(reply)
        elif not cell.mailbox.offer(reply, limit):
            raise MailboxFull(cell.name, limit, reply.describe())
        if callback is not None:
            reply.add_done_callback(callback)
        return reply

    async def _asend(self, reply: Reply[Any], timeout: float | None) -> float | None:
        """Queue an awaited call's ``reply``; at its actor's mailbox limit,
        suspend until there is room, without blocking the loop
        (`_backpressure.asend_when_room`). Return the timeout left for the
        answer (``timeout`` itself if there was room at once).

        Raises:
            ActorTimeout: no room within ``timeout``; nothing was sent.
        """
        cell = self._cell
        limit = cell.room_limit()
        if limit is None:
            cell.mailbox.put(reply)
        elif not cell.mailbox.offer(reply, limit):  # full: wait for room, within the timeout
            seconds = cell.default_timeout if timeout is None else timeout
            return await asend_when_room(cell.mailbox, reply, limit, seconds)
        return timeout

    # -- observers ---------------------------------------------------------------------

    def add_observer(self, fn: Observer) -> None:
        """Call ``fn(old, new)`` after every commit, in commit order.

        It runs after the snapshot is published and before the caller gets its
        answer, under no lock, on the thread that ran the request: the actor's
        worker thread, or the caller's own thread when a blocking call ran
        inline (see ``Runtime(inline_calls=...)``). It may be a coroutine
        function (run on the runtime's event loop). Its errors are reported
        (logged, counted, passed to the runtime's error handler); they never
        undo the commit.
        """
        check_callable(fn, self._where("add_observer"), "fn")
        with self._cell.observer_lock:
            self._cell.observers = (*self._cell.observers, fn)
        self._runtime._observed(self._cell)

    def remove_observer(self, fn: Observer) -> None:
        """Stop calling ``fn``.

        Raises:
            ArgumentValueError: ``fn`` is not registered (a ValueError).
        """
        with self._cell.observer_lock:
            observers = list(self._cell.observers)
            try:
                observers.remove(fn)
            except ValueError:
                raise ArgumentValueError(
                    self._where("remove_observer"),
                    "fn",
                    "an observer added to it",
                    fn,
                    f"That one is not an observer of {self.name!r}: pass what add_observer got",
                ) from None
            self._cell.observers = tuple(observers)

    # -- stopping ------------------------------------------------------------------------

    def stop(self, timeout: float | None = None) -> None:
        """Handle what is already queued, then stop the actor for good.

        Later calls raise `ActorStopped`, and its supervisor does not restart
        it. Called from the actor's own hooks, it only queues the stop (it
        cannot wait for itself) and counts as the actor stopping on its own: a
        ``permanent`` actor is then restarted by its supervisor.
        """
        if timeout is not None:
            timeout = check_timeout(timeout, self._where("stop"))
        cell = self._cell
        if current_cell.get() is cell:
            stop_request(cell, "stopped itself", terminal=False, exit=True)
            return
        self._stop("stopped by stop()", timeout, wait=True)

    async def astop(self, timeout: float | None = None) -> None:
        """Handle what is already queued, then stop the actor for good: the
        awaited form of `stop`, for coroutines.

        The event loop runs on meanwhile: the stop is waited for on a thread
        of its own (``stateward:<actor>:stop``), whose end is delivered to
        the loop like a reply. Cancelling the awaiting task (or its
        ``asyncio.timeout``) does not take the stop back: the actor stops
        all the same. Awaited in the actor's own async hook, it only queues
        the stop, as `stop` does there.

        Raises:
            InvalidArgument: ``timeout`` is not a number of seconds (nothing
                is stopped).
        """
        if timeout is not None:
            timeout = check_timeout(timeout, self._where("astop"))
        cell = self._cell
        if current_cell.get() is cell:
            stop_request(cell, "stopped itself", terminal=False, exit=True)
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()
        inbox = inbox_for(loop)
        failed: list[BaseException] = []

        def stop() -> None:
            try:
                self._stop("stopped by astop()", timeout, wait=True)
            except BaseException as exc:  # raised where it is awaited
                failed.append(exc)
            finally:
                inbox.deliver(done)

        threading.Thread(target=stop, name=f"stateward:{cell.name}:stop", daemon=True).start()
        await done
        if failed:
            raise failed[0]

    def _stop(self, reason: str, timeout: float | None, *, wait: bool) -> None:
        self._runtime._stop_actor(self._cell, reason, timeout, wait=wait)

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "alive" if self.alive else "stopped"
        return f"<{type(self).__name__} {self.name!r} {state}>"


class ActorOptions:
    """How an actor is supervised; every handle takes these as keywords.

    A plain slotted class (not a frozen dataclass): one is made per actor
    created, and a frozen dataclass's ``__init__`` cost a microsecond.
    """

    __slots__ = (
        "deadline",
        "dedicated",
        "mailbox_limit",
        "on_error",
        "on_start",
        "restart",
        "supervisor",
    )

    def __init__(
        self,
        supervisor: Supervisor | None = None,
        restart: str = "permanent",
        on_error: str = "fail",
        deadline: float | None = None,
        on_start: Callable[[Any], Any] | None = None,
        dedicated: bool = False,
        mailbox_limit: int | None = None,
    ) -> None:
        self.supervisor = supervisor
        self.restart = restart
        self.on_error = on_error
        self.deadline = deadline
        self.on_start = on_start
        self.dedicated = dedicated
        self.mailbox_limit = mailbox_limit
        self._check()

    def _check(self) -> None:
        if self.on_error != "fail" and self.on_error != "restart":
            raise ValueError(f"on_error must be 'fail' or 'restart', got {self.on_error!r}")
        if self.deadline is not None and not self.deadline > 0:
            raise ValueError(f"deadline must be > 0 seconds, got {self.deadline!r}")
        if self.restart != "permanent" and self.restart not in ("transient", "temporary"):
            raise ValueError(
                f"restart must be 'permanent', 'transient' or 'temporary', got {self.restart!r}"
            )
        if type(self.dedicated) is not bool:
            raise ArgumentTypeError(
                "the handle",
                "dedicated",
                "True or False",
                self.dedicated,
                "dedicated=True gives the actor a thread of its own.",
                outcome="no actor was created",
            )
        if self.on_start is not None and not callable(self.on_start):
            raise TypeError(f"on_start must be callable, got {self.on_start!r}")


def identity(snapshot: Any) -> Any:
    """The view of a kind whose observers see its snapshot itself."""
    return snapshot


def version_of(snapshot: Any) -> int:
    """A snapshot's version, for `ActorStats`."""
    version: int = snapshot.version
    return version
