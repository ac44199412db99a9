"""The runtime: owns actors by name, their host, their event loop for async
hooks, the root supervisor, the store, and shutdown."""

from __future__ import annotations

import collections
import concurrent.futures
import contextvars
import itertools
import logging
import math
import threading
import time
import types
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, Protocol

from stateward.core import ArgumentTypeError, ArgumentValueError, utc_now
from stateward.core._arguments import check_callable, check_timeout
from stateward.core._machine import WallClock

from ._async_host import AsyncHost
from ._backpressure import check_mailbox_limit
from ._cell import Cell, ErrorReport
from ._clock import SystemClock, Timer
from ._context import current_block, current_runtime
from ._endpoint import MetricsEndpoint, serve_metrics
from ._errors import ActorNotFound, DuplicateActorName, RuntimeStopped, StoreWriteError
from ._health import Health, health_of
from ._host import Host
from ._lease_renewal import LeaseRenewal
from ._lifecycle import Lifecycle, stop_request
from ._passivation import Passivation
from ._pool_host import DEFAULT_WORKERS, POOL_TURN_BUDGET, PoolHost
from ._signals import STOP_SIGNALS, arun_until_signal, run_until_signal
from ._stats import RuntimeStats
from ._supervision import EVENT_KINDS, ShutdownReport, SupervisorEvent
from ._supervisor import Supervisor
from ._telemetry import Telemetry, set_runtimes
from ._thread_host import ThreadHost
from ._timers import MachineTimers
from .stores import MemoryStore, Store
from .stores._ownership import new_runtime_id, runtime_ended, runtime_started

logger = logging.getLogger("stateward.actors")

__all__ = [
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "Runtime",
    "RuntimeStats",
    "current_runtime",
    "stop_request",
]

#: How long a blocking call waits by default, in seconds.
DEFAULT_TIMEOUT = 30.0
#: How long `Runtime.shutdown` waits by default, in total, for its actors to drain.
DEFAULT_SHUTDOWN_TIMEOUT = 30.0

_names = itertools.count(1)
live_runtimes: weakref.WeakSet[Runtime] = weakref.WeakSet()


class Handle(Protocol):
    """What the runtime keeps of a handle (an `ActorHandle`, one layer up)."""

    @property
    def name(self) -> str: ...

    _cell: Cell

    def _stop(self, reason: str, timeout: float | None, *, wait: bool) -> None: ...


