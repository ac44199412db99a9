"""The runtime: owns actors by name, their event loop for async hooks, and shutdown."""

from __future__ import annotations

import asyncio
import atexit
import collections
import concurrent.futures
import contextvars
import itertools
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from stateward.core import utc_now
from stateward.core._machine import Clock as WallClock

from ._cell import ActorStats, Cell, ErrorReport, logger, stop_operation
from ._clock import Clock, SystemClock
from ._context import current_cell
from ._errors import DuplicateActorName, RuntimeStopped
from ._reply import Reply
from ._stores import MemoryStore, Store, new_runtime_id, runtime_ended, runtime_started
from ._supervisor import EVENT_KINDS, ShutdownReport, Supervisor, SupervisorEvent

if TYPE_CHECKING:
    from ._handles import ActorHandle

#: How long a blocking call waits by default, in seconds.
DEFAULT_TIMEOUT = 30.0
#: How long `Runtime.shutdown` waits by default, in total, for its actors to drain.
DEFAULT_SHUTDOWN_TIMEOUT = 30.0

_names = itertools.count(1)
_live_runtimes: weakref.WeakSet[Runtime] = weakref.WeakSet()

#: The runtime of the innermost ``with Runtime(...)`` block of this context, and
#: the value it replaced (so nested blocks restore the outer one): a pair, or
#: None. Threads start with an empty context; asyncio tasks copy theirs.
_current: contextvars.ContextVar[tuple[Runtime, Any] | None] = contextvars.ContextVar(
    "stateward_current_runtime", default=None
)


class _AsyncHost:
    """An event loop in its own thread, where actors run their async hooks.

    The actor thread submits the coroutine and waits for it, so the hook runs to
    completion before the actor takes its next message, while the loop stays
    free to run the async hooks of other actors meanwhile.
    """

    def __init__(self, runtime_name: str) -> None:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(
            target=self._run,
            args=(ready,),
            name=f"stateward:{runtime_name}:event-loop",
            daemon=True,
        )
        self.thread.start()
        if not ready.wait(10):  # pragma: no cover - the thread could not start
            raise RuntimeError("the runtime's event loop thread did not start within 10 s")

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def submit(self, awaitable: Awaitable[Any], cell: Cell) -> concurrent.futures.Future[Any]:
        """Start ``awaitable`` on the loop; cancelling the future cancels it."""

        async def as_actor() -> Any:
            current_cell.set(cell)  # in this task's context only
            return await awaitable

        return asyncio.run_coroutine_threadsafe(as_actor(), self.loop)

    def close(self, timeout: float) -> None:
        """Cancel the hooks still awaiting (their actors were abandoned), give
        them up to ``timeout`` seconds to unwind, then stop the loop."""
        deadline = time.monotonic() + timeout

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))

        try:
            asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(timeout)
        except Exception:  # timed out, or the loop is gone: stop it all the same
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(max(0.0, deadline - time.monotonic()))


