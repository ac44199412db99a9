"""A message that waits for an awaitable without holding a thread: `Suspended`.

A behaviour made with ``suspend=True`` (`machine_behaviour`, `manager_behaviour`)
does not run a coroutine hook's awaitable itself: it raises `Suspended`, which
carries the awaitable and how to go on. Whoever runs the behaviour (an
actor's cell) awaits it wherever it likes, then calls `Suspended.resume`
with its result or its error, possibly on another thread: the behaviour goes on
from where it stopped and returns its `Outcome`, raises its error, or raises
the next `Suspended` for its next awaitable.

For a machine, "where it stopped" is a point in the transition algorithm,
which `_hooks` writes as generators that yield each awaitable: `drive` runs
such a generator up to its first awaitable.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

__all__ = ["Suspended", "drive"]

R = TypeVar("R")
T = TypeVar("T")


class Suspended(BaseException):
    """Raised by a behaviour whose message waits for ``awaitable``: not an error.

    A `BaseException`, so that no ``except Exception`` between the behaviour
    and whoever runs it takes it for a failure.

    Attributes:
        awaitable: what the message waits for.
    """

    def __init__(
        self,
        awaitable: Awaitable[Any],
        proceed: Callable[[Any, BaseException | None], Any],
        close: Callable[[], None],
    ) -> None:
        super().__init__("a behaviour waits for an awaitable")
        self.awaitable = awaitable
        self._proceed = proceed
        self._close = close

    def resume(self, value: Any = None, error: BaseException | None = None) -> Any:
        """Go on with ``value`` (what the awaitable returned), or with ``error``
        (what it raised), thrown in where it was awaited. Returns what the
        behaviour returns, or raises its error or the next `Suspended`."""
        return self._proceed(value, error)

    def close(self) -> None:
        """Give the message up: nothing more of it runs (an awaitable never
        started is closed, so no "never awaited" warning follows)."""
        awaitable = self.awaitable
        if inspect.iscoroutine(awaitable):
            awaitable.close()
        self._close()


def drive(steps: Generator[Awaitable[Any], Any, R], finish: Callable[[R], T]) -> T:
    """Run ``steps`` up to its first awaitable and raise `Suspended` there;
    with none, return ``finish`` of what it returns."""
    try:
        awaitable = next(steps)
    except StopIteration as stop:
        return finish(stop.value)
    raise _suspended(steps, awaitable, finish)


def _suspended(
    steps: Generator[Awaitable[Any], Any, R], awaitable: Awaitable[Any], finish: Callable[[R], T]
) -> Suspended:
    def proceed(value: Any, error: BaseException | None) -> T:
        try:
            following = steps.send(value) if error is None else steps.throw(error)
        except StopIteration as stop:
            return finish(stop.value)
        raise _suspended(steps, following, finish)

    return Suspended(awaitable, proceed, steps.close)