class Runtime:
    """Owns actors, their names, their event loop for async hooks, and shutdown.

    Use it as a context manager, or call `shutdown` yourself:

    ```python
    with Runtime() as runtime:
        orders = StateMachine("pending", {...}, name="orders", runtime=runtime)
        ...
    # every mailbox drained, every actor stopped, every thread gone
    ```

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

    Which thread runs what: an actor's requests, hooks and observers run on
    its host's worker (a thread of the runtime's pool, named
    ``stateward:<runtime>:worker-<i>``; with ``workers=0`` or
    ``dedicated=True`` a thread of the actor's own, named
    ``stateward:<runtime>:<actor>``), or, for an inline call, on the calling
    thread (for an awaited call, the awaiting event loop's thread); async
    hooks run on the runtime's event loop thread (for an awaited call run
    inline, on the awaiting loop); timers (backoff, deadlines) on the timer's
    thread.

    Args:
        name: a label for threads, logs and errors.
        default_timeout: seconds a blocking call waits when it is given no
            ``timeout=`` (finite: nothing here waits forever by default).
        error_handler: called with an `ErrorReport` for every error that has no
            caller to go to (after-commit hooks, observers, done-callbacks). It
            runs on the thread that ran the failing function: the actor's
            worker, or the caller's thread for an inline call. Such errors are
            always logged and counted as well.
        clock: the source of timestamps in histories (UTC ``datetime``).
        inline_calls: let a blocking call that finds its actor idle, with an
            empty mailbox, run the message on the calling thread instead of
            handing it to the actor thread and back (an awaited ``a*`` call:
            on the awaiting event loop's thread). Messages stay one at a time
            and in order; only the thread differs, and ``timeout=`` then bounds
            the wait for the actor, not the handler's own run. Turn it off if
            hooks must always run on the actor's thread.
        store: where committed snapshots are kept: `MemoryStore` (the default:
            restarts within the process) or `SQLiteStore` (survives the
            process). An actor created with the name of a stored one recovers
            it. The runtime closes the store when it shuts down.
        timer: monotonic time and timers for restart backoff and handler
            deadlines; a `ManualClock` lets tests move time by hand.
        fatal_handler: called with the error when the root supervisor gives up,
            on the thread where it gave up (the worker of the actor whose crash
            crossed the limit, or the timer's thread for a delayed restart).
        max_restarts: the root supervisor's restart limit...
        within: ...within this many seconds.
        workers: run the actors' turns on a pool of this many threads
            (`PoolHost`): any number of actors then costs ``workers`` threads,
            started with the first actor and ended once the last one has
            stopped. None (the default) means ``DEFAULT_WORKERS`` (4); 0
            gives each actor a thread of its own instead (`ThreadHost`).
            Either way a handle made with ``dedicated=True`` gets a thread of
            its own; give one to an actor whose hooks block.
        idle_after: passivate an actor after this many seconds without a
            request (between ``idle_after`` and twice that): its incarnation
            ends and its snapshot leaves memory (it is in the store); its
            handle stays valid and its next request activates it again,
            recovered from the store as a restart is. None (the default): never.
        max_active: keep at most about this many actors active: past it, the
            longest active idle ones are passivated (one used since it was last
            looked at gets a second chance; a busy one is never passivated).
            None (the default): no limit. With a `SQLiteStore`, a runtime can
            then address more actors than their snapshots would take in memory.
        mailbox_limit: the default bound on the requests waiting in each
            actor's mailbox (a handle's own ``mailbox_limit=`` wins); it costs
            an actor nothing. None (the default): no bound. See the handles.
        per_actor_metrics: label the metrics with each actor's name too
            (`serve_metrics`, docs/howto/operations.md); off by default, since
            a million machines would make a million series.
        meter_provider: the OpenTelemetry MeterProvider this runtime reports
            its metrics to. None (the default): the application's global
            one (`opentelemetry.metrics.set_meter_provider`), from when it is
            set, before or after the runtime is made; nothing is recorded
            per message while there is none.
        tracer_provider: the OpenTelemetry TracerProvider this runtime's
            spans go to. None (the default): the global one, likewise.
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
        timer: Timer | None = None,
        fatal_handler: Callable[[BaseException], Any] | None = None,
        max_restarts: int = 3,
        within: float = 5.0,
        workers: int | None = None,
        idle_after: float | None = None,
        max_active: int | None = None,
        mailbox_limit: int | None = None,
        per_actor_metrics: bool = False,
        meter_provider: Any = None,
        tracer_provider: Any = None,
    ) -> None:
        for argument, provider, method in (
            ("meter_provider", meter_provider, "get_meter"),
            ("tracer_provider", tracer_provider, "get_tracer"),
        ):
            if provider is not None and not callable(getattr(provider, method, None)):
                raise ArgumentTypeError(
                    "Runtime",
                    argument,
                    f"None or an OpenTelemetry provider (an object with {method}())",
                    provider,
                    "Pass the SDK's provider, or leave it out to follow the global one.",
                    outcome="no runtime was created",
                )
        if type(per_actor_metrics) is not bool:
            raise ArgumentTypeError(
                "Runtime",
                "per_actor_metrics",
                "True or False",
                per_actor_metrics,
                outcome="no runtime was created",
            )
        if name is not None and not isinstance(name, str):
            raise ArgumentTypeError(
                "Runtime",
                "name",
                "a str (a label for threads, logs and errors) or None",
                name,
                "Pass name='orders', say, or leave it out for a generated one.",
                outcome="no runtime was created",
            )
        seconds = type(idle_after) in (int, float)
        if idle_after is not None and (not seconds or not 0 < idle_after < math.inf):
            error = ArgumentValueError if seconds else ArgumentTypeError
            raise error(
                "Runtime",
                "idle_after",
                "None or a finite number of seconds > 0",
                idle_after,
                "Pass idle_after=300, say, to passivate actors idle for five minutes.",
                outcome="no runtime was created",
            )
        if max_active is not None and (type(max_active) is not int or max_active < 1):
            error = ArgumentTypeError if type(max_active) is not int else ArgumentValueError
            raise error(
                "Runtime",
                "max_active",
                "None or an int >= 1",
                max_active,
                "Pass max_active=100_000, say, to keep at most that many actors in memory.",
                outcome="no runtime was created",
            )
        if workers is None:
            workers = DEFAULT_WORKERS
        if type(workers) is not int or workers < 0:
            error = ArgumentTypeError if type(workers) is not int else ArgumentValueError
            raise error(
                "Runtime",
                "workers",
                "an int >= 0 (the number of pooled worker threads; 0 for a thread per actor)",
                workers,
                f"Pass workers=8, say, leave it out for a pool of {DEFAULT_WORKERS}, "
                "or pass workers=0 for a thread per actor.",
                outcome="no runtime was created",
            )
        if isinstance(default_timeout, bool) or not isinstance(default_timeout, (int, float)):
            raise ArgumentTypeError(
                "Runtime",
                "default_timeout",
                "a number of seconds",
                default_timeout,
                outcome="no runtime was created",
            )
        if not 0 < default_timeout < math.inf:
            raise ArgumentValueError(
                "Runtime",
                "default_timeout",
                "a finite number of seconds > 0",
                default_timeout,
                "Nothing waits forever here: pass a finite timeout",
                outcome="no runtime was created",
            )
        if getattr(store, "readonly", False):
            raise ValueError(
                f"store {getattr(store, 'path', store)!s} was opened with readonly=True: it can "
                "be read (stateward inspect) but cannot run actors; open it without readonly=True"
            )
        #: The default bound on requests waiting in a mailbox (`_backpressure`).
        self.mailbox_limit = check_mailbox_limit(mailbox_limit, "Runtime", "no runtime was created")
        self.name = name or f"runtime-{next(_names)}"
        self.default_timeout = float(default_timeout)
        self.error_handler = error_handler
        self.clock = clock
        self.inline_calls = inline_calls
        self._lock = threading.Lock()
        self._actors: dict[str, Handle] = {}
        self._closed = False
        self._host: AsyncHost | None = None
        #: Gives each ``dedicated=True`` actor a thread of its own.
        self.dedicated_host: Host = ThreadHost()
        #: Runs the other actors' turns: a pool of ``workers`` threads, or
        #: (``workers=0``) a thread of its own for each actor.
        self.host: Host = self.dedicated_host if workers == 0 else PoolHost(workers, name=self.name)
        self._errors: collections.deque[ErrorReport] = collections.deque(maxlen=1000)
        self._error_count = 0
        self._counter = itertools.count(1)
        self.timer: Timer = timer if timer is not None else SystemClock(self.name)
        self.store: Store = store if store is not None else MemoryStore()
        #: The store's way to stage a commit in a pooled worker's commit
        #: batch, if it has one (`_commit_batch`); a store without it (a
        #: wrapper, the memory store) is committed durably by ``commit``.
        self._stage_entry: Callable[[str, Any, Any, Any], Any] | None = getattr(
            self.store, "stage_entry", None
        )
        self.runtime_id = new_runtime_id()
        runtime_started(self.runtime_id)
        #: Renews this runtime's lease on the store (`_lease_renewal`).
        self._lease = LeaseRenewal(self.store, self.runtime_id, self.timer, self.name)
        self.fatal_handler = fatal_handler
        self._fatal_error: BaseException | None = None
        self._fatal_event = threading.Event()
        self._event_counts: collections.Counter[str] = collections.Counter()
        self._subscribers: list[Callable[[SupervisorEvent], Any]] = []
        #: Passivates idle actors, when ``idle_after`` or ``max_active`` is given.
        self.passivation: Passivation | None = (
            None
            if idle_after is None and max_active is None
            else Passivation(self.timer, idle_after, max_active)
        )
        #: Arms the machines' pending timers on ``timer`` (`_timers`).
        self.machine_timers = MachineTimers(self)
        self.root = Supervisor(
            "root", runtime=self, max_restarts=max_restarts, within=within, _root=True
        )
        #: Whether the metrics carry an ``actor`` label (see above).
        self.per_actor_metrics = per_actor_metrics
        #: Supervision events by (supervisor, kind), for the metrics.
        self._supervisor_events: collections.Counter[tuple[str, str]] = collections.Counter()
        self._endpoints: list[MetricsEndpoint] = []
        #: Times and traces each request when metrics or traces are configured
        #: (`_probe.Probe`, set by `_telemetry`); None: nothing per message.
        self.probe: Any = None
        self._telemetry = Telemetry(self, meter_provider, tracer_provider)
        live_runtimes.add(self)

    # -- actors ------------------------------------------------------------------

    def _unique_name(self, kind: str) -> str:
        return f"{kind}-{next(self._counter)}"

    def _start(
        self,
        handle: Handle,
        cell: Cell,
        supervisor: Supervisor | None,
        restart: str,
        dedicated: bool = False,
    ) -> None:
        """Register ``handle`` and start its actor on the runtime's host (a
        thread of its own if ``dedicated``), under ``supervisor``."""
        supervisor = supervisor if supervisor is not None else self.root
        if supervisor.runtime is not self:
            raise ValueError(f"supervisor {supervisor.name!r} belongs to another runtime")
        with self._lock:
            if self._closed:
                raise RuntimeStopped(self.name)
            if cell.name in self._actors:
                raise DuplicateActorName(cell.name, self.name)
            self._actors[cell.name] = handle
        self._telemetry.started()
        try:
            self._recover_or_create(cell)
            host = self.dedicated_host if dedicated else self.host
            lifecycle = Lifecycle(cell, host)
            supervisor._add_actor(lifecycle, restart)
            # Once its mailbox has an owner: a timer overdue at recovery fires at once.
            self.machine_timers.arm(cell, cell.snapshot)  # none for most: one attribute read
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
            forget = handle is not None and handle._cell is cell
            if forget:
                del self._actors[cell.name]
        if forget:
            self._telemetry.retire(cell)
        self.machine_timers.disarm(cell)
        if self.passivation is not None:
            self.passivation.forget(cell.lifecycle)

    def _forget(self, name: str, handle: Handle) -> None:
        with self._lock:
            forget = self._actors.get(name) is handle
            if forget:
                del self._actors[name]
        if forget:
            self._telemetry.retire(handle._cell)

    def _observed(self, cell: Cell) -> None:
        """``cell`` got an observer or a watch. Its commits run here, so its
        observers are called on its turn: nothing to do. (A runtime whose
        actors commit elsewhere starts following the commits.)"""

    def _stop_actor(self, cell: Cell, reason: str, timeout: float | None, *, wait: bool) -> None:
        """Stop ``cell``'s actor for good (see `ActorHandle.stop`), and forget it."""
        lifecycle: Lifecycle = cell.lifecycle
        if cell.supervisor is not None:
            cell.supervisor._remove(lifecycle)
        lifecycle.stop(reason, self.default_timeout if timeout is None else timeout, wait=wait)
        self._forget_cell(cell)

    def get(self, name: str) -> Any:
        """The live actor named ``name`` (its handle).

        Raises:
            ActorNotFound: no live actor has that name here (a `KeyError`).
        """
        with self._lock:
            try:
                return self._actors[name]
            except (KeyError, TypeError):
                known = tuple(sorted(self._actors))
        raise ActorNotFound(name, self.name, known)

    def _durable_store(self) -> Store:
        """The store that keeps this runtime's actors: `serve_timers` reads
        the timers due from it (a `RayRuntime`'s is the one its shards share)."""
        return self.store

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._actors

    def names(self) -> list[str]:
        """The names of the live actors, in start order."""
        with self._lock:
            return list(self._actors)

    def __iter__(self) -> Iterator[Any]:
        with self._lock:
            return iter(list(self._actors.values()))

    def stats(self) -> RuntimeStats:
        """Per actor (by name): messages handled, failures, hook errors, queue depth,
        version, restarts and last error; plus the supervision event counts,
        the error count and the fatal failure, as attributes."""
        with self._lock:
            events = dict(self._event_counts)
        passivation = self.passivation
        counts = {} if passivation is None else passivation.counts()
        return RuntimeStats(
            types.MappingProxyType({handle.name: handle._cell.stats() for handle in self}),
            events=types.MappingProxyType({kind: events.get(kind, 0) for kind in EVENT_KINDS}),
            errors=self._error_count,
            fatal=None if self._fatal_error is None else repr(self._fatal_error),
            **counts,
        )

    def passivate_idle(self) -> int:
        """Passivate every actor that is idle now (started, running nothing,
        nothing queued), whatever ``idle_after`` says; return how many.

        Only a runtime made with ``idle_after=`` or ``max_active=`` passivates.

        Raises:
            RuntimeError: this runtime was made without either.
        """
        passivation = self.passivation
        if passivation is None:
            raise RuntimeError(
                f"runtime {self.name!r} does not passivate actors: make it with "
                "Runtime(idle_after=...) or Runtime(max_active=...)"
            )
        return passivation.passivate_idle()

    # -- supervision ----------------------------------------------------------------

    def subscribe(self, fn: Callable[[SupervisorEvent], Any]) -> None:
        """Call ``fn(event)`` for every `SupervisorEvent` of every supervisor here.

        It runs on the thread where the event happened (see
        `Supervisor.subscribe`)."""
        check_callable(fn, "Runtime.subscribe", "fn")
        with self._lock:
            self._subscribers.append(fn)

    def _count_kind(self, kind: str, supervisor: str) -> None:
        """Count an event of ``supervisor`` that has no subscriber to go to."""
        with self._lock:
            self._event_counts[kind] += 1
            self._supervisor_events[supervisor, kind] += 1

    def _count_event(self, event: SupervisorEvent) -> None:
        with self._lock:
            self._event_counts[event.kind] += 1
            self._supervisor_events[event.supervisor, event.kind] += 1
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

    def _supervisor_event_counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._supervisor_events)

    def _gave_up_supervisors(self) -> list[str]:
        """The supervisors under the root that have given up (and stay so)."""
        found, todo = [], [self.root]
        while todo:
            supervisor = todo.pop()
            if supervisor.gave_up and supervisor is not self.root:  # the root's is fatal
                found.append(supervisor.name)
            with supervisor._lock:
                children = list(supervisor._children)
            todo += [c.target for c in children if isinstance(c.target, Supervisor)]
        return sorted(found)

    # -- operations: metrics and health ----------------------------------------------

    def serve_metrics(self, port: int = 0, host: str = "127.0.0.1") -> MetricsEndpoint:
        """Serve this runtime's metrics in the Prometheus text format on
        ``http://host:port/metrics`` (``/healthz``: `health`, 200 or 503), on
        a thread of its own; return the `MetricsEndpoint` (its ``url``,
        ``port``; ``close()``). Port 0 picks a free port. The runtime's
        shutdown closes it. Needs ``pip install 'stateward[prometheus]'``.

        Raises:
            InvalidArgument: a port that is not an int in 0..65535, or a host
                that is not a str.
            OSError: the address cannot be listened on (in use, say).
            ImportError: the ``prometheus`` extra is not installed.
            RuntimeStopped: the runtime has shut down.
        """
        if self._closed:
            raise RuntimeStopped(self.name)
        endpoint = serve_metrics(self, port, host)
        with self._lock:
            closed = self._closed
            if not closed:
                self._endpoints.append(endpoint)
        if closed:  # shut down meanwhile
            endpoint.close()
            raise RuntimeStopped(self.name)
        return endpoint

    def _endpoint_closed(self, endpoint: MetricsEndpoint) -> None:
        with self._lock:
            if endpoint in self._endpoints:
                self._endpoints.remove(endpoint)

    def health(self) -> Health:
        """Whether this runtime can do its work now, for a readiness probe: a
        `Health` whose ``ok`` is False, with a reason each, when it has shut
        down, had a fatal failure, a supervisor of it gave up, its store does
        not answer a read, or an actor's mailbox is at its limit."""
        return health_of(self)

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

    def _submit_async(
        self, awaitable: Awaitable[Any], cell: Cell, context: contextvars.Context | None = None
    ) -> concurrent.futures.Future[Any]:
        """Start a hook's ``awaitable`` on the runtime's event loop (made on
        first use), as a task in ``context`` (a copy of the calling thread's
        by default: `AsyncHost.submit`); cancelling the future cancels it."""
        host = self._host
        if host is None:
            with self._lock:
                if self._host is None:
                    self._host = AsyncHost(self.name)
                host = self._host
        return host.submit(awaitable, cell, context)

    def in_event_loop_thread(self) -> bool:
        """Whether the calling thread is this runtime's event loop thread."""
        host = self._host
        return host is not None and threading.current_thread() is host.thread

    # -- shutdown -------------------------------------------------------------------

    @property
    def workers(self) -> int:
        """How many pooled worker threads run the actors' turns; 0 when each
        actor has a thread of its own (``Runtime(workers=0)``)."""
        host = self.host
        return host.workers if isinstance(host, PoolHost) else 0

    @property
    def quantum(self) -> int | None:
        """The most messages of one actor a pooled worker runs before it
        serves the next actor waiting (`POOL_TURN_BUDGET`); None when each
        actor has a thread of its own (``workers=0``)."""
        return POOL_TURN_BUDGET if isinstance(self.host, PoolHost) else None

    @property
    def closed(self) -> bool:
        """Whether `shutdown` has begun: no new actors can start."""
        return self._closed

    def shutdown(
        self, timeout: float = DEFAULT_SHUTDOWN_TIMEOUT, *, reason: str | None = None
    ) -> ShutdownReport:
        """Drain every mailbox and stop every actor within ``timeout`` seconds in
        all, then close the store; return a `ShutdownReport`. ``timeout`` is a
        finite number of seconds >= 0; None means ``DEFAULT_SHUTDOWN_TIMEOUT``.
        Any other value raises an `InvalidArgument` before anything is stopped.

        Every actor is asked first to stop once it has handled what is already
        in its mailbox (so they drain at the same time); requests sent after
        that get `ActorStopped`, saying ``reason`` (by default "runtime 'name'
        shut down"). Then shutdown waits for them, newest first,
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
        checked = check_timeout(timeout, "Runtime.shutdown", outcome="nothing was shut down")
        timeout = DEFAULT_SHUTDOWN_TIMEOUT if checked is None else checked
        if reason is not None and not isinstance(reason, str):
            raise ArgumentTypeError(
                "Runtime.shutdown",
                "reason",
                "a str (what ActorStopped says to requests sent from now on) or None",
                reason,
                outcome="nothing was shut down",
            )
        started = time.monotonic()
        deadline = started + timeout
        reason = reason or f"runtime {self.name!r} shut down"
        with self._lock:
            if self._closed and not self._actors:
                return ShutdownReport(self.name, timeout, 0.0)
            self._closed = True
            handles = list(self._actors.values())
        if self.passivation is not None:
            self.passivation.close()
        self.root._ask_to_stop(reason)
        dropped: dict[str, int] = {}
        abandoned, crashed = self.root._await_stop(deadline, reason, timeout, dropped)
        for handle in reversed(handles):  # any left outside the tree
            cell = handle._cell
            handle._stop(reason, max(0.0, deadline - time.monotonic()), wait=True)
            if not cell.is_stopped and handle.name not in abandoned:
                dropped[handle.name] = cell.lifecycle.abandon(reason)
                abandoned.append(handle.name)
        self.host.close(max(0.0, deadline - time.monotonic()))
        host = self._host
        if host is not None:
            # Unwinding cancelled hooks gets a moment even when time is up.
            host.close(max(0.2, deadline - time.monotonic()))
        self._lease.end()
        self.timer.close()
        with self._lock:
            endpoints, self._endpoints = self._endpoints, []
        for endpoint in endpoints:
            endpoint.close()
        store_error = ""
        try:
            self.store.close()
        except StoreWriteError as exc:  # what it held is lost: the report says so
            store_error = str(exc)
        finally:
            runtime_ended(self.runtime_id)
        report = ShutdownReport(
            self.name,
            timeout,
            time.monotonic() - started,
            tuple(abandoned),
            tuple(crashed),
            tuple(dropped.items()),
            store_error,
        )
        if not report.clean:
            logger.error("runtime %s", report.describe())
        return report

    def run_until_signal(
        self,
        budget: float = DEFAULT_SHUTDOWN_TIMEOUT,
        *,
        signals: Iterable[int] = STOP_SIGNALS,
        on_ready: Callable[[], Any] | None = None,
        before_stop: Callable[[], Any] | None = None,
    ) -> int:
        """Run until SIGTERM or SIGINT (or the root supervisor gives up), then
        stop gracefully within ``budget`` seconds; return the exit code.

        Call it from the main thread; the daemon's work runs on other threads:
        ``sys.exit(runtime.run_until_signal(budget=20, on_ready=server.start))``.
        It installs handlers for ``signals``, calls ``on_ready()`` if given
        (from then on a signal stops the daemon gracefully: start taking work
        there, or tell the service manager that the daemon is ready), and
        blocks until one of ``signals`` arrives. Then, on the main thread, it:

        1. calls ``before_stop()``, if given, while the actors still take
           requests (to stop your own intake, or record that the daemon is
           stopping);
        2. shuts the runtime down in what is left of ``budget``: a request
           sent from then on is refused with `ActorStopped`, whose message
           says that the runtime is stopping; what each actor had queued
           before is handled; a store in snapshot mode writes its final
           snapshots; the store is closed;
        3. puts back the signal handlers it replaced.

        A second signal while it stops is ignored: ``budget`` bounds the stop.

        Returns:
            0 if every actor drained in time; 1 if an actor was abandoned (its
            running and queued requests were refused), crashed while stopping,
            or the root supervisor gave up; then it also writes one line to
            standard error naming the actors and how many requests each gave
            up (the `ShutdownReport` is logged as well).

        Raises:
            NotInMainThread: called on another thread (a `ValueError`); only
                the main thread can install signal handlers.
            InvalidArgument: a bad ``budget``, ``signals``, ``on_ready`` or
                ``before_stop``; nothing was installed.
            Exception: whatever ``before_stop`` raised, once the runtime has
                stopped; whatever ``on_ready`` raised, with the handlers put
                back and the runtime left running (its ``with`` block stops it).
        """
        return run_until_signal(self, budget, signals, on_ready, before_stop)

    async def arun_until_signal(
        self,
        budget: float = DEFAULT_SHUTDOWN_TIMEOUT,
        *,
        signals: Iterable[int] = STOP_SIGNALS,
        on_ready: Callable[[], Any] | None = None,
        before_stop: Callable[[], Any] | None = None,
    ) -> int:
        """`run_until_signal` for an asyncio daemon: await it in the main
        thread's event loop (``sys.exit(asyncio.run(main()))``, with ``main``
        ending in ``return await runtime.arun_until_signal(budget=20)``).

        The signals are taken through ``loop.add_signal_handler`` and the
        shutdown runs on a thread of its own, so the loop runs on meanwhile:
        tasks awaiting actors get their replies (or `ActorStopped`).
        ``on_ready`` and ``before_stop`` may be coroutine functions. A handler
        the loop itself had for one of ``signals`` is replaced and not put back.
        """
        return await arun_until_signal(self, budget, signals, on_ready, before_stop)

    def __enter__(self) -> Runtime:
        """Make this the current runtime of the calling context (see above)."""
        current_block.set((self, current_block.get()))
        return self

    def __exit__(self, *exc: object) -> None:
        """Shut down, and make the runtime that was current before current again."""
        entry = current_block.get()
        if entry is not None and entry[0] is self:
            current_block.set(entry[1])
        self.shutdown()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running"
        return f"<Runtime {self.name!r} {state}, {len(self._actors)} actors>"


set_runtimes(lambda: list(live_runtimes))
