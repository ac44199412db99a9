"""Running a daemon until SIGTERM or SIGINT, then stopping it gracefully.

`Runtime.run_until_signal` (a thread) and `Runtime.arun_until_signal` (a
coroutine) wait in the main thread until one of the signals arrives, or the
root supervisor gives up, then stop the runtime within a budget: the
caller's ``before_stop``, then `Runtime.shutdown`, which refuses new
requests, drains what is queued, and closes the store (writing the final
snapshots of a store in snapshot mode). They return the process's exit
code: 0 for a clean stop, 1 if work had to be abandoned, the store could
not save what it held, or the runtime failed, saying what on standard
error. The handlers they install are put back before they return (on
asyncio, also a handler the loop itself had: ``loop.add_signal_handler``);
a second signal while stopping is ignored: the budget bounds the stop.

``on_ready`` runs once the handlers are in, before the wait: from then on a
signal stops the daemon gracefully, so it is the moment to start taking work
or to tell the service manager the daemon is ready.

The signal handler only records the signal: it runs between two bytecodes
of the main thread, which may hold any lock then. The main thread is woken
through ``signal.set_wakeup_fd`` (a byte on a socket, written at C level,
whichever thread the signal was delivered to) or, on asyncio, by the
loop's own ``add_signal_handler``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from stateward.core import ArgumentTypeError, ArgumentValueError, StatewardError

from ._supervision import ShutdownReport

logger = logging.getLogger("stateward.actors")

#: The signals a daemon stops on by default: the service manager's and Ctrl-C.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: The exit code of a daemon that had to abandon work, or whose runtime failed.
EXIT_INCOMPLETE = 1

_OUTCOME = "no signal handler was installed"


class NotInMainThread(StatewardError, ValueError):
    """A call that installs signal handlers, made off the main thread.

    Only the main thread of the main interpreter can install signal handlers
    (Python raises `ValueError` elsewhere, which this subclasses).

    Attributes:
        call: what was called.
        thread: the name of the thread it was called on.
    """

    def __init__(self, call: str, thread: str) -> None:
        self.call = call
        self.thread = thread
        super().__init__(
            f"{call} installs signal handlers, which only the main thread can do; it was "
            f"called on thread {thread!r}. Call it from the main thread (the one that runs "
            "your script, or its asyncio.run), and run the daemon's other work on other threads"
        )


class Stoppable(Protocol):
    """What stopping on a signal needs of a `Runtime` (one layer up)."""

    name: str
    fatal_handler: Callable[[BaseException], Any] | None

    @property
    def fatal(self) -> BaseException | None: ...

    def shutdown(self, timeout: float = ..., *, reason: str | None = None) -> ShutdownReport: ...


def run_until_signal(
    runtime: Stoppable,
    budget: float,
    signals: Iterable[int],
    on_ready: Callable[[], Any] | None,
    before_stop: Callable[[], Any] | None,
) -> int:
    """`Runtime.run_until_signal`: see there."""
    call = "Runtime.run_until_signal"
    budget, wanted = _check(call, budget, signals, on_ready, before_stop)
    received: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        received.append(signum)  # nothing more: see the module

    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)

    def wake() -> None:
        try:
            writer.send(b"\0")
        except OSError:  # full (it is awake already) or closed (it is done)
            pass

    installed: dict[int, Any] = {}
    previous_fd: int | None = None
    fatal_handler = _watch_fatal(runtime, wake)
    try:
        previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        for signum in wanted:
            installed[signum] = _restorable(signal.signal(signum, on_signal))
        _log_waiting(runtime, wanted)
        if on_ready is not None:
            on_ready()
        while not received and runtime.fatal is None:
            select.select([reader], [], [])  # a byte comes with each signal and the failure
            _drain(reader)
        return _stop(runtime, budget, received, before_stop)
    finally:
        _unwatch_fatal(runtime, fatal_handler)
        for number, handler in reversed(installed.items()):
            signal.signal(number, handler)
        if previous_fd is not None:
            signal.set_wakeup_fd(previous_fd)
        reader.close()
        writer.close()


async def arun_until_signal(
    runtime: Stoppable,
    budget: float,
    signals: Iterable[int],
    on_ready: Callable[[], Any] | None,
    before_stop: Callable[[], Any] | None,
) -> int:
    """`Runtime.arun_until_signal`: see there."""
    call = "Runtime.arun_until_signal"
    budget, wanted = _check(call, budget, signals, on_ready, before_stop)
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()
    received: list[int] = []

    def on_signal(signum: int) -> None:  # on the loop, as add_signal_handler calls it
        received.append(signum)
        woken.set()

    def wake() -> None:
        try:
            loop.call_soon_threadsafe(woken.set)
        except RuntimeError:  # the loop has closed: nobody waits any more
            pass

    installed: dict[int, Any] = {}
    #: Handlers the loop itself had (``loop.add_signal_handler``), put back on it.
    loop_had: dict[int, asyncio.Handle] = {}
    fatal_handler = _watch_fatal(runtime, wake)
    try:
        for signum in wanted:
            previous = _restorable(signal.getsignal(signum))
            own = _loop_handler(loop, signum)
            loop.add_signal_handler(signum, on_signal, signum)
            installed[signum] = previous
            if own is not None:
                loop_had[signum] = own
        _log_waiting(runtime, wanted)
        if on_ready is not None:
            result = on_ready()
            if inspect.isawaitable(result):
                await result
        while not received and runtime.fatal is None:
            woken.clear()
            await woken.wait()
        return await _astop(runtime, budget, received, before_stop)
    finally:
        _unwatch_fatal(runtime, fatal_handler)
        for number, handler in reversed(installed.items()):
            own = loop_had.get(number)
            if own is None:
                loop.remove_signal_handler(number)
                signal.signal(number, handler)
            else:  # in place of ours, as the loop had it
                callback = own._callback  # type: ignore[attr-defined]  # no public getter
                loop.add_signal_handler(number, callback, *own._args)


# -- stopping ------------------------------------------------------------------------------------


def _stop(
    runtime: Stoppable, budget: float, received: list[int], before_stop: Callable[[], Any] | None
) -> int:
    """Run ``before_stop``, then shut down in what is left of ``budget``."""
    started = time.monotonic()
    cause = _cause(received, runtime)
    logger.info("runtime %r: stopping %s within %g s", runtime.name, cause, budget)
    failure: BaseException | None = None
    if before_stop is not None:
        try:
            before_stop()
        except BaseException as exc:  # raised once the runtime has stopped
            failure = exc
    return _shut_down(runtime, budget, cause, started, failure)


async def _astop(
    runtime: Stoppable, budget: float, received: list[int], before_stop: Callable[[], Any] | None
) -> int:
    """`_stop` on an event loop: ``before_stop`` may be a coroutine function,
    and the shutdown runs on a thread of its own while the loop runs on."""
    started = time.monotonic()
    cause = _cause(received, runtime)
    logger.info("runtime %r: stopping %s within %g s", runtime.name, cause, budget)
    failure: BaseException | None = None
    if before_stop is not None:
        try:
            result = before_stop()
            if inspect.isawaitable(result):
                await result
        except BaseException as exc:  # raised once the runtime has stopped
            failure = exc
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()

    def shut_down() -> None:
        try:
            code: int | BaseException = _shut_down(runtime, budget, cause, started, failure)
        except BaseException as exc:  # delivered where it is awaited
            code = exc
        loop.call_soon_threadsafe(_settle, done, code)

    # The loop runs on meanwhile: an actor whose awaited calls run inline on
    # it (or whose hooks await something of it) can drain.
    thread = threading.Thread(target=shut_down, name=f"stateward:{runtime.name}:stop")
    thread.start()
    code = await done  # if this is cancelled, the shutdown still runs to its end
    thread.join(5.0)  # it has settled the future: only its last steps are left
    return code


def _settle(future: asyncio.Future[int], outcome: int | BaseException) -> None:
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _shut_down(
    runtime: Stoppable,
    budget: float,
    cause: str,
    started: float,
    failure: BaseException | None,
) -> int:
    left = round(max(0.0, budget - (time.monotonic() - started)), 3)  # read by people
    reason = f"runtime {runtime.name!r} is stopping {cause} and takes no new requests"
    report = runtime.shutdown(left, reason=reason)
    if failure is not None:
        raise failure
    problems = []
    if not report.clean:
        problems.append(report.describe())
    fatal = runtime.fatal
    if fatal is not None:
        problems.append(f"its root supervisor gave up ({fatal!r})")
    if not problems:
        logger.info("runtime %r stopped cleanly %s in %.2f s", runtime.name, cause, report.seconds)
        return 0
    message = f"stateward: runtime {runtime.name!r}, stopping {cause}: {'; '.join(problems)}"
    print(message, file=sys.stderr, flush=True)
    return EXIT_INCOMPLETE


# -- helpers -------------------------------------------------------------------------------------


def _check(
    call: str, budget: Any, signals: Any, on_ready: Any, before_stop: Any
) -> tuple[float, tuple[signal.Signals, ...]]:
    if isinstance(budget, bool) or not isinstance(budget, (int, float)):
        raise ArgumentTypeError(call, "budget", "a number of seconds", budget, outcome=_OUTCOME)
    if not (budget >= 0 and math.isfinite(budget)):
        raise ArgumentValueError(
            call,
            "budget",
            "a finite number of seconds >= 0",
            budget,
            "Pass budget=20, say: what the service manager allows before it kills the process, "
            "less a margin",
            outcome=_OUTCOME,
        )
    try:
        wanted = tuple(dict.fromkeys(signal.Signals(s) for s in signals))
    except (TypeError, ValueError):
        raise ArgumentValueError(
            call,
            "signals",
            "signal numbers, such as (signal.SIGTERM, signal.SIGINT)",
            signals,
            outcome=_OUTCOME,
        ) from None
    uncatchable = {getattr(signal, name, None) for name in ("SIGKILL", "SIGSTOP")}
    if not wanted or any(s in uncatchable for s in wanted):
        raise ArgumentValueError(
            call,
            "signals",
            "at least one signal, none of them SIGKILL or SIGSTOP (they cannot be caught)",
            signals,
            outcome=_OUTCOME,
        )
    for name, value in (("on_ready", on_ready), ("before_stop", before_stop)):
        if value is not None and not callable(value):
            expected = "None or a function of no arguments"
            raise ArgumentTypeError(call, name, expected, value, outcome=_OUTCOME)
    thread = threading.current_thread()
    if thread is not threading.main_thread():
        raise NotInMainThread(call, thread.name)
    return float(budget), wanted


def _watch_fatal(runtime: Stoppable, wake: Callable[[], None]) -> Callable[..., Any]:
    """Wrap the runtime's fatal handler so that a fatal failure wakes the
    waiter too; return the wrapper (`_unwatch_fatal` puts the old one back)."""
    previous = runtime.fatal_handler

    def on_fatal(error: BaseException) -> None:
        wake()
        if previous is not None:
            previous(error)

    on_fatal.previous = previous  # type: ignore[attr-defined]
    runtime.fatal_handler = on_fatal
    return on_fatal


def _unwatch_fatal(runtime: Stoppable, wrapper: Callable[..., Any]) -> None:
    if runtime.fatal_handler is wrapper:  # unless the application has set its own since
        runtime.fatal_handler = wrapper.previous  # type: ignore[attr-defined]


def _loop_handler(loop: asyncio.AbstractEventLoop, signum: int) -> asyncio.Handle | None:
    """The handler ``loop`` itself has for ``signum`` (its ``add_signal_handler``),
    or None. asyncio offers no public way to read one, so this reads the
    table its Unix loops keep; a loop without one (another implementation)
    is taken to have none."""
    handlers = getattr(loop, "_signal_handlers", None)
    handle = handlers.get(signum) if isinstance(handlers, dict) else None
    if isinstance(handle, asyncio.Handle) and not handle.cancelled():
        return handle
    return None


def _restorable(handler: Any) -> Any:
    """A handler ``signal.signal`` can put back: None means one installed
    outside Python, which cannot be, so the default action is put back."""
    return signal.SIG_DFL if handler is None else handler


def _drain(reader: socket.socket) -> None:
    try:
        while reader.recv(512):
            pass
    except BlockingIOError:
        pass


def _cause(received: list[int], runtime: Stoppable) -> str:
    """Why the runtime stops, to follow "stopping": "on SIGTERM", say."""
    if received:
        return f"on {signal.Signals(received[0]).name}"
    return f"because its root supervisor gave up ({runtime.fatal!r})"


def _log_waiting(runtime: Stoppable, wanted: tuple[signal.Signals, ...]) -> None:
    logger.info("runtime %r: running until %s", runtime.name, " or ".join(s.name for s in wanted))
