"""What keeps an idle cell small: locks shared by stripes, rarely used fields
kept aside, and a stopped event made only for whoever waits.

A cell (`_cell.Cell`) has no lock of its own: each role (a reply's
callbacks, a deadline fence, observers, the stopped event) has a fixed set
of locks shared by every cell (`Stripes`). Each role has its own set, so two
roles never map to one lock, and each of these locks is a leaf (nothing else
is taken while one is held), so cells sharing one cannot deadlock.

Fields that most cells never set (errors, restarts, an awaited hook, a stop
reason...) live in a side object, `Extra`, made on the first write of a
value other than the default (`Rare`): an idle cell pays one slot for all.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar, overload

T = TypeVar("T")

#: How many locks each shared role has.
STRIPES = 64


class Stripes:
    """A fixed set of locks for one role, shared by every cell."""

    __slots__ = ("_locks", "_next")

    def __init__(self) -> None:
        self._locks = tuple(threading.Lock() for _ in range(STRIPES))
        self._next = itertools.count()

    def pick(self) -> threading.Lock:
        """The next lock, round robin (``next`` on a count is atomic)."""
        return self._locks[next(self._next) % STRIPES]

    def of(self, owner: object) -> threading.Lock:
        """The lock of ``owner``, by identity (costs ``owner`` nothing to keep)."""
        return self._locks[(id(owner) >> 4) % STRIPES]


#: Orders a reply's done-callbacks and waiters (`Reply`).
callback_locks = Stripes()
#: Orders a deadline fence against the end of the fenced request.
commit_locks = Stripes()
#: Orders changes to a cell's observers.
observer_locks = Stripes()
#: Orders the making of a cell's side object, and of its stopped event
#: against the cell stopping.
extra_locks = Stripes()


class Cancellable(Protocol):
    """What a fence cancels: an awaited hook (see ``CellState.awaiting``)."""

    def cancel(self) -> object: ...


class Extra:
    """A cell's rarely set fields, made on the first write of one (`Rare`)."""

    __slots__ = (
        "awaiting",
        "dropped_version",
        "failures",
        "hook_errors",
        "inflight",
        "last_error",
        "mailbox_limit",
        "on_error",
        "on_start",
        "passive",
        "passive_epoch",
        "recovered",
        "refusals",
        "restarts",
        "stop_reason",
        "stopped_event",
        "thread",
        "watchdog",
        "watchers",
    )

    awaiting: Any
    failures: int
    hook_errors: int
    inflight: Any
    last_error: BaseException | None
    mailbox_limit: int | None
    on_error: str
    on_start: Callable[[Any], Any] | None
    passive: bool
    passive_epoch: int
    dropped_version: int
    recovered: bool
    refusals: int
    restarts: int
    stop_reason: str | None
    stopped_event: threading.Event | None
    thread: threading.Thread | None
    watchdog: Any
    watchers: Any

    def __init__(self) -> None:
        # Replaced below, once every field is known, by straight-line code
        # (`_straight_init`): a loop of setattr cost 3 µs per side object.
        for name, field in _RARE.items():
            setattr(self, name, field.default)


class Rare(Generic[T]):
    """A cell field kept in its `Extra`: reads give the default until a
    value other than the default is written."""

    __slots__ = ("default", "name")

    def __init__(self, default: T) -> None:
        self.default = default
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        _RARE[name] = self

    @overload
    def __get__(self, cell: None, owner: type | None = None) -> Rare[T]: ...

    @overload
    def __get__(self, cell: CellState, owner: type | None = None) -> T: ...

    def __get__(self, cell: CellState | None, owner: type | None = None) -> Any:
        if cell is None:
            return self
        extra = cell._extra
        return self.default if extra is None else getattr(extra, self.name)

    def __set__(self, cell: CellState, value: T) -> None:
        extra = cell._extra
        if extra is None:
            if value is self.default or (type(value) is int and value == self.default):
                return
            extra = cell.extra()
        setattr(extra, self.name, value)


_RARE: dict[str, Rare[Any]] = {}