class Runtime:
    """Owns actors, their names, their event loop for async hooks, and shutdown.

    Use it as a context manager, or call `shutdown` yourself::

        with Runtime() as runtime:
            orders = StateMachine("pending", {...}, name="orders", runtime=runtime)
            ...
        # every mailbox drained, every actor stopped, every thread gone

    Inside ``with Runtime(...) as rt:``, ``rt`` is the *current runtime*: a
    handle created there without ``runtime=`` (or ``supervisor=``) belongs to
    it, in that thread and in the asyncio tasks created there (they copy the
    context). A nested ``with`` makes its runtime current until it ends, then
    the outer one is current again. A thread started in the block does not
    inherit it (threads start with a fresh context): pass ``runtime=``, or run
    the thread's function in ``contextvars.copy_context().run(...)``. With no
    current runtime, handles use a process-wide default runtime
    (`default_runtime`) that shuts down at interpreter exit. Actor threads are
    daemon threads, so no runtime ever keeps the interpreter alive.

    Args:
        name: a label for threads, logs and errors.
        default_timeout: seconds a blocking call waits when it is given no
            ``timeout=`` (finite: nothing here waits forever by default).
        error_handler: called with an `ErrorReport` for every error that has no
            caller to go to (after-commit hooks, observers, done-callbacks). It
            runs on the actor's thread. Such errors are always logged and counted
            as well.
        clock: the source of timestamps in histories (UTC ``datetime``).
        inline_calls: let a blocking call that finds its actor idle, with an
            empty mailbox, run the message on the calling thread instead of
            handing it to the actor thread and back. Messages stay one at a time
            and in order; only the thread differs, and ``timeout=`` then bounds
            the wait for the actor, not the handler's own run. Turn it off if
            hooks must always run on the actor's thread.
        store: where committed snapshots are kept: `MemoryStore` (the default:
            restarts within the process) or `SQLiteStore` (survives the
            process). An actor created with the name of a stored one recovers
            it. The runtime closes the store when it shuts down.
        timer: monotonic time and timers for restart backoff and handler
            deadlines; a `ManualClock` lets tests move time by hand.
        fatal_handler: called with the error when the root supervisor gives up.
        max_restarts: the root supervisor's restart limit...
        within: ...within this many seconds.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        default_timeout: float = DEFAULT_TIMEOUT,
        error_handler: Callable[[ErrorReport], Any] | None = None,
        clock: WallClock = utc_now,
        inline_calls: bool = True,
        store: Store | None = None,
        timer: Clock | None = None,
        fatal_handler: Callable[[BaseException], Any] | None = None,
        max_restarts: int = 3,
        within: float = 5.0,
    ) -> None:
        if not default_timeout > 0:
            raise ValueError(f"default_timeout must be > 0 seconds, got {default_timeout!r}")
        self.name = name or f"runtime-{next(_names)}"
        self.default_timeout = float(default_timeout)
        self.error_handler = error_handler
        self.clock = clock
        self.inline_calls = inline_calls
        self._lock = threading.Lock()
        self._actors: dict[str, ActorHandle] = {}
        self._closed = False
        self._host: _AsyncHost | None = None
        self._errors: collections.deque[ErrorReport] = collections.deque(maxlen=1000)
        self._error_count = 0
        self._counter = itertools.count(1)
        self.timer: Clock = timer if timer is not None else SystemClock(self.name)
        self.store: Store = store if store is not None else MemoryStore()
        self.runtime_id = new_runtime_id()
        runtime_started(self.runtime_id)
        self.fatal_handler = fatal_handler
        self._fatal_error: BaseException | None = None
        self._fatal_event = threading.Event()
        self._event_counts: collections.Counter[str] = collections.Counter()
        self._subscribers: list[Callable[[SupervisorEvent], Any]] = []
        self.root = Supervisor(
            "root", runtime=self, max_restarts=max_restarts, within=within, _root=True
        )
        _live_runtimes.add(self)

    # -- actors ------------------------------------------------------------------

    def _unique_name(self, kind: str) -> str:
        return f"{kind}-{next(self._counter)}"

    def _start(
        self, handle: ActorHandle, cell: Cell, supervisor: Supervisor | None, restart: str
    ) -> None:
        """Register ``handle`` and start its actor under ``supervisor``."""
        supervisor = supervisor if supervisor is not None else self.root
        if supervisor.runtime is not self:
            raise ValueError(f"supervisor {supervisor.name!r} belongs to another runtime")
        with self._lock:
            if self._closed:
                raise RuntimeStopped(self.name)
            if cell.name in self._actors:
                raise DuplicateActorName(cell.name, self.name)
            self._actors[cell.name] = handle
        try:
            self._recover_or_create(cell)
            supervisor._add_actor(cell, restart)
        except BaseException:
            with self._lock:
                self._actors.pop(cell.name, None)
            if cell.claimed:
                cell.release()
            raise

    def _recover_or_create(self, cell: Cell) -> None:
        """Claim the actor's name in the store: recover what is stored, or record it."""
        store, codec = cell.store, cell.codec
        if store is None or codec is None:
            return
        stored = store.claim(cell.name, codec, self.runtime_id)
        cell.claimed = True
        if stored is None:
            store.create(cell.name, codec, cell.snapshot)
        else:
            cell.publish(stored)
            cell.recovered = True

    def _forget_cell(self, cell: Cell) -> None:
        with self._lock:
            handle = self._actors.get(cell.name)
            if handle is not None and handle._cell is cell:
                del self._actors[cell.name]

    def _forget(self, name: str, handle: ActorHandle) -> None:
        with self._lock:
            if self._actors.get(name) is handle:
                del self._actors[name]

    def get(self, name: str) -> ActorHandle:
        """The live actor named ``name``.

        Raises:
            KeyError: no live actor has that name here.
        """
        with self._lock:
            try:
                return self._actors[name]
            except KeyError:
                known = ", ".join(sorted(self._actors)) or "none"
                raise KeyError(
                    f"runtime {self.name!r} has no actor {name!r}; actors: {known}"
                ) from None

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._actors

    def names(self) -> list[str]:
        """The names of the live actors, in start order."""
        with self._lock:
            return list(self._actors)

    def __iter__(self) -> Iterator[ActorHandle]:
        with self._lock:
            return iter(list(self._actors.values()))

    def stats(self) -> RuntimeStats:
        """Per actor (by name): messages handled, failures, hook errors, queue depth,
        version, restarts and last error; plus the supervision event counts,
        the error count and the fatal failure, as attributes."""
        with self._lock:
            events = dict(self._event_counts)
        return RuntimeStats(
            {handle.name: handle._cell.stats() for handle in self},
            events={kind: events.get(kind, 0) for kind in EVENT_KINDS},
            errors=self._error_count,
            fatal=None if self._fatal_error is None else repr(self._fatal_error),
        )

    # -- supervision ----------------------------------------------------------------

    def subscribe(self, fn: Callable[[SupervisorEvent], Any]) -> None:
        """Call ``fn(event)`` for every `SupervisorEvent` of every supervisor here."""
        with self._lock:
            self._subscribers.append(fn)

    def _count_event(self, event: SupervisorEvent) -> None:
        with self._lock:
            self._event_counts[event.kind] += 1
            subscribers = list(self._subscribers)
        for fn in subscribers:
            try:
                fn(event)
            except Exception:
                logger.exception("runtime %r: an event subscriber raised", self.name)

    def _fatal(self, error: BaseException) -> None:
        self._fatal_error = error
        self._fatal_event.set()
        logger.critical("runtime %r: fatal failure: %s", self.name, error)
        handler = self.fatal_handler
        if handler is not None:
            try:
                handler(error)
            except Exception:
                logger.exception("runtime %r: the fatal handler itself raised", self.name)

    @property
    def fatal(self) -> BaseException | None:
        """The failure that made the root supervisor give up, if any."""
        return self._fatal_error

    def wait_fatal(self, timeout: float) -> BaseException | None:
        """Wait up to ``timeout`` seconds for a fatal failure; return it, or None."""
        self._fatal_event.wait(timeout)
        return self._fatal_error

    # -- errors --------------------------------------------------------------------

    def _report(self, report: ErrorReport) -> None:
        with self._lock:
            self._errors.append(report)
            self._error_count += 1
        handler = self.error_handler
        if handler is not None:
            try:
                handler(report)
            except Exception:
                logger.exception("runtime %r: the error handler itself raised", self.name)

    def errors(self) -> list[ErrorReport]:
        """The most recent errors that had no caller to go to (up to 1,000)."""
        with self._lock:
            return list(self._errors)

    @property
    def error_count(self) -> int:
        """How many such errors were reported in all."""
        return self._error_count

    # -- the event loop for async hooks ----------------------------------------------

    def _async_host(self) -> _AsyncHost:
        host = self._host
        if host is None:
            with self._lock:
                if self._host is None:
                    self._host = _AsyncHost(self.name)
                host = self._host
        return host

    def in_event_loop_thread(self) -> bool:
        """Whether the calling thread is this runtime's event loop thread."""
        host = self._host
        return host is not None and threading.current_thread() is host.thread

    # -- shutdown -------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether `shutdown` has begun: no new actors can start."""
        return self._closed

    def shutdown(self, timeout: float = DEFAULT_SHUTDOWN_TIMEOUT) -> ShutdownReport:
        """Drain every mailbox and stop every actor within ``timeout`` seconds in
        all, then close the store; return a `ShutdownReport`.

        Every actor is asked first to stop once it has handled what is already
        in its mailbox (so they drain at the same time); requests sent after
        that get `ActorStopped`. Then shutdown waits for them, newest first,
        until one deadline shared by all. An actor still busy at the deadline
        is *abandoned*: the request it is running commits nothing and is
        answered with `ActorStopped`, so are the requests still queued, an
        async hook it awaits is cancelled, and its daemon thread is left to
        end on its own. An actor that crashes while stopping is not
        restarted; its queued requests get `ActorStopped` too. Every request
        gets an answer, none waits for its own timeout.

        It returns within ``timeout`` plus a small constant whatever the
        actors do. The report names the actors abandoned or crashed (also
        logged as an error); ``report.check()`` raises `ShutdownIncomplete`
        if there were any. Calling it again returns a clean, empty report.
        """
        if not timeout >= 0:
            raise ValueError(f"shutdown timeout must be >= 0 seconds, got {timeout!r}")
        started = time.monotonic()
        deadline = started + timeout
        reason = f"runtime {self.name!r} shut down"
        with self._lock:
            if self._closed and not self._actors:
                return ShutdownReport(self.name, timeout, 0.0)
            self._closed = True
            handles = list(self._actors.values())
        self.root._ask_to_stop(reason)
        abandoned, crashed = self.root._await_stop(deadline, reason, timeout)
        for handle in reversed(handles):  # any left outside the tree
            cell = handle._cell
            handle._stop(reason, max(0.0, deadline - time.monotonic()), wait=True)
            if not cell.stopped.is_set() and handle.name not in abandoned:
                cell.abandon(reason)
                abandoned.append(handle.name)
        host = self._host
        if host is not None:
            # Unwinding cancelled hooks gets a moment even when time is up.
            host.close(max(0.2, deadline - time.monotonic()))
        self.timer.close()
        try:
            self.store.close()
        finally:
            runtime_ended(self.runtime_id)
        report = ShutdownReport(
            self.name, timeout, time.monotonic() - started, tuple(abandoned), tuple(crashed)
        )
        if not report.clean:
            logger.error("runtime %s", report.describe())
        return report

    def __enter__(self) -> Runtime:
        """Make this the current runtime of the calling context (see above)."""
        _current.set((self, _current.get()))
        return self

    def __exit__(self, *exc: object) -> None:
        """Shut down, and make the runtime that was current before current again."""
        entry = _current.get()
        if entry is not None and entry[0] is self:
            _current.set(entry[1])
        self.shutdown()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running"
        return f"<Runtime {self.name!r} {state}, {len(self._actors)} actors>"


