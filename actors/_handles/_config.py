"""`ConfigManager`: the handle of a versioned configuration actor."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from stateward.core import ConfigChange, ConfigDiff, ConfigHistory, ImmutableState
from stateward.core._arguments import check_changes, check_payload, check_timeout, check_version
from stateward.core._behaviours import Behaviour, config_behaviour
from stateward.core._messages import ConfigUpdate, Rollback
from stateward.core._persist import ConfigCodec

from .._cell import Cell
from .._reply import Reply
from .._runtime import Runtime, current_runtime
from .._supervisor import Supervisor
from ._base import ActorHandle, ActorOptions, version_of


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
        dedicated: bool = False,
        mailbox_limit: int | None = None,
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
            version_of,
            ActorOptions(
                supervisor, restart, on_error, deadline, on_start, dedicated, mailbox_limit
            ),
            ConfigCodec(limit=history_limit),
        )

    @property
    def _history(self) -> ConfigHistory:
        history: ConfigHistory = self._cell.read()
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

    async def aupdate_config(
        self,
        changes: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> ConfigChange:
        """Set top-level keys as a new version and await the commit.

        The awaited form of `update_config`, for coroutines: the event loop
        runs on meanwhile. The arguments are checked when it is awaited,
        before anything is sent. Cancelling the awaiting task (or its
        ``asyncio.timeout``) withdraws the request if the actor has not
        started it; once started, it completes and commits.

        Raises:
            InvalidArgument: ``changes`` or ``metadata`` is not a mapping, or
                ``timeout`` not a number of seconds (nothing is sent).
            UnencodableValueError: a value cannot be stored (nothing is sent).
            ActorTimeout: no answer within ``timeout`` (the runtime default).
            ActorStopped: the actor has stopped.
        """
        where = self._where("aupdate_config")
        changes = check_changes(changes, where, "changes")
        metadata = check_payload(metadata, where, "metadata")
        if timeout is not None:
            timeout = check_timeout(timeout, where)
        result: ConfigChange = await self._acall(ConfigUpdate((changes, metadata)), timeout)
        return result

    async def arollback(
        self,
        version: int,
        metadata: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> ConfigChange:
        """Restore ``version``'s config as a new version and await the commit.

        The awaited form of `rollback`; cancelled, it is withdrawn as
        `aupdate_config` is.

        Raises:
            InvalidArgument: ``version`` is not an int, ``metadata`` not a
                mapping, or ``timeout`` not a number of seconds (nothing is sent).
            UnknownVersionError: no such version.
            ActorTimeout: no answer within ``timeout`` (the runtime default).
            ActorStopped: the actor has stopped.
        """
        where = self._where("arollback")
        version = check_version(version, where)
        metadata = check_payload(metadata, where, "metadata")
        if timeout is not None:
            timeout = check_timeout(timeout, where)
        result: ConfigChange = await self._acall(Rollback((version, metadata)), timeout)
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

    def _watched(self, snapshot: ConfigHistory) -> ConfigChange:
        """Watchers see the current version's `ConfigChange`, as `update_config`
        returns it: its ``config``, ``version``, ``changes`` and ``metadata``."""
        return snapshot.current


def _config_of(history: ConfigHistory) -> ImmutableState:
    return history.config