class CellState:
    """The part of a cell kept small: its rarely set fields and its stopped
    flag (`_cell.Cell` inherits it)."""

    __slots__ = ("_extra", "_stopped")

    #: The runtime that owns the cell (a slot of `_cell.Cell`).
    runtime: Any

    #: The async hook the turn's holder is waiting for, if any: a fence
    #: cancels it (a future of the runtime's event loop, or the
    #: `_loop_turn.LoopTurn` awaiting it on a caller's loop).
    awaiting: Rare[Cancellable | None] = Rare(None)
    failures: Rare[int] = Rare(0)
    hook_errors: Rare[int] = Rare(0)
    #: The request a deadline watches, while it runs.
    inflight: Rare[Any] = Rare(None)
    last_error: Rare[BaseException | None] = Rare(None)
    #: Its handle's ``mailbox_limit=``; None: its runtime's (`room_limit`).
    mailbox_limit: Rare[int | None] = Rare(None)
    on_error: Rare[str] = Rare("fail")
    on_start: Rare[Callable[[Any], Any] | None] = Rare(None)
    #: Passivated: no incarnation, and the snapshot only in the store
    #: (``snapshot`` is None); its next message activates it.
    passive: Rare[bool] = Rare(False)
    #: The supervisor's epoch when it was last passivated: a decision since
    #: (a restart, maybe delayed) starts it, not its next message.
    passive_epoch: Rare[int] = Rare(0)
    #: The version of the snapshot dropped at the last passivation (its
    #: stats, without a read of the store).
    dropped_version: Rare[int] = Rare(0)
    #: Whether the actor picked up a state stored under its name.
    recovered: Rare[bool] = Rare(False)
    #: Failures that were refusals (`_cell.REFUSALS`), for the metrics.
    refusals: Rare[int] = Rare(0)
    restarts: Rare[int] = Rare(0)
    stop_reason: Rare[str | None] = Rare(None)
    stopped_event: Rare[threading.Event | None] = Rare(None)
    #: The thread that started the current incarnation on a worker (a
    #: dedicated host's own); for diagnostics.
    thread: Rare[threading.Thread | None] = Rare(None)
    watchdog: Rare[Any] = Rare(None)
    #: Its `_watchers.Watchers`, made by its first watcher (``wait_until``,
    #: ``changes()``) and kept; ended when the actor stops.
    watchers: Rare[Any] = Rare(None)

    def __init__(self) -> None:
        self._extra: Extra | None = None
        #: Whether the actor has stopped (its last incarnation ended).
        self._stopped = False

    def room_limit(self) -> int | None:
        """How many requests may wait in its mailbox: its handle's limit, else
        its runtime's default; None for no limit (see `_backpressure`)."""
        extra = self._extra
        if extra is not None and extra.mailbox_limit is not None:
            return extra.mailbox_limit
        limit: int | None = self.runtime.mailbox_limit
        return limit

    def extra(self) -> Extra:
        """The side object, made if it is not there yet."""
        with extra_locks.of(self):
            extra = self._extra
            if extra is None:
                self._extra = extra = Extra()
            return extra

    # -- stopped -------------------------------------------------------------------------

    @property
    def is_stopped(self) -> bool:
        """Whether the actor has stopped (and its last incarnation ended)."""
        return self._stopped

    def mark_stopped(self) -> None:
        with extra_locks.of(self):
            self._stopped = True
            extra = self._extra
            event = extra.stopped_event if extra is not None else None
            watchers = extra.watchers if extra is not None else None
        if event is not None:
            event.set()
        if watchers is not None:
            watchers.end()  # streams end, waiters learn it stopped

    def clear_stopped(self) -> None:
        with extra_locks.of(self):
            self._stopped = False
            extra = self._extra
            if extra is not None and extra.stopped_event is not None:
                extra.stopped_event.clear()

    @property
    def stopped(self) -> threading.Event:
        """An event set once the actor has stopped: made for whoever waits."""
        extra = self.extra()
        event = extra.stopped_event
        if event is None:
            with extra_locks.of(self):
                event = extra.stopped_event
                if event is None:
                    event = threading.Event()
                    if self._stopped:
                        event.set()
                    extra.stopped_event = event
        return event

    def wait_stopped(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the actor to stop; True if it has."""
        if self._stopped:
            return True
        return self.stopped.wait(timeout)


def _straight_init() -> Callable[[Extra], None]:
    """`Extra.__init__` as one assignment per rare field, each to its
    default (a parameter default of the generated function): a side object
    is made on the first write of any rare field, at every actor's stop too."""
    names = list(_RARE)
    assert sorted(names) == sorted(Extra.__slots__), "every slot of Extra is a Rare field"
    params = "".join(f", d{i}=d{i}" for i in range(len(names)))
    body = "".join(f"\n    self.{name} = d{i}" for i, name in enumerate(names))
    scope: dict[str, Any] = {f"d{i}": _RARE[name].default for i, name in enumerate(names)}
    exec(f"def __init__(self{params}):{body}", scope)
    init: Callable[[Extra], None] = scope["__init__"]
    init.__doc__ = Extra.__init__.__doc__
    return init


Extra.__init__ = _straight_init()  # type: ignore[method-assign, assignment]
