"""The runtime: owns actors by name, their event loop for async hooks, and shutdown."""

from __future__ import annotations

import asyncio
import atexit
import collections
import itertools
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from stateward.core import utc_now
from stateward.core._machine import Clock

from ._cell import ActorStats, Cell, ErrorReport, StateActor, current_cell, logger, stop_operation
from ._errors import DuplicateActorName, RuntimeStopped
from ._reply import Reply

if TYPE_CHECKING:
    from ._handles import ActorHandle

#: How long a blocking call waits by default, in seconds.
DEFAULT_TIMEOUT = 30.0
#: How long `Runtime.shutdown` waits by default for each actor to drain.
DEFAULT_SHUTDOWN_TIMEOUT = 30.0

_names = itertools.count(1)
_live_runtimes: weakref.WeakSet[Runtime] = weakref.WeakSet()


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

    def run(self, awaitable: Awaitable[Any], cell: Cell) -> Any:
        async def as_actor() -> Any:
            current_cell.set(cell)  # in this task's context only
            return await awaitable

        return asyncio.run_coroutine_threadsafe(as_actor(), self.loop).result()

    def close(self, timeout: float) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)


class Runtime:
    """Owns actors, their names, their event loop for async hooks, and shutdown.

    Use it as a context manager, or call `shutdown` yourself::

        with Runtime() as runtime:
            orders = StateMachine("pending", {...}, name="orders", runtime=runtime)
            ...
        # every mailbox drained, every actor stopped, every thread gone

    Handles created without ``runtime=`` use a process-wide default runtime
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
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        default_timeout: float = DEFAULT_TIMEOUT,
        error_handler: Callable[[ErrorReport], Any] | None = None,
        clock: Clock = utc_now,
        inline_calls: bool = True,
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
        _live_runtimes.add(self)

    # -- actors ------------------------------------------------------------------

    def _unique_name(self, kind: str) -> str:
        return f"{kind}-{next(self._counter)}"

    def _start(self, handle: ActorHandle, cell: Cell) -> None:
        """Register ``handle`` and start its actor thread."""
        with self._lock:
            if self._closed:
                raise RuntimeStopped(self.name)
            if cell.name in self._actors:
                raise DuplicateActorName(cell.name, self.name)
            self._actors[cell.name] = handle
        try:
            cell.ref = StateActor.start(cell)
        except BaseException:
            with self._lock:
                self._actors.pop(cell.name, None)
            raise

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

    def stats(self) -> dict[str, ActorStats]:
        """Per live actor: messages handled, failures, hook errors, queue depth,
        version and last error."""
        return {handle.name: handle._cell.stats() for handle in self}

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

    def shutdown(self, timeout: float = DEFAULT_SHUTDOWN_TIMEOUT) -> None:
        """Drain every mailbox and stop the actors, newest first.

        Each actor handles everything already in its mailbox, then stops;
        requests sent after that get `ActorStopped`. Waits at most ``timeout``
        seconds in all, then returns; actors still busy then are reported in the
        log and left to finish on their (daemon) threads.
        """
        with self._lock:
            self._closed = True
            handles = list(self._actors.values())
        deadline = time.monotonic() + timeout
        for handle in reversed(handles):
            remaining = max(0.0, deadline - time.monotonic())
            handle._stop(f"runtime {self.name!r} shut down", remaining, wait=True)
        host = self._host
        if host is not None:
            host.close(max(0.1, deadline - time.monotonic()))
        busy = [h.name for h in handles if not h._cell.stopped.is_set()]
        if busy:
            logger.error(
                "runtime %r: actors still busy after %g s of shutdown: %s",
                self.name,
                timeout,
                ", ".join(busy),
            )

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running"
        return f"<Runtime {self.name!r} {state}, {len(self._actors)} actors>"


def send(handle: ActorHandle, op: Callable[..., Any], args: tuple[Any, ...]) -> Reply[Any]:
    """Queue one request on ``handle``'s actor; never blocks."""
    cell = handle._cell
    reply: Reply[Any] = Reply(cell, op, args)
    cell.mailbox.put(Envelope(reply))
    return reply


class Envelope:
    """What pykka's loop takes from an inbox: the message and no pykka future
    (the `Reply` is our own future)."""

    __slots__ = ("message",)
    reply_to = None

    def __init__(self, message: Reply[Any]) -> None:
        self.message = message


def stop_request(handle: ActorHandle, reason: str) -> Reply[Any]:
    return send(handle, stop_operation(reason), ())


_default: Runtime | None = None
_default_lock = threading.Lock()


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


@atexit.register
def _shutdown_at_exit() -> None:
    for runtime in list(_live_runtimes):
        if not runtime.closed:
            runtime.shutdown(timeout=5.0)
