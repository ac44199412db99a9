"""`StateMachine`: the handle of a machine actor."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from stateward.core import (
    ImmutableState,
    MachineBuilder,
    MachineSnapshot,
    MachineSpec,
    TransitionRecord,
)
from stateward.core._arguments import check_move, check_name, check_payload
from stateward.core._behaviours import Behaviour, machine_behaviour
from stateward.core._messages import Move
from stateward.core._persist import MachineCodec

from .._cell import Cell
from .._reply import Reply
from .._runtime import Runtime
from .._supervisor import Supervisor
from ._base import ActorHandle, ActorOptions, identity, version_of


class _Shared:
    """What every machine of one definition shares: the spec, its codec, and
    the snapshot a machine of it starts from (when created without data)."""

    __slots__ = ("codec", "initial", "source", "spec")

    def __init__(self, spec: MachineSpec, source: object = None) -> None:
        self.spec = spec
        self.codec = MachineCodec(spec)
        self.initial = MachineSnapshot.initial(spec)
        #: The spec or builder it was made from, when keyed by its identity.
        self.source = source


#: The definitions in use, by a hashable form of how they were given: the
#: canonical form of a plain definition or of a builder's content, or a spec
#: itself (by identity). So a machine costs its own state only: creating the
#: 100,000th machine of a definition builds no spec. Cleared when it grows
#: past `_SHARED_MAX` (a program that makes definitions on the fly builds
#: them again, no more).
_shared: dict[Any, _Shared] = {}
_SHARED_MAX = 1024


class _Unshared(Exception):
    """A definition part that is not read into a shared definition."""


def _frozen(part: Any) -> Any:
    """A hashable copy of a definition's part: a ``{state: [targets]}`` or
    ``{event: "a -> b"}`` dict, a list of events, a str or None. Raises
    `_Unshared` for a part in another container (a one-shot iterable, a
    custom mapping), whose reading could differ from the spec's own: that
    definition is then built for the machine alone, as given. (An unhashable
    value inside shows when the key is hashed.)"""
    if part is None or type(part) is str:
        return part
    if type(part) is dict:
        items = []
        for key, value in part.items():
            kind = type(value)
            if kind is list or kind is tuple:
                value = ("items", tuple(value))
            elif not (kind is str or value is None) and isinstance(value, Iterable):
                raise _Unshared
            items.append((key, value))
        return ("mapping", tuple(items))
    if type(part) is list or type(part) is tuple:
        return ("items", tuple(part))
    raise _Unshared


def _thawed(part: Any) -> Any:
    """`_frozen`'s input again (lists as tuples)."""
    if type(part) is not tuple:
        return part
    if part[0] == "mapping":
        return {key: _thawed(value) for key, value in part[1]}
    return part[1]


def _remember(key: Any, spec: MachineSpec, source: object = None) -> _Shared:
    shared = _Shared(spec, source)
    if len(_shared) >= _SHARED_MAX:
        _shared.clear()
    _shared[key] = shared
    return shared


def _plain(
    initial_state: Any, transitions: Any, events: Any, history_limit: int
) -> MachineSpec | _Shared:
    """The definition shared by the machines defined the same plain way."""
    global _last
    last = _last
    if (
        last is not None
        and transitions is last[0]
        and events is last[1]
        and initial_state == last[2]
        and history_limit == last[3]
        and transitions == last[4]
        and events == last[5]
    ):
        same: _Shared = last[6]  # the same objects as last time, with the same content
        return same
    try:
        key = (initial_state, _frozen(transitions), _frozen(events), history_limit)
        shared = _shared.get(key)
    except (_Unshared, TypeError):  # TypeError: an unhashable value in it
        return MachineSpec(initial_state, transitions, events=events, history_limit=history_limit)
    if shared is None:
        spec = MachineSpec(
            initial_state,
            _thawed(key[1]),
            events=_thawed(key[2]),
            history_limit=history_limit,
        )
        shared = _remember(key, spec)
    _last = (
        transitions,
        events,
        initial_state,
        history_limit,
        _copy(transitions),
        _copy(events),
        shared,
    )
    return shared


#: The plain definition read last: its transitions and events objects, a copy
#: of their content (compared in C, it tells whether they changed since), and
#: what they were read into. Machines are mostly made in a row from one
#: definition; this spares reading it again for each.
_last: tuple[Any, ...] | None = None


def _copy(part: Any) -> Any:
    """A copy of a dict or list part that compares equal to it (==) while
    its content stays the same."""
    if type(part) is dict:
        return {key: list(value) if type(value) is list else value for key, value in part.items()}
    if type(part) is list:
        return list(part)
    return part


