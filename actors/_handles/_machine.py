"""`StateMachine`: the handle of a machine actor."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from stateward.core import (
    ArgumentValueError,
    ImmutableState,
    MachineBuilder,
    MachineSnapshot,
    MachineSpec,
    TransitionRecord,
)
from stateward.core._arguments import check_move, check_name, check_payload, check_timeout
from stateward.core._behaviours import Behaviour, machine_behaviour
from stateward.core._chartplan import configuration_allows
from stateward.core._messages import Move
from stateward.core._persist import MachineCodec

from .._cell import Cell
from .._reply import Reply
from .._runtime import Runtime, current_runtime
from .._supervisor import Supervisor
from ._base import ActorHandle, ActorOptions, identity, version_of
from ._definitions import Shared, read_definition


class StateMachine(ActorHandle):
    """A finite state machine running as an actor.

    Define it by the mapping of allowed moves, by a `MachineSpec` (events,
    guards, hooks), or by a `MachineBuilder`:

    ```python
    machine = StateMachine("draft", {"draft": ["review"], "review": ["published"],
                                     "published": []})
    machine.transition("review")
    machine.current_state            # "review": read with no lock and no message
    ```

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
        dedicated: give the actor a worker thread of its own, even when the
            runtime runs actors on a pool (``Runtime(workers=N)``): for hooks
            that block, which would otherwise hold a shared worker.
        mailbox_limit: how many requests may wait in its mailbox (the one it
            runs does not count); None (the default): the runtime's
            ``mailbox_limit``, unbounded unless set there. At the limit a
            ``request_*`` call raises `MailboxFull`, a blocking call waits for
            room within its timeout, an awaited call suspends until there is room.

    Raises:
        MachineDefinitionError: the definition cannot work.
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
        mailbox_limit: int | None = None,
    ) -> None:
        definition = read_definition(initial_state, transitions, events, history_limit)
        if isinstance(definition, Shared):
            spec = definition.spec
            codec = definition.codec
            initial = definition.initial if not data else MachineSnapshot.initial(spec, data)
        else:
            spec = definition
            codec = MachineCodec(spec)
            initial = MachineSnapshot.initial(spec, data)
        if spec.timeouts and spec.initial in spec.timeouts:
            # Its initial state's timeout is due from now, by the runtime's clock.
            if runtime is None:
                runtime = supervisor.runtime if supervisor is not None else current_runtime()
            initial = MachineSnapshot.initial(spec, data, at=runtime.clock())
        object.__setattr__(self, "_spec", spec)  # past `__setattr__`'s check
        super().__init__(
            name,
            runtime,
            initial,
            identity,
            version_of,
            ActorOptions(
                supervisor, restart, on_error, deadline, on_start, dedicated, mailbox_limit
            ),
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
    def configuration(self) -> frozenset[str]:
        """Every active state, as of the last commit: with compound states the
        active leaf (`current_state`) and each state it is inside, with parallel
        regions every region's (``{current_state}`` for a flat machine)."""
        return self.snapshot.configuration

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
        ``target`` (from any active state, in a statechart). Guards are not
        run: a guard may still veto."""
        target = check_name(target, self._where("can_transition"), "target")
        return configuration_allows(self._spec, self.snapshot, target)

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

    async def atransition(
        self, target: str, data: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> MachineSnapshot:
        """Move to ``target`` and await the commit; return the new snapshot.

        The awaited form of `transition`, for coroutines: the event loop runs
        on meanwhile. The arguments are checked when it is awaited, before
        anything is sent. Cancelling the awaiting task (or its
        ``asyncio.timeout``) withdraws the request if the actor has not
        started it; once started, it completes and commits.

        Raises:
            InvalidArgument: ``target`` is not a str, ``data`` not a mapping, or
                ``timeout`` not a number of seconds; nothing is sent.
            UnencodableValueError: a value in ``data`` cannot be stored.
            InvalidTransition: not allowed from the state the actor finds.
            TransitionRejected: a guard or hook vetoed it.
            ActorTimeout: no answer within ``timeout`` (the runtime default).
            ActorStopped: the actor has stopped.
        """
        if type(target) is not str or data is not None:  # a plain str target needs no more
            where = self._where("atransition")
            if type(target) is not str:
                target = check_name(target, where, "target")
            data = check_payload(data, where)
        result: MachineSnapshot = await self._acall(Move((target, None, data)), timeout)
        return result

    async def atransition_to(
        self, target: str, data: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> MachineSnapshot:
        """The same as `atransition`."""
        return await self.atransition(target, data, timeout=timeout)

    async def atrigger(
        self, event: str, data: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> MachineSnapshot:
        """Fire the named ``event`` from the current state and await the commit.

        The awaited form of `trigger`; it raises what `atransition` raises, and
        `InvalidTransition` for an event unknown in the current state.
        """
        where = self._where("atrigger")
        event = check_name(event, where, "event", "an event")
        data = check_payload(data, where)
        if timeout is not None:
            timeout = check_timeout(timeout, where)
        result: MachineSnapshot = await self._acall(Move((None, event, data)), timeout)
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

    def _state_test(self, state: str, call: str) -> Callable[[MachineSnapshot], bool]:
        """A machine waits for a state by name: one of its states, or a bad argument.
        A statechart's state is reached while it is active (a compound state
        while any state inside it is)."""
        if state not in self._spec.states:
            raise ArgumentValueError(
                call,
                "state_or_predicate",
                "one of the machine's states",
                state,
                f"Its states are {', '.join(map(repr, self._spec.states))}",
                outcome="nothing waited",
            )
        if self._spec.is_hierarchical:  # a parent counts while any state inside it is active
            return lambda snapshot: state in snapshot.configuration
        return lambda snapshot: snapshot.state == state

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
            timers=functools.partial(cell.runtime.machine_timers.arm, cell),
        )
