"""Handles: the thread-safe objects users hold. Each one fronts one actor.

Reads (``current_state``, ``get_state()``, ``get_config()``, ``snapshot``,
``history``) return the last published immutable snapshot: no message, no lock,
never a wait. Writes are messages: a handle checks the call's arguments, builds
one frozen message (`stateward.core._messages`) and sends it; the actor's
behaviour (`stateward.core._behaviours`) does the rest. Blocking calls wait for
the answer (with a finite timeout), ``request_*`` calls return a `Reply` at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from stateward.core import (
    ConfigChange,
    ConfigDiff,
    ConfigHistory,
    ImmutableState,
    MachineBuilder,
    MachineSnapshot,
    MachineSpec,
    StoreSnapshot,
    TransitionRecord,
)
from stateward.core._arguments import (
    check_callable,
    check_changes,
    check_move,
    check_name,
    check_payload,
    check_timeout,
    check_version,
)
from stateward.core._behaviours import (
    Behaviour,
    config_behaviour,
    machine_behaviour,
    manager_behaviour,
)
from stateward.core._messages import ConfigUpdate, Message, Modify, Move, Rollback, Update
from stateward.core._persist import ConfigCodec, KindCodec, MachineCodec, ManagerCodec

from ._cell import Cell
from ._context import current_cell
from ._errors import SelfCallError
from ._reply import Reply
from ._runtime import Runtime, current_runtime, stop_request
from ._supervisor import Supervisor

T = TypeVar("T")
Observer = Callable[[Any, Any], Any]


class ActorHandle:
    """What every handle has: a name, its runtime, observers, stats and stop."""

    _kind = "actor"
    #: Whether ``snapshot`` is a plain attribute of the handle, kept current by
    #: the actor (a read is then one attribute lookup: no property call).
    _mirrored = False

    def __init__(
        self,
        name: str | None,
        runtime: Runtime | None,
        snapshot: Any,
        view: Callable[[Any], Any],
        version_of: Callable[[Any], int],
        options: ActorOptions,
        codec: KindCodec,
    ) -> None:
        supervisor = options.supervisor
        if runtime is None:
            runtime = supervisor.runtime if supervisor is not None else current_runtime()
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"an actor name must be a non-empty str, got {name!r}")
        self._runtime = runtime
        self._cell = Cell(
            runtime,
            name or runtime._unique_name(self._kind),
            self._kind,
            snapshot,
            view,
            version_of,
            on_error=options.on_error,
            deadline=options.deadline,
            on_start=options.on_start,
            codec=codec,
        )
        self._cell.behaviour = self._behaviour(self._cell)
        if self._mirrored:
            self.__dict__["snapshot"] = snapshot
            self._cell.mirror = self.__dict__
        runtime._start(self, self._cell, supervisor, options.restart)

    def _behaviour(self, cell: Cell) -> Behaviour:
        """The kind's behaviour from core, bound to ``cell`` (its name, its
        runtime's clock, its way of running a coroutine hook)."""
        raise NotImplementedError(f"{type(self).__qualname__} gives its actor no behaviour")

    def __setattr__(self, name: str, value: object) -> None:
        if name == "snapshot":
            raise AttributeError(
                f"{type(self).__name__}.snapshot is read-only: it is the last committed "
                "snapshot, changed only by the actor's requests"
            )
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if name == "snapshot":
            raise AttributeError(f"{type(self).__name__}.snapshot cannot be deleted")
        object.__delattr__(self, name)

    def __copy__(self: T) -> T:
        # A handle stands for its actor: a copy is the handle itself. A new
        # object with a __dict__ of its own would keep the snapshot it was
        # copied with, since the actor writes only this handle's __dict__.
        return self

    @property
    def recovered(self) -> bool:
        """Whether the actor picked up a state stored under its name."""
        return self._cell.recovered

    @property
    def name(self) -> str:
        """The actor's name, unique in its runtime."""
        return self._cell.name

    @property
    def runtime(self) -> Runtime:
        """The runtime that owns the actor."""
        return self._runtime

    @property
    def alive(self) -> bool:
        """Whether the actor still takes requests."""
        cell = self._cell
        return cell.mailbox.closed_reason is None and not cell.stopped.is_set()

    def stats(self) -> Any:
        """This actor's `ActorStats`."""
        return self._cell.stats()

    @property
    def restarts(self) -> int:
        """How many times its supervisor has restarted this actor."""
        return self._cell.restarts

    @property
    def supervisor(self) -> Supervisor | None:
        """The supervisor this actor runs under."""
        return self._cell.supervisor

    # -- messaging -------------------------------------------------------------------

    def _where(self, method: str) -> str:
        """``StateMachine.transition``: how errors name a call of this handle."""
        return f"{type(self).__name__}.{method}"

    def _call(self, request: Message, timeout: float | None) -> Any:
        # Every argument is checked before the message exists: a bad one is
        # refused here, in the caller's thread, and never reaches the actor.
        if timeout is not None:
            timeout = check_timeout(timeout, self._where(request.call))
        cell = self._cell
        if current_cell.get() is cell:
            raise SelfCallError(cell.name, request.describe())
        if self._runtime.in_event_loop_thread():
            raise SelfCallError(
                cell.name,
                request.describe(),
                where="an async hook on the runtime's event loop (await the request_* form there)",
            )
        reply: Reply[Any] = Reply(cell, request)
        turn = cell.try_inline() if self._runtime.inline_calls else None
        if turn is not None:
            cell.process_inline(reply, turn)  # the actor was idle: run it here, in turn
        else:
            cell.mailbox.put(reply)
        return reply.result(timeout)

    def _request(
        self, request: Message, callback: Callable[[Reply[Any]], Any] | None
    ) -> Reply[Any]:
        if callback is not None:
            check_callable(callback, self._where(f"request_{request.call}"), "callback")
        cell = self._cell
        reply: Reply[Any] = Reply(cell, request)
        cell.mailbox.put(reply)
        if callback is not None:
            reply.add_done_callback(callback)
        return reply

    # -- observers ---------------------------------------------------------------------

    def add_observer(self, fn: Observer) -> None:
        """Call ``fn(old, new)`` after every commit, in commit order.

        It runs on the actor's thread after the snapshot is published and
        before the caller gets its answer, under no lock. It may be a coroutine
        function (run on the runtime's event loop). Its errors are reported
        (logged, counted, passed to the runtime's error handler); they never
        undo the commit.
        """
        if not callable(fn):
            raise TypeError(f"an observer must be callable, got {fn!r}")
        with self._cell.observer_lock:
            self._cell.observers = (*self._cell.observers, fn)

    def remove_observer(self, fn: Observer) -> None:
        """Stop calling ``fn``.

        Raises:
            ValueError: ``fn`` is not registered.
        """
        with self._cell.observer_lock:
            observers = list(self._cell.observers)
            try:
                observers.remove(fn)
            except ValueError:
                raise ValueError(f"{fn!r} is not an observer of {self.name!r}") from None
            self._cell.observers = tuple(observers)

    # -- stopping ------------------------------------------------------------------------

    def stop(self, timeout: float | None = None) -> None:
        """Handle what is already queued, then stop the actor for good.

        Later calls raise `ActorStopped`, and its supervisor does not restart
        it. Called from the actor's own hooks, it only queues the stop (it
        cannot wait for itself) and counts as the actor stopping on its own: a
        ``permanent`` actor is then restarted by its supervisor.
        """
        if timeout is not None:
            timeout = check_timeout(timeout, self._where("stop"))
        cell = self._cell
        if current_cell.get() is cell:
            stop_request(cell, "stopped itself", terminal=False, exit=True)
            return
        self._stop("stopped by stop()", timeout, wait=True)

    def _stop(self, reason: str, timeout: float | None, *, wait: bool) -> None:
        cell = self._cell
        if cell.supervisor is not None:
            cell.supervisor._remove(cell)
        cell.stop(reason, cell.default_timeout if timeout is None else timeout, wait=wait)
        self._runtime._forget_cell(cell)

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "alive" if self.alive else "stopped"
        return f"<{type(self).__name__} {self.name!r} {state}>"