def send(cell: Cell, request: Any) -> Reply[Any]:
    """Queue one request on ``cell``'s actor; never blocks."""
    reply: Reply[Any] = Reply(cell, request)
    cell.mailbox.put(reply)
    return reply


def stop_request(
    cell: Cell, reason: str, *, terminal: bool = True, exit: bool = False
) -> Reply[Any]:
    return send(cell, stop_operation(reason, terminal=terminal, exit=exit))


class RuntimeStats(dict):  # type: ignore[type-arg]
    """`ActorStats` by actor name, plus runtime-wide counts as attributes.

    Attributes:
        events: supervision events by kind (started, failed, restarted,
            stopped, escalated, gave_up).
        errors: errors reported with no caller to go to.
        fatal: the fatal failure, as ``repr``, or None.
    """

    def __init__(
        self,
        actors: dict[str, ActorStats],
        *,
        events: dict[str, int],
        errors: int,
        fatal: str | None,
    ) -> None:
        super().__init__(actors)
        self.events = events
        self.errors = errors
        self.fatal = fatal


_default: Runtime | None = None
_default_lock = threading.Lock()


def current_runtime() -> Runtime:
    """The runtime a handle created without ``runtime=`` belongs to: the one of
    the innermost ``with Runtime(...)`` block of the calling context, else the
    process-wide `default_runtime`."""
    entry = _current.get()
    return default_runtime() if entry is None else entry[0]


def default_runtime() -> Runtime:
    """The process-wide runtime used by handles created without ``runtime=``.

    Created on first use; shut down (mailboxes drained) at interpreter exit. If
    it has been shut down, the next call creates a new one.
    """
    global _default
    runtime = _default
    if runtime is None or runtime.closed:
        with _default_lock:
            if _default is None or _default.closed:
                _default = Runtime("default")
            runtime = _default
    return runtime


#: How long the runtimes still running at interpreter exit get, in all.
EXIT_SHUTDOWN_TIMEOUT = 5.0


@atexit.register
def _shutdown_at_exit() -> None:
    deadline = time.monotonic() + EXIT_SHUTDOWN_TIMEOUT
    for runtime in list(_live_runtimes):
        if not runtime.closed:
            runtime.shutdown(timeout=max(0.0, deadline - time.monotonic()))
