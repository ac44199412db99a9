"""What every handle has to watch its actor's commits: ``wait_until``,
``await_until`` and ``changes()`` (the mechanism: `stateward.actors._watchers`).

Each kind says what its watchers see (`Watching._watched`): what its write
calls return. A `StateMachine`'s `MachineSnapshot`, a `StateManager`'s
state (an `ImmutableState`), a `ConfigManager`'s current `ConfigChange`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from stateward.core import ArgumentTypeError
from stateward.core._arguments import check_timeout

from .._cell import Cell
from .._change_stream import ChangeStream
from .._context import current_cell
from .._watchers import Until

#: What a refused argument of a wait left undone.
_NOT_WAITED = "nothing waited"


class Watching:
    """``wait_until``, ``await_until`` and ``changes()`` (a mixin of `ActorHandle`)."""

    _cell: Cell
    _runtime: Any

    def _where(self, method: str) -> str:
        raise NotImplementedError

    def _watched(self, snapshot: Any) -> Any:
        """The value watchers see of the actor's ``snapshot``: what its
        observers see, unless the kind says otherwise."""
        return self._cell.view(snapshot)

    def _state_test(self, state: str, call: str) -> Callable[[Any], bool]:
        """The test for a state name; only a machine has states."""
        raise ArgumentTypeError(
            call,
            "state_or_predicate",
            "a predicate: a function of the state that returns True when it is the one awaited",
            state,
            f"Only a state machine has named states; {type(self).__name__} waits for a "
            "predicate, such as lambda state: state.count >= 3",
            outcome=_NOT_WAITED,
        )

    def _until(self, state_or_predicate: Any, method: str) -> Until:
        call = self._where(method)
        if isinstance(state_or_predicate, str):
            name = str.__str__(state_or_predicate)
            return Until(self._cell, self._state_test(name, call), f"{method}({name!r})")
        if not callable(state_or_predicate) or inspect.iscoroutinefunction(state_or_predicate):
            raise ArgumentTypeError(
                call,
                "state_or_predicate",
                "a state name (a str) or a predicate (a plain function of the committed "
                "snapshot that returns True when it is the one awaited)",
                state_or_predicate,
                "A predicate runs on the actor's turn after each commit: it cannot be a "
                "coroutine function",
                outcome=_NOT_WAITED,
            )
        label = getattr(state_or_predicate, "__qualname__", None) or repr(state_or_predicate)
        return Until(self._cell, state_or_predicate, f"{method}({label})")

    def _seconds(self, timeout: Any, method: str) -> float:
        checked = check_timeout(timeout, self._where(method), outcome=_NOT_WAITED)
        return self._runtime.default_timeout if checked is None else checked

    def wait_until(self, state_or_predicate: Any, *, timeout: float | None = None) -> Any:
        """Block until the actor commits what is awaited; return that value.

        Args:
            state_or_predicate: a state's name (a `StateMachine` only: its
                ``current_state`` is that state; in a statechart, that state
                is active), or a predicate called with
                each committed value (see `changes`) that returns True for
                the one awaited. The predicate runs on the caller's thread
                for the current value, then on the actor's turn after each
                commit until one matches, so no commit goes untested: keep
                it quick and free of blocking calls.
            timeout: seconds to wait; None: the runtime's ``default_timeout``.

        Returns:
            The current value at once if it matches, else the first value
            committed after the call that matches.

        Raises:
            InvalidArgument: not a state name or a plain function; a state
                name the machine does not have; a bad ``timeout``. Nothing waited.
            WaitTimeout: nothing that matches was committed in time (an
                `ActorTimeout`).
            ActorStopped: the actor stopped (or had stopped) without a
                match; raised as soon as it stops.
            SelfCallError: called from the actor's own hooks or observers,
                or from the runtime's event loop: they would wait for a
                commit that cannot come while they run.
            Exception: whatever the predicate raised (the actor is unaffected).
        """
        until = self._until(state_or_predicate, "wait_until")
        seconds = self._seconds(timeout, "wait_until")
        watched = self._watched
        now = until.current(watched)
        if now is not None:
            return now[0]
        until._refuse_blocking(until.what)
        found = until.start(watched)
        if found is not None:
            until._unsubscribe()
            return found[0]
        try:
            until._wait(seconds)
        finally:
            until._unsubscribe()
        return until.outcome(seconds)

    async def await_until(self, state_or_predicate: Any, *, timeout: float | None = None) -> Any:
        """The awaited form of `wait_until`: suspends the task, never the loop.

        The same arguments, result and errors; ``asyncio.timeout`` and
        cancelling the task end the wait too (and unsubscribe it).
        """
        until = self._until(state_or_predicate, "await_until")
        seconds = self._seconds(timeout, "await_until")
        watched = self._watched
        now = until.current(watched)
        if now is not None:
            return now[0]
        if current_cell.get() is self._cell:
            until._refuse_blocking(until.what)  # its own async hook: it would never commit
        found = until.start(watched)
        if found is not None:
            until._unsubscribe()
            return found[0]
        try:
            await until._await(seconds)
        finally:
            until._unsubscribe()  # also when cancelled: no longer waiting
        return until.outcome(seconds)

    def changes(self, *, timeout: float | None = None) -> ChangeStream:
        """A `ChangeStream` of the values the actor commits from now on.

        Iterate it from a thread or ``async for`` it from a task. It never
        makes the actor wait: a slow consumer skips to the latest value and
        the stream's ``missed`` says how many it skipped. It ends when the
        actor stops; close it (or use ``with``) to unsubscribe earlier.

        Args:
            timeout: how long each wait for the next item may last, in
                seconds (None: the runtime's ``default_timeout``); past it
                the wait raises `WaitTimeout` and the stream stays subscribed.

        Raises:
            InvalidArgument: a bad ``timeout``.
            ActorStopped: the actor has stopped.
        """
        seconds = self._seconds(timeout, "changes")
        cell = self._cell
        if cell.is_stopped:
            raise cell.stopped_error()
        stream = ChangeStream(cell, seconds)
        stream._subscribe(self._watched)
        return stream
