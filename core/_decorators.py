"""The decorators a `MachineBuilder` registers hooks and event effects with.

`Decorators` is the builder's decorator language, apart from what it collects
and how it builds (`MachineBuilder` in `_spec`, next to the `MachineSpec` it
builds and that turns back into one with `MachineSpec.to_builder`). Each
decorator works bare (``@b.guard``) or called (``@b.guard("paid", order=1)``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any, Self, TypeVar, overload

from ._errors import MachineDefinitionError
from ._events import Event
from ._parts import Hook, HookKind, describe, parse_names

__all__ = ["Decorators", "Filter"]

_F = TypeVar("_F", bound=Callable[..., Any])
#: A state or event filter: None (any), one name, ``"a|b"``, or an iterable of names.
Filter = str | Iterable[str] | None


class Decorators:
    """Registers hooks and event effects by decorator, into the lists below."""

    _hooks: list[Hook]
    _effects: dict[str, Callable[..., Any]]
    _extra_events: list[Event]

    def _register(
        self,
        kind: HookKind,
        fn_or_states: Any,
        positional: str,
        to: Filter,
        source: Filter,
        event: Filter,
        order: int,
        name: str | None,
    ) -> Any:
        bare = callable(fn_or_states) and not isinstance(fn_or_states, str)
        states = None if bare else fn_or_states

        def register(fn: _F) -> _F:
            filters = {"to": to, "source": source}
            if states is not None:
                filters[positional] = states
            self._hooks.append(
                Hook(
                    kind,
                    fn,
                    name or describe(fn),
                    to=parse_names(filters["to"], f"{kind} 'to'"),
                    source=parse_names(filters["source"], f"{kind} 'source'"),
                    event=parse_names(event, f"{kind} 'event'"),
                    order=order,
                )
            )
            return fn

        return register(fn_or_states) if bare else register

    # Each decorator works bare (@b.guard) or called (@b.guard("paid", order=1)).
    # The positional argument names states: the target for pre_transition, guard,
    # enter and after_commit; the state being left for exit.

    @overload
    def pre_transition(self, fn: _F, /) -> _F: ...
    @overload
    def pre_transition(
        self,
        states: Filter = None,
        /,
        *,
        to: Filter = None,
        source: Filter = None,
        event: Filter = None,
        order: int = 0,
        name: str | None = None,
    ) -> Callable[[_F], _F]: ...
    def pre_transition(
        self,
        fn_or_states: Any = None,
        /,
        *,
        to: Filter = None,
        source: Filter = None,
        event: Filter = None,
        order: int = 0,
        name: str | None = None,
    ) -> Any:
        """Register a hook that may enrich the payload: it returns a mapping of
        additions, or None. Runs first, before guards."""
        return self._register("pre_transition", fn_or_states, "to", to, source, event, order, name)

    @overload
    def guard(self, fn: _F, /) -> _F: ...
    @overload
    def guard(
        self,
        states: Filter = None,
        /,
        *,
        to: Filter = None,
        source: Filter = None,
        event: Filter = None,
        order: int = 0,
        name: str | None = None,
    ) -> Callable[[_F], _F]: ...
    def guard(
        self,
        fn_or_states: Any = None,
        /,
        *,
        to: Filter = None,
        source: Filter = None,
        event: Filter = None,
        order: int = 0,
        name: str | None = None,
    ) -> Any:
        """Register a guard (validator). It vetoes by returning ``False`` or by
        raising `Reject` with a reason; anything else lets the move go on."""
        return self._register("guard", fn_or_states, "to", to, source, event, order, name)

    validator = guard

    @overload
    def on_exit(self, fn: _F, /) -> _F: ...
    @overload
    def on_exit(
        self,
        states: Filter = None,
        /,
        *,
        to: Filter = None,
        source: Filter = None,
        event: Filter = None,
        order: int = 0,
        name: str | None = None,
    ) -> Callable[[_F], _F]: ...
    def on_exit(
        self,
        fn_or_states: Any = None,
        /,
        *,
        to: Filter = None,
        source: Filter = None,
        event: Filter = None,
        order: int = 0,
        name: str | None = None,
    ) -> Any:
        """Register a hook run when leaving a state. It may return a mapping of
        changes to the machine's data, or veto like a guard."""
        return self._register("exit", fn_or_states, "source", to, source, event, order, name)

    @overload
    def on_enter(self, fn: _F, /) -> _F: ...
    @overload
    def on_enter(
        self,
        states: Filter = None,
        /,
        *,
        to: Filter = None,
        source: Filter = None,
        event: Filter = None,
        order: int = 0,
        name: str | None = None,
    ) -> Callable[[_F], _F]: ...
    def on_enter(
        self,
        fn_or_states: Any = None,
        /,
        *,
        to: Filter = None,
        source: Filter = None,
        event: Filter = None,
        order: int = 0,
        name: str | None = None,
    ) -> Any:
        """Register a hook run when entering a state. It may return a mapping of
        changes to the machine's data, or veto like a guard."""
        return self._register("enter", fn_or_states, "to", to, source, event, order, name)

    @overload
    def after_commit(self, fn: _F, /) -> _F: ...
    @overload
    def after_commit(
        self,
        states: Filter = None,
        /,
        *,
        to: Filter = None,
        source: Filter = None,
        event: Filter = None,
        order: int = 0,
        name: str | None = None,
    ) -> Callable[[_F], _F]: ...
    def after_commit(
        self,
        fn_or_states: Any = None,
        /,
        *,
        to: Filter = None,
        source: Filter = None,
        event: Filter = None,
        order: int = 0,
        name: str | None = None,
    ) -> Any:
        """Register a hook run once the move is committed: for side effects. It
        cannot undo the commit; its errors are reported, not raised to the caller."""
        return self._register("after_commit", fn_or_states, "to", to, source, event, order, name)

    @overload
    def unless(self, fn: _F, /) -> _F: ...
    @overload
    def unless(
        self,
        states: Filter = None,
        /,
        *,
        to: Filter = None,
        source: Filter = None,
        event: Filter = None,
        order: int = 0,
        name: str | None = None,
    ) -> Callable[[_F], _F]: ...
    def unless(
        self,
        fn_or_states: Any = None,
        /,
        *,
        to: Filter = None,
        source: Filter = None,
        event: Filter = None,
        order: int = 0,
        name: str | None = None,
    ) -> Any:
        """Register a negated guard: it vetoes by returning ``True`` (or raising
        `Reject`) and lets the move go on by returning ``False``; any other
        answer is a `HookReturnError`. Runs with the guards, in their order."""
        bare = callable(fn_or_states) and not isinstance(fn_or_states, str)
        register = self._register("guard", fn_or_states, "to", to, source, event, order, name)
        if bare:
            self._hooks[-1] = dataclasses.replace(self._hooks[-1], negated=True)
            return fn_or_states

        def negated(fn: _F) -> _F:
            register(fn)
            self._hooks[-1] = dataclasses.replace(self._hooks[-1], negated=True)
            return fn

        return negated

    def event(
        self,
        name: str,
        source: str | Iterable[str] | None = None,
        target: str | None = None,
        *,
        guards: Callable[..., Any] | Iterable[Callable[..., Any]] = (),
        unless: Callable[..., Any] | Iterable[Callable[..., Any]] = (),
        internal: bool = False,
    ) -> Callable[[_F], _F]:
        """Register the effect of an event: a function run between the exit and enter
        hooks that may return a mapping of changes to the machine's data.

        With ``source`` and ``target`` the event (one alternative of it, with
        its ``guards``, ``unless`` and ``internal``: see `Event`) is defined
        here as well; without them it must already be defined in ``events``:

        ```python
        @cats.event("survive", "unknown", "alive")
        def survive(ctx):
            return {"can_meow": True}
        ```
        """
        if source is None and target is None and (guards or unless or internal):
            raise MachineDefinitionError(
                f"event {name!r}: guards=, unless= and internal= need the move: "
                "pass source and target as well",
                event=name,
            )

        def register(fn: _F) -> _F:
            if source is None and target is None:
                if name in self._effects:
                    raise MachineDefinitionError(
                        f"event {name!r} already has an effect", event=name
                    )
                self._effects[name] = fn
            elif source is None or target is None:
                raise MachineDefinitionError(
                    f"event {name!r}: give both source and target, or neither", event=name
                )
            else:
                sources = parse_names(source, f"event {name!r} sources")
                assert sources is not None
                self._extra_events.append(
                    Event(name, sources, target, fn, guards, unless, internal)  # type: ignore[arg-type]
                )
            return fn

        return register

    def add_event(
        self,
        name: str,
        move: str,
        *,
        guards: Callable[..., Any] | Iterable[Callable[..., Any]] = (),
        unless: Callable[..., Any] | Iterable[Callable[..., Any]] = (),
        internal: bool = False,
        effect: Callable[..., Any] | None = None,
    ) -> Self:
        """Add one move of event ``name`` (``"source -> target"``, sources as
        ``"a|b"`` or ``"*"``) and return the builder, to chain calls.

        Moves of one event from one source are its alternatives, tried in the
        order added after those of ``events``; see `Event` for ``guards``,
        ``unless`` and ``internal``:

        ```python
        hero.add_event("clean_up", "sweaty -> asleep", guards=is_exhausted)
        hero.add_event("clean_up", "sweaty -> hanging out")  # the else
        ```
        """
        options = {"move": move, "guards": guards, "unless": unless, "internal": internal}
        self._extra_events.append(Event.parse(name, options, effect))
        return self
