"""The state store's snapshot and its two operations: update and modify."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._machine import AsyncRunner, HookReturnError, _run_here
from ._state import ImmutableState

__all__ = ["StoreSnapshot"]


@dataclass(frozen=True, slots=True)
class StoreSnapshot:
    """The state of a state store at one version.

    Attributes:
        state: the stored record.
        version: how many changes have been committed (0 for a new store).
    """

    state: ImmutableState
    version: int = 0

    @classmethod
    def initial(cls, state: Mapping[str, Any] | None = None) -> StoreSnapshot:
        """A new store holding ``state`` at version 0."""
        frozen = state if isinstance(state, ImmutableState) else ImmutableState(state or {})
        return cls(frozen, 0)

    def update(self, changes: Mapping[str, Any]) -> StoreSnapshot:
        """Set keys (a shallow merge) as the next version.

        Raises:
            TypeError: ``changes`` is not a mapping.
            UnencodableValueError: a value cannot be stored.
        """
        if not isinstance(changes, Mapping):
            raise TypeError(f"state changes must be a mapping, got {type(changes).__qualname__}")
        return StoreSnapshot(self.state.update(changes), self.version + 1)

    def modify(
        self,
        fn: Callable[[ImmutableState], Any],
        run_async: AsyncRunner | None = None,
    ) -> StoreSnapshot:
        """Apply ``fn(state) -> new state`` as the next version.

        ``fn`` returns the new `ImmutableState` (usually ``state.update(...)``) or
        a mapping that replaces the state whole. It may be a coroutine function;
        ``run_async`` runs it (a private event loop by default).

        Raises:
            HookReturnError: ``fn`` returned something else (None, for instance).
            Exception: whatever ``fn`` raised; nothing changes.
        """
        result = fn(self.state)
        if inspect.isawaitable(result):
            result = (run_async or _run_here)(result)
        return self.modified(fn, result)

    def modified(self, fn: Callable[[ImmutableState], Any], result: Any) -> StoreSnapshot:
        """The next version from ``result``, what ``fn`` returned (awaited, if
        it returned an awaitable): `modify` once ``fn`` has run.

        Raises:
            HookReturnError: ``result`` is neither a state nor a mapping.
        """
        if isinstance(result, ImmutableState):
            return StoreSnapshot(result, self.version + 1)
        if isinstance(result, Mapping):
            return StoreSnapshot(ImmutableState(result), self.version + 1)
        name = getattr(fn, "__qualname__", repr(fn))
        raise HookReturnError(
            name,
            "modify",
            result,
            "return the new state, for example 'lambda s: s.update(n=s.n + 1)'",
        )
