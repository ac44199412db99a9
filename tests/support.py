"""Helpers shared by the tests (importable as ``support``)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import struct
import sys
import threading
import time
import zoneinfo
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, NamedTuple

from stateward.core import (
    CreationOutcome,
    FrozenDict,
    FrozenList,
    ImmutableState,
    MachineSnapshot,
    MachineSpec,
    TransitionOutcome,
    TransitionRecord,
    apply_transition,
    apply_transition_async,
)
from stateward.core._machine import _run_here, transition_step

# -- machines and operations shared by the tests -------------------------------------------

#: The smallest machine that can keep moving: "a" and "b", each to the other.
TOGGLE = {"a": ["b"], "b": ["a"]}
#: An order's life: paid or cancelled, shipped or cancelled, delivered.
ORDER_FLOW = {
    "pending": ["paid", "cancelled"],
    "paid": ["shipped", "cancelled"],
    "shipped": ["delivered"],
    "delivered": [],
    "cancelled": [],
}
#: `ORDER_FLOW` without delivery: shipped is terminal.
ORDER_FLOW_UNTIL_SHIPPED = {
    "pending": ["paid", "cancelled"],
    "paid": ["shipped", "cancelled"],
    "shipped": [],
    "cancelled": [],
}
#: The shortest order: once paid it can only be shipped, no longer cancelled.
ORDER_FLOW_PAID_IS_FINAL = {
    "pending": ["paid", "cancelled"],
    "paid": ["shipped"],
    "shipped": [],
    "cancelled": [],
}


def bump(state: ImmutableState) -> ImmutableState:
    """A manager's operation: one more ``n``."""
    return state.update(n=state.n + 1)


# -- threads ---------------------------------------------------------------------------------


class Ticks:
    """A wall clock for histories: one second later at each call."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now


@contextlib.contextmanager
def switching_threads_often() -> Iterator[None]:
    """Switch threads as often as the interpreter can: more interleavings."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def wait_for_free_turn(mailbox: Any, timeout: float = 10.0) -> None:
    """Wait (bounded) until nobody holds ``mailbox``'s turn: its holder has
    given it back, after looking at the queue once more. The turn is a token
    nobody can block on (`Mailbox.turn`), so this polls it."""
    deadline = time.monotonic() + timeout
    while mailbox.turn:
        assert time.monotonic() < deadline, f"the turn is still held after {timeout} s"
        time.sleep(0.0005)


class Workers:
    """Start threads that are always joined, and re-raise what they raised."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()

    def start(self, target: Callable[..., Any], *args: Any, name: str | None = None) -> None:
        def run() -> None:
            try:
                target(*args)
            except BaseException as exc:  # re-raised in the test thread by join()
                with self._lock:
                    self._errors.append(exc)

        thread = threading.Thread(target=run, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def join(self, timeout: float = 30.0) -> None:
        for thread in self._threads:
            thread.join(timeout)
        alive = [t.name for t in self._threads if t.is_alive()]
        self._threads.clear()
        if self._errors:
            first = self._errors[0]
            raise AssertionError(
                f"{len(self._errors)} worker(s) failed; first: {first!r}"
            ) from first
        assert not alive, f"workers still running after {timeout}s: {alive}"


def join_new_threads(before: set[threading.Thread], timeout: float = 10.0) -> list[str]:
    """Join the threads started since ``before``, within one shared deadline;
    return the names of those still alive."""
    deadline = time.monotonic() + timeout
    new = [t for t in threading.enumerate() if t not in before]
    for thread in new:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [t.name for t in new if t.is_alive()]


# -- values ------------------------------------------------------------------------------------


def assert_identical(a: Any, b: Any) -> None:
    """Equal, and of the same type all the way down (floats compared bit for bit)."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, float):
        assert struct.pack(">d", a) == struct.pack(">d", b)
    elif isinstance(a, (list, tuple, FrozenList)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_identical(x, y)
    elif isinstance(a, (dict, FrozenDict, ImmutableState)):
        assert list(a) == list(b)  # not a.keys(): a field named "keys" would hide it
        for key in a:
            assert_identical(a[key], b[key])
    elif isinstance(a, (set, frozenset)):
        assert a == b
        for x in a:
            (y,) = [y for y in b if y == x]
            assert_identical(x, y)
    elif isinstance(a, dt.datetime):
        assert a.replace(tzinfo=None, fold=0) == b.replace(tzinfo=None, fold=0)
        assert a.fold == b.fold
        assert type(a.tzinfo) is type(b.tzinfo)
        if isinstance(a.tzinfo, zoneinfo.ZoneInfo):
            assert a.tzinfo.key == b.tzinfo.key
        elif a.tzinfo is not None:
            assert a.tzinfo.utcoffset(None) == b.tzinfo.utcoffset(None)
            assert a.tzinfo.tzname(None) == b.tzinfo.tzname(None)
    else:
        assert a == b


# -- transitions: every way into the algorithm, and what came out ---------------------------
#
# Every way into the transition algorithm, as one signature: the generated
# plain-code path (through apply_transition with its private loop or a caller's
# runner, and through the actors' transition_step) and the generators behind
# apply_transition_async. Tests run each case through each of them.

#: A fixed transition time, for outcomes that compare equal.
T0 = dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.UTC)
#: The smallest machine: one move, from "a" to "b".
FLOW = {"a": ["b"], "b": []}