def _of_spec(spec: MachineSpec) -> _Shared:
    """The codec and initial snapshot of a spec passed in, shared by identity."""
    key = ("spec", id(spec))
    shared = _shared.get(key)
    if shared is None or shared.source is not spec:  # an id reused after a clear
        shared = _remember(key, spec, spec)
    return shared


def _of_builder(builder: MachineBuilder) -> MachineSpec | _Shared:
    """The spec built from ``builder`` as it is now, shared with the machines
    made from it before as long as its content has not changed since."""
    try:
        key = (
            "builder",
            id(builder),
            builder.initial,
            _frozen(builder.transitions),
            _frozen(builder.events),
            _frozen(builder.states),
            builder.history_limit,
            builder.name,
            tuple(builder._hooks),
            tuple(builder._effects.items()),
            tuple(builder._extra_events),
        )
        shared = _shared.get(key)
    except (_Unshared, TypeError):  # TypeError: an unhashable value in it
        return builder.build()
    if shared is None or shared.source is not builder:
        shared = _remember(key, builder.build(), builder)
    return shared


def _definition(
    initial_state: str | MachineSpec | MachineBuilder | None,
    transitions: Mapping[str, Iterable[str]] | MachineSpec | MachineBuilder | None,
    events: Any,
    history_limit: int | None,
) -> MachineSpec | _Shared:
    """Read the ways a machine can be defined into one MachineSpec, or into the
    definition it shares with the machines defined the same way."""
    spec_like = transitions if isinstance(transitions, (MachineSpec, MachineBuilder)) else None
    if isinstance(initial_state, (MachineSpec, MachineBuilder)):
        spec_like, initial_state = initial_state, None
    if spec_like is not None:
        shared = _of_builder(spec_like) if isinstance(spec_like, MachineBuilder) else None
        if isinstance(shared, MachineSpec):
            spec = shared
        else:
            spec = shared.spec if shared is not None else spec_like  # type: ignore[assignment]
        if events is not None:
            raise TypeError("pass events= in the MachineSpec, not next to it")
        if initial_state is not None and initial_state != spec.initial:
            raise ValueError(
                f"initial_state {initial_state!r} differs from the spec's initial state "
                f"{spec.initial!r}; leave initial_state out or build the spec with it"
            )
        if history_limit is not None and history_limit != spec.history_limit:
            builder = spec.to_builder()
            builder.history_limit = history_limit
            return builder.build()
        if shared is not None:
            return shared
        return _of_spec(spec)
    assert not isinstance(transitions, (MachineSpec, MachineBuilder))
    return _plain(
        initial_state, transitions, events, 100 if history_limit is None else history_limit
    )