@dataclass(frozen=True)
class ActorOptions:
    """How an actor is supervised; every handle takes these as keywords."""

    supervisor: Supervisor | None = None
    restart: str = "permanent"
    on_error: str = "fail"
    deadline: float | None = None
    on_start: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        if self.on_error not in ("fail", "restart"):
            raise ValueError(f"on_error must be 'fail' or 'restart', got {self.on_error!r}")
        if self.deadline is not None and not self.deadline > 0:
            raise ValueError(f"deadline must be > 0 seconds, got {self.deadline!r}")
        if self.restart not in ("permanent", "transient", "temporary"):
            raise ValueError(
                f"restart must be 'permanent', 'transient' or 'temporary', got {self.restart!r}"
            )
        if self.on_start is not None and not callable(self.on_start):
            raise TypeError(f"on_start must be callable, got {self.on_start!r}")


def _as_spec(
    initial_state: str | MachineSpec | MachineBuilder | None,
    transitions: Mapping[str, Iterable[str]] | MachineSpec | MachineBuilder | None,
    events: Any,
    history_limit: int | None,
    name: str | None,
) -> MachineSpec:
    """Read the ways a machine can be defined into one MachineSpec."""
    spec_like = transitions if isinstance(transitions, (MachineSpec, MachineBuilder)) else None
    if isinstance(initial_state, (MachineSpec, MachineBuilder)):
        spec_like, initial_state = initial_state, None
    if spec_like is not None:
        spec = spec_like.build() if isinstance(spec_like, MachineBuilder) else spec_like
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
            spec = builder.build()
        return spec
    assert not isinstance(transitions, (MachineSpec, MachineBuilder))
    return MachineSpec(
        initial_state,
        transitions,
        events=events,
        history_limit=100 if history_limit is None else history_limit,
        name=name,
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
            starts (after a restart too), on the actor's thread: set up here
            what hooks need. If it raises, the start counts as a crash.

    Raises:
        MachineDefinitionError: the definition cannot work.
    """

    _kind = "machine"
    _mirrored = True

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
    ) -> None:
        self._spec = _as_spec(initial_state, transitions, events, history_limit, name)
        super().__init__(
            name,
            runtime,
            MachineSnapshot.initial(self._spec, data),
            _identity,
            _version_of,
            ActorOptions(supervisor, restart, on_error, deadline, on_start),
            MachineCodec(self._spec),
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

    def _behaviour(self, cell: Cell) -> Behaviour:
        return machine_behaviour(
            self._spec, machine=cell.name, clock=cell.runtime.clock, run_async=cell.run_async
        )


class StateManager(ActorHandle):
    """A store of named values running as an actor.

    ``modify(fn)`` is the atomic read-modify-write: ``fn`` runs inside the
    actor, so no concurrent change can slip between its read and its write::

        counters = StateManager({"hits": 0})
        counters.modify(lambda s: s.update(hits=s.hits + 1))   # never loses a hit

    Args:
        initial_state: the starting values.
        name: unique in the runtime; generated when omitted.
        runtime: the owning `Runtime`; when omitted, the current one (that of the
            enclosing ``with Runtime(...)`` block), else the default runtime.
        supervisor: the `Supervisor` to run under; the runtime's root by default.
        restart: ``permanent`` (default), ``transient`` or ``temporary``.
        on_error: ``"fail"`` (default): an exception from a hook fails only its
            request. ``"restart"``: it also crashes the actor, which its
            supervisor restarts from the last committed snapshot.
        deadline: seconds a single request may run; past it the actor counts as
            crashed and is restarted, and the late handler can no longer commit.
        on_start: called with the current value each time an incarnation
            starts (after a restart too), on the actor's thread: set up here
            what hooks need. If it raises, the start counts as a crash.
    """

    _kind = "manager"
    _mirrored = True

    def __init__(
        self,
        initial_state: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        runtime: Runtime | None = None,
        supervisor: Supervisor | None = None,
        restart: str = "permanent",
        on_error: str = "fail",
        deadline: float | None = None,
        on_start: Callable[[Any], Any] | None = None,
    ) -> None:
        if initial_state is not None and not isinstance(initial_state, Mapping):
            raise TypeError(
                f"initial_state must be a mapping, got {type(initial_state).__qualname__}"
            )
        super().__init__(
            name,
            runtime,
            StoreSnapshot.initial(initial_state),
            _state_of,
            _version_of,
            ActorOptions(supervisor, restart, on_error, deadline, on_start),
            ManagerCodec(),
        )

    def get_state(self) -> ImmutableState:
        """The values as of the last commit (an `ImmutableState`)."""
        return self.snapshot.state

    snapshot: StoreSnapshot
    """The last committed `StoreSnapshot` (state and version): a plain attribute
    that the actor replaces at each commit. Read-only."""

    @property
    def version(self) -> int:
        """How many changes have been committed."""
        return self.snapshot.version

    def update_state(
        self, changes: Mapping[str, Any], *, timeout: float | None = None
    ) -> ImmutableState:
        """Set keys (a shallow merge) and wait for the commit; return the new state.

        Note that computing ``changes`` from an earlier `get_state` is a race:
        another thread may commit in between. Use `modify` for that.

        Raises:
            InvalidArgument: ``changes`` is not a mapping (nothing is sent).
            UnencodableValueError: a value cannot be stored (nothing is sent).
        """
        changes = check_changes(changes, self._where("update_state"), "changes")
        result: ImmutableState = self._call(Update((changes,)), timeout)
        return result

    def modify(
        self, fn: Callable[[ImmutableState], Any], *, timeout: float | None = None
    ) -> ImmutableState:
        """Run ``fn(state) -> new state`` inside the actor: an atomic read-modify-write.

        ``fn`` returns the new state (``state.update(...)``) or a mapping. If it
        raises, nothing changes and the error comes back here.
        """
        check_callable(fn, self._where("modify"), "fn")
        result: ImmutableState = self._call(Modify((fn,)), timeout)
        return result

    def request_update(
        self,
        changes: Mapping[str, Any],
        *,
        callback: Callable[[Reply[ImmutableState]], Any] | None = None,
    ) -> Reply[ImmutableState]:
        """Queue `update_state` and return its `Reply` at once."""
        changes = check_changes(changes, self._where("request_update"), "changes")
        return self._request(Update((changes,)), callback)

    def request_modify(
        self,
        fn: Callable[[ImmutableState], Any],
        *,
        callback: Callable[[Reply[ImmutableState]], Any] | None = None,
    ) -> Reply[ImmutableState]:
        """Queue `modify` and return its `Reply` at once."""
        check_callable(fn, self._where("request_modify"), "fn")
        return self._request(Modify((fn,)), callback)

    def _behaviour(self, cell: Cell) -> Behaviour:
        return manager_behaviour(run_async=cell.run_async)


class ConfigManager(ActorHandle):
    """Versioned configuration running as an actor.

    Every change is a new version with its metadata and time; `rollback`
    restores an old version's config as a new version, so the audit trail is
    kept. Version 0 is the initial config.

    Args:
        initial_config: the starting configuration.
        metadata: the initial version's metadata.
        history_limit: keep only this many versions (all of them by default);
            older ones can no longer be read, diffed or rolled back to.
        name: unique in the runtime; generated when omitted.
        runtime: the owning `Runtime`; when omitted, the current one (that of the
            enclosing ``with Runtime(...)`` block), else the default runtime.
        supervisor: the `Supervisor` to run under; the runtime's root by default.
        restart: ``permanent`` (default), ``transient`` or ``temporary``.
        on_error: ``"fail"`` (default): an exception from a hook fails only its
            request. ``"restart"``: it also crashes the actor, which its
            supervisor restarts from the last committed snapshot.
        deadline: seconds a single request may run; past it the actor counts as
            crashed and is restarted, and the late handler can no longer commit.
        on_start: called with the current value each time an incarnation
            starts (after a restart too), on the actor's thread: set up here
            what hooks need. If it raises, the start counts as a crash.
    """

    _kind = "config"

    def __init__(
        self,
        initial_config: Mapping[str, Any] | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        history_limit: int | None = None,
        name: str | None = None,
        runtime: Runtime | None = None,
        supervisor: Supervisor | None = None,
        restart: str = "permanent",
        on_error: str = "fail",
        deadline: float | None = None,
        on_start: Callable[[Any], Any] | None = None,
    ) -> None:
        if initial_config is not None and not isinstance(initial_config, Mapping):
            raise TypeError(
                f"initial_config must be a mapping, got {type(initial_config).__qualname__}"
            )
        owner = runtime or (supervisor.runtime if supervisor is not None else current_runtime())
        history = ConfigHistory.start(
            initial_config or {}, metadata, clock=owner.clock, limit=history_limit
        )
        super().__init__(
            name,
            owner,
            history,
            _config_of,
            _version_of,
            ActorOptions(supervisor, restart, on_error, deadline, on_start),
            ConfigCodec(limit=history_limit),
        )

    @property
    def _history(self) -> ConfigHistory:
        history: ConfigHistory = self._cell.snapshot
        return history

    def get_config(self) -> ImmutableState:
        """The configuration as of the last commit."""
        return self._history.config

    def get_version(self) -> int:
        """The current version (0 before any change)."""
        return self._history.version

    @property
    def version(self) -> int:
        """The current version."""
        return self._history.version

    def get_history(self) -> list[ConfigChange]:
        """Every version's `ConfigChange`, oldest first; the last is the current one."""
        return list(self._history.entries)

    def get_versioned(self, version: int | None = None) -> Any:
        """A `VersionedConfig` for ``version`` (the current one by default)."""
        if version is not None:
            version = check_version(version, self._where("get_versioned"))
        history = self._history
        return history.get(history.version if version is None else version).to_versioned()

    def diff(self, a: int, b: int) -> ConfigDiff:
        """What changed from version ``a`` to version ``b``.

        Raises:
            InvalidArgument: a version is not an int.
            UnknownVersionError: a version is not in the history.
        """
        where = self._where("diff")
        return self._history.diff(check_version(a, where, "a"), check_version(b, where, "b"))

    def update_config(
        self,
        changes: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> ConfigChange:
        """Set top-level keys as a new version and wait for the commit.

        Raises:
            InvalidArgument: ``changes`` or ``metadata`` is not a mapping
                (nothing is sent).
            UnencodableValueError: a value cannot be stored (nothing is sent).
        """
        where = self._where("update_config")
        changes = check_changes(changes, where, "changes")
        metadata = check_payload(metadata, where, "metadata")
        result: ConfigChange = self._call(ConfigUpdate((changes, metadata)), timeout)
        return result

    def rollback(
        self,
        version: int,
        metadata: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> ConfigChange:
        """Restore ``version``'s config as a new version and wait for the commit.

        Raises:
            InvalidArgument: ``version`` is not an int, or ``metadata`` not a
                mapping (nothing is sent).
            UnknownVersionError: no such version.
        """
        where = self._where("rollback")
        version = check_version(version, where)
        metadata = check_payload(metadata, where, "metadata")
        result: ConfigChange = self._call(Rollback((version, metadata)), timeout)
        return result

    def request_update(
        self,
        changes: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
        *,
        callback: Callable[[Reply[ConfigChange]], Any] | None = None,
    ) -> Reply[ConfigChange]:
        """Queue `update_config` and return its `Reply` at once."""
        where = self._where("request_update")
        changes = check_changes(changes, where, "changes")
        metadata = check_payload(metadata, where, "metadata")
        return self._request(ConfigUpdate((changes, metadata)), callback)

    def request_rollback(
        self,
        version: int,
        metadata: Mapping[str, Any] | None = None,
        *,
        callback: Callable[[Reply[ConfigChange]], Any] | None = None,
    ) -> Reply[ConfigChange]:
        """Queue `rollback` and return its `Reply` at once."""
        where = self._where("request_rollback")
        version = check_version(version, where)
        metadata = check_payload(metadata, where, "metadata")
        return self._request(Rollback((version, metadata)), callback)

    def _behaviour(self, cell: Cell) -> Behaviour:
        return config_behaviour(clock=cell.runtime.clock)


def _identity(snapshot: Any) -> Any:
    return snapshot


def _version_of(snapshot: Any) -> int:
    version: int = snapshot.version
    return version


def _state_of(snapshot: StoreSnapshot) -> ImmutableState:
    return snapshot.state


def _config_of(history: ConfigHistory) -> ImmutableState:
    return history.config