def at_t0() -> dt.datetime:
    """A clock stopped at `T0`."""
    return T0


def _via_apply(spec: MachineSpec, snap: MachineSnapshot, **kw: Any) -> TransitionOutcome:
    return apply_transition(spec, snap, clock=at_t0, **kw)


def _via_async(spec: MachineSpec, snap: MachineSnapshot, **kw: Any) -> TransitionOutcome:
    return asyncio.run(apply_transition_async(spec, snap, clock=at_t0, **kw))


def _via_runner(spec: MachineSpec, snap: MachineSnapshot, **kw: Any) -> TransitionOutcome:
    def runner(awaitable: Awaitable[Any]) -> Any:
        async def wait() -> Any:
            return await awaitable

        return asyncio.run(wait())

    return apply_transition(spec, snap, clock=at_t0, run_async=runner, **kw)


def _via_step(spec: MachineSpec, snap: MachineSnapshot, **kw: Any) -> TransitionOutcome:
    target = kw.pop("target", None)
    new, entry, ctx, after = transition_step(
        spec, snap, target, kw.get("event"), kw.get("payload"), T0, kw.get("machine"), _run_here
    )
    return TransitionOutcome(snap, new, TransitionRecord(*entry), ctx, after)


Driver = Callable[..., TransitionOutcome]
DRIVERS: dict[str, Driver] = {
    "apply_transition": _via_apply,
    "apply_transition_async": _via_async,
    "apply_transition+run_async": _via_runner,
    "transition_step": _via_step,
}
#: One plain-code driver and the async one, for the slower cases.
BOTH = ["apply_transition", "apply_transition_async"]


class Raised(NamedTuple):
    """An exception, described: its type, message, notes and chain, for comparison."""

    type: type[BaseException]
    message: str
    notes: tuple[str, ...] = ()
    cause: Raised | None = None
    context: Raised | None = None
    suppress_context: bool = False


def raised(exc: BaseException | None, depth: int = 0) -> Raised | None:
    """Describe ``exc`` and the exceptions chained to it."""
    if exc is None:
        return None
    assert depth < 5, "an exception chain this long is not what these tests make"
    return Raised(
        type(exc),
        str(exc),
        tuple(getattr(exc, "__notes__", ())),
        raised(exc.__cause__, depth + 1),
        raised(exc.__context__, depth + 1),
        exc.__suppress_context__,
    )


class Done(NamedTuple):
    """A transition or creation that passed: where it went and what it carried."""

    state: str
    payload: dict[str, Any]
    data: dict[str, Any]
    payload_keys: tuple[str, ...]


def observe(run: Callable[[], TransitionOutcome | CreationOutcome]) -> Done | Raised | None:
    """Run ``run`` and describe what it returned or raised (any BaseException)."""
    try:
        outcome = run()
    except BaseException as exc:  # KeyboardInterrupt included: it is one of the behaviours
        return raised(exc)
    keys = outcome.record.payload_keys if isinstance(outcome, TransitionOutcome) else ()
    return Done(
        outcome.snapshot.state,
        dict(outcome.context.payload),
        dict(outcome.context.data),
        keys,
    )
