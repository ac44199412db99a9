"""`StateManager`: the handle of a state manager actor."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from stateward.core import ImmutableState, StoreSnapshot
from stateward.core._arguments import check_callable, check_changes, check_timeout
from stateward.core._behaviours import Behaviour, manager_behaviour
from stateward.core._messages import Modify, Update
from stateward.core._persist import ManagerCodec

from .._cell import Cell
from .._reply import Reply
from .._runtime import Runtime
from .._supervisor import Supervisor
from ._base import ActorHandle, ActorOptions, version_of


class StateManager(ActorHandle):
    """A store of named values running as an actor.

    ``modify(fn)`` is the atomic read-modify-write: ``fn`` runs inside the
    actor, so no concurrent change can slip between its read and its write:

    ```python
    counters = StateManager({"hits": 0})
    counters.modify(lambda s: s.update(hits=s.hits + 1))   # never loses a hit
    ```

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
        dedicated: bool = False,
        mailbox_limit: int | None = None,
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
            version_of,
            ActorOptions(
                supervisor, restart, on_error, deadline, on_start, dedicated, mailbox_limit
            ),
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

    async def aupdate_state(
        self, changes: Mapping[str, Any], *, timeout: float | None = None
    ) -> ImmutableState:
        """Set keys (a shallow merge) and await the commit; return the new state.

        The awaited form of `update_state`, for coroutines: the event loop runs
        on meanwhile. The arguments are checked when it is awaited, before
        anything is sent. Cancelling the awaiting task (or its
        ``asyncio.timeout``) withdraws the request if the actor has not
        started it; once started, it completes and commits.

        Raises:
            InvalidArgument: ``changes`` is not a mapping, or ``timeout`` not a
                number of seconds (nothing is sent).
            UnencodableValueError: a value cannot be stored (nothing is sent).
            ActorTimeout: no answer within ``timeout`` (the runtime default).
            ActorStopped: the actor has stopped.
        """
        where = self._where("aupdate_state")
        changes = check_changes(changes, where, "changes")
        if timeout is not None:
            timeout = check_timeout(timeout, where)
        result: ImmutableState = await self._acall(Update((changes,)), timeout)
        return result

    async def amodify(
        self, fn: Callable[[ImmutableState], Any], *, timeout: float | None = None
    ) -> ImmutableState:
        """Run ``fn(state) -> new state`` inside the actor and await the commit.

        The awaited form of `modify`: an atomic read-modify-write. ``fn`` (a
        function or a coroutine function) runs in the actor, not on the
        awaiting loop. If it raises, nothing changes and the error comes back
        here. Cancelling the awaiting task withdraws the request if the actor
        has not started it; once started, it completes and commits.

        Raises:
            InvalidArgument: ``fn`` is not callable, or ``timeout`` not a number
                of seconds (nothing is sent).
            ActorTimeout: no answer within ``timeout`` (the runtime default).
            ActorStopped: the actor has stopped.
        """
        where = self._where("amodify")
        check_callable(fn, where, "fn")
        if timeout is not None:
            timeout = check_timeout(timeout, where)
        result: ImmutableState = await self._acall(Modify((fn,)), timeout)
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
        return manager_behaviour(run_async=cell.run_async, suspend=True)


def _state_of(snapshot: StoreSnapshot) -> ImmutableState:
    return snapshot.state