class StateMachine(ActorHandle):
    """A finite state machine running as an actor.

    Define it by the mapping of allowed moves, by a `MachineSpec` (events,
    guards, hooks), or by a `MachineBuilder`::

        machine = StateMachine("draft", {"draft": ["review"], "review": ["published"],
                                         "published": []})
        machine.transition("review")
        machine.current_state            # "review": read with no lock and no message

    Args:
        initial_state: the starting state, or a `MachineSpec` / `MachineBuilder`.
        transitions: ``{state: [allowed next states]}``, or a spec / builder.
        name: unique in the runtime; generated when omitted.
        runtime: the owning `Runtime`; when omitted, the current one (that of the
            enclosing ``with Runtime(...)`` block), else the default runtime.
        data: the machine's initial data (changed by event effects and hooks).
        events: named events, as `MachineSpec` takes them.
        history_limit: how many transitions the history keeps (default 100).
        supervisor: the `Supervisor` to run under; the runtime's root by default.
        restart: ``permanent`` (default), ``transient`` or ``temporary``.
        on_error: ``"fail"`` (default): an exception from a hook fails only its
            request. ``"restart"``: it also crashes the actor, which its
            supervisor restarts from the last committed snapshot.
        deadline: seconds a single request may run; past it the actor counts as
            crashed and is restarted, and the late handler can no longer commit.
        on_start: called with the current value each time an incarnation
            starts (after a restart too), on the actor's worker thread, before
            it handles any request: set up here what hooks need. If it raises,
            the start counts as a crash.

    Raises:
        MachineDefinitionError: the definition cannot work.
        dedicated: give the actor a worker thread of its own, even when the
            runtime runs actors on a pool (``Runtime(workers=N)``): for hooks
            that block, which would otherwise hold a shared worker.
    """

    _kind = "machine"
    _mirrored = True
    _spec: MachineSpec

    def __init__(
        self,
        initial_state: str | MachineSpec | MachineBuilder | None = None,
        transitions: Mapping[str, Iterable[str]] | MachineSpec | MachineBuilder | None = None,
        *,
        name: str | None = None,
        runtime: Runtime | None = None,
        data: Mapping[str, Any] | None = None,
        events: Any = None,
        history_limit: int | None = None,
        supervisor: Supervisor | None = None,
        restart: str = "permanent",
        on_error: str = "fail",
        deadline: float | None = None,
        on_start: Callable[[Any], Any] | None = None,
        dedicated: bool = False,
    ) -> None:
        definition = _definition(initial_state, transitions, events, history_limit)
        if isinstance(definition, _Shared):
            spec = definition.spec
            codec = definition.codec
            initial = definition.initial if not data else MachineSnapshot.initial(spec, data)
        else:
            spec = definition
            codec = MachineCodec(spec)
            initial = MachineSnapshot.initial(spec, data)
        object.__setattr__(self, "_spec", spec)  # past `__setattr__`'s check
        super().__init__(
            name,
            runtime,
            initial,
            identity,
            version_of,
            ActorOptions(supervisor, restart, on_error, deadline, on_start, dedicated),
            codec,
        )

    # -- reads -------------------------------------------------------------------------

    @property
    def spec(self) -> MachineSpec:
        """The machine's definition."""
        return self._spec

    snapshot: MachineSnapshot
    """The last committed `MachineSnapshot` (state, version, data, history): a
    plain attribute that the actor replaces at each commit, read with no lock
    and no message. Read-only."""

    @property
    def current_state(self) -> str:
        """The current state, as of the last commit: read with no lock and no message."""
        return self.snapshot.state

    @property
    def version(self) -> int:
        """How many transitions have been committed."""
        return self.snapshot.version

    @property
    def data(self) -> ImmutableState:
        """The machine's data, as of the last commit."""
        return self.snapshot.data

    @property
    def history(self) -> list[TransitionRecord]:
        """The kept `TransitionRecord` entries, oldest first."""
        return list(self.snapshot.history)

    def can_transition(self, target: str) -> bool:
        """Whether the definition allows moving from the current state to
        ``target``. Guards are not run: a guard may still veto."""
        target = check_name(target, self._where("can_transition"), "target")
        return self._spec.allows(self.snapshot.state, target)

    # -- writes ------------------------------------------------------------------------

    def transition(
        self, target: str, data: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> MachineSnapshot:
        """Move to ``target`` and wait for the commit; return the new snapshot.

        Raises:
            InvalidArgument: ``target`` is not a str, ``data`` not a mapping, or
                ``timeout`` not a number of seconds; checked in the caller's
                thread, nothing is sent.
            UnencodableValueError: a value in ``data`` cannot be stored.
            InvalidTransition: not allowed from the state the actor finds (the
                message names it, the target and the allowed targets).
            TransitionRejected: a guard or hook vetoed it.
            ActorTimeout: no answer within ``timeout`` (the runtime default).
            ActorStopped: the actor has stopped.
        """
        if type(target) is not str or data is not None:  # a plain str target needs no more
            where = self._where("transition")
            if type(target) is not str:
                target = check_name(target, where, "target")
            data = check_payload(data, where)
        result: MachineSnapshot = self._call(Move((target, None, data)), timeout)
        return result

    def transition_to(
        self, target: str, data: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> MachineSnapshot:
        """The same as `transition`."""
        return self.transition(target, data, timeout=timeout)

    def trigger(
        self, event: str, data: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> MachineSnapshot:
        """Fire the named ``event`` from the current state and wait for the commit."""
        where = self._where("trigger")
        event = check_name(event, where, "event", "an event")
        data = check_payload(data, where)
        result: MachineSnapshot = self._call(Move((None, event, data)), timeout)
        return result

    def request_transition(
        self,
        target: str | None = None,
        data: Mapping[str, Any] | None = None,
        *,
        event: str | None = None,
        callback: Callable[[Reply[MachineSnapshot]], Any] | None = None,
    ) -> Reply[MachineSnapshot]:
        """Queue a move to ``target`` (or by ``event``) and return its `Reply` at once.

        Requests from one thread are handled in the order sent. ``callback(reply)``
        runs when it is done. Await the reply from asyncio, or call
        ``reply.result(timeout)`` from a thread.
        """
        target, event, data = check_move(target, event, data, self._where("request_transition"))
        return self._request(Move((target, event, data)), callback)

    def _awaits_after_commit(self) -> bool:
        spec = self._spec
        return spec.has_async_hooks and any(
            hook.is_async for hook in spec.hooks if hook.kind == "after_commit"
        )

    def _behaviour(self, cell: Cell) -> Behaviour:
        return machine_behaviour(
            self._spec,
            machine=cell.name,
            clock=cell.runtime.clock,
            run_async=cell.run_async,
            suspend=True,  # an async hook suspends the turn (actors/_suspension.py)
        )
