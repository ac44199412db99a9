"""`ChangeStream`: the committed snapshots of one actor, as they come
(``handle.changes()``); a watch of `_watchers`, which says how the actor
hands them over without ever waiting."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from ._context import current_cell
from ._errors import WaitTimeout
from ._watchers import Watch

__all__ = ["ChangeStream"]

#: `ChangeStream._take`'s answer when there is nothing new.
_NOTHING: Any = object()
#: `ChangeStream._next_or_end`'s answer when the consumer must wait.
_WAIT: Any = object()


class ChangeStream(Watch):
    """The committed snapshots of one actor, as they come: ``handle.changes()``.

    Iterate it from a thread (``for snapshot in machine.changes(): ...``) or
    from a task (``async for snapshot in machine.changes(): ...``). Each item
    is the value the actor committed, as its write calls return it: a
    `MachineSnapshot` for a `StateMachine`, the state (an `ImmutableState`)
    for a `StateManager`, the `ConfigChange` for a `ConfigManager`. Only
    commits made after ``changes()`` returned are items: read the handle
    after subscribing to start from the current value.

    The actor never waits for the consumer: it keeps only the latest
    committed value for it. A consumer slower than the commits skips to the
    latest; ``missed`` then says how many committed values it skipped just
    before the item it got last (0 when none), and ``missed_total`` how many
    in all. Versions never skip a number, so ``missed`` is also the gap
    between the versions of two items in a row, less one.

    Each wait for the next item is bounded by ``timeout`` (the one given to
    ``changes()``, else the runtime's ``default_timeout``): with no commit in
    that time it raises `WaitTimeout` (an `ActorTimeout`); the stream stays
    subscribed, and iterating again goes on waiting, missing nothing.

    The stream ends (``StopIteration`` / ``StopAsyncIteration``) once the
    actor has stopped, after its last committed value; or once ``close()``
    is called (from any thread: a consumer blocked on it then stops at once).
    ``with`` / ``async with`` closes it on leaving. A stream the program no
    longer references unsubscribes on its own, at the actor's next commit.
    It survives the actor's passivation and activation, and its restarts. Use
    one stream per consumer: items are taken, not shared.

    Attributes:
        missed: how many committed values were skipped just before the last
            item (0 when none).
        missed_total: how many committed values were skipped in all.
    """

    __slots__ = ("_closed", "_taken", "_timeout", "missed", "missed_total")

    def __init__(self, cell: Any, timeout: float) -> None:
        super().__init__(cell)
        self._timeout = timeout
        self._taken = 0
        self._closed = False
        self.missed = 0
        self.missed_total = 0

    @property
    def actor(self) -> str:
        """The name of the actor it watches."""
        name: str = self._cell.name
        return name

    @property
    def closed(self) -> bool:
        """Whether it has been closed (it ends, whatever is left)."""
        return self._closed

    def _offer(self, value: Any, version: int) -> None:
        slot = self._slot
        self._slot = (value, 1 if slot is None else slot[1] + 1)
        self._signal()

    def _ready(self) -> bool:
        slot = self._slot
        return (
            (slot is not None and slot[1] != self._taken) or self._end is not None or self._closed
        )

    def _take(self) -> Any:
        """The latest value not taken yet, or `_NOTHING`."""
        slot = self._slot
        if slot is None or slot[1] == self._taken:
            return _NOTHING
        value, count = slot
        self.missed = count - self._taken - 1
        self.missed_total += self.missed
        self._taken = count
        return value

    def _next_or_end(self) -> Any:
        """The next value; `_NOTHING` once the stream has ended; `_WAIT` if
        there is none yet."""
        if self._closed:
            return _NOTHING
        ended = self._end is not None  # read first: what was offered before the end is taken
        value = self._take()
        if value is not _NOTHING or ended:
            return value
        return _WAIT

    def _no_next(self, seconds: float) -> WaitTimeout:
        return self._timed_out(
            "changes()",
            seconds,
            "The stream is still subscribed: iterate again to go on waiting (nothing is "
            "missed), pass changes(timeout=...) for longer waits, or close() it",
        )

    def close(self) -> None:
        """Unsubscribe: the stream ends, and a consumer waiting on it stops now."""
        self._closed = True
        self._unsubscribe()
        self._signal()

    # -- iteration --------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        value = self._next_or_end()
        if value is _WAIT:
            self._refuse_blocking("changes()")
            seconds = self._timeout
            if not self._wait(seconds):
                raise self._no_next(seconds)
            value = self._next_or_end()
        if value is _NOTHING:
            raise StopIteration
        return value

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        value = self._next_or_end()
        if value is _WAIT:
            if current_cell.get() is self._cell:
                self._refuse_blocking("changes()")
            seconds = self._timeout
            if not await self._await(seconds):
                raise self._no_next(seconds)
            value = self._next_or_end()
        if value is _NOTHING:
            raise StopAsyncIteration
        return value

    def __enter__(self) -> ChangeStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> ChangeStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "ended" if self._end is not None else "open"
        return f"<ChangeStream of {self._cell.name!r}: {state}, missed {self.missed_total}>"
