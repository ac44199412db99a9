"""Versioned configuration: values and the pure logic of update, rollback and diff.

A `ConfigHistory` is an immutable list of `ConfigChange` entries, version 0 being
the initial config. Each update or rollback appends exactly one version, so the
audit trail is never rewritten: a rollback is a new version whose config equals
an older one's.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import UnknownVersionError
from ._frozen import FrozenDict, _fields_of
from ._same import same
from ._state import ImmutableState
from ._storable import _key_path
from ._wallclock import WallClock, utc_now

__all__ = ["ConfigChange", "ConfigDiff", "ConfigHistory", "VersionedConfig"]


def _frozen(value: Mapping[str, Any] | None) -> ImmutableState:
    if isinstance(value, ImmutableState):
        return value
    return ImmutableState(value or {})


@dataclass(frozen=True, slots=True)
class VersionedConfig:
    """A configuration at one version, with the metadata of the change that made it.

    ``config`` and ``metadata`` are frozen into `ImmutableState` on the way in.
    """

    version: int
    config: ImmutableState
    metadata: ImmutableState = field(default_factory=ImmutableState)

    def __post_init__(self) -> None:
        if (
            not isinstance(self.version, int)
            or isinstance(self.version, bool)
            or (self.version < 0)
        ):
            raise ValueError(f"version must be an int >= 0, got {self.version!r}")
        object.__setattr__(self, "config", _frozen(self.config))
        object.__setattr__(self, "metadata", _frozen(self.metadata))


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """One entry of a config history.

    Attributes:
        version: the version this change created (0 is the initial config).
        changes: the top-level keys this change set, with their new values.
        config: the whole config after the change.
        metadata: who, why, and anything the caller passed.
        at: when it was made.
        removed: top-level keys this change removed (a rollback can remove keys).
        rollback_of: for a rollback, the version whose config it restored.
    """

    version: int
    changes: ImmutableState
    config: ImmutableState
    metadata: ImmutableState
    at: _dt.datetime
    removed: tuple[str, ...] = ()
    rollback_of: int | None = None

    def to_versioned(self) -> VersionedConfig:
        """This entry as a `VersionedConfig`."""
        return VersionedConfig(self.version, self.config, self.metadata)

    def to_tuple(self) -> tuple[Any, ...]:
        """An encodable form, for snapshots (see `from_tuple`)."""
        return (
            self.version,
            self.changes,
            self.config,
            self.metadata,
            self.at,
            self.removed,
            self.rollback_of,
        )

    @classmethod
    def from_tuple(cls, value: tuple[Any, ...]) -> ConfigChange:
        """Rebuild an entry from `to_tuple`'s form."""
        version, changes, config, metadata, at, removed, rollback_of = value
        return cls(
            version,
            _frozen(changes),
            _frozen(config),
            _frozen(metadata),
            at,
            tuple(removed),
            rollback_of,
        )


@dataclass(frozen=True, slots=True)
class ConfigDiff:
    """What differs between two configs, by dotted key path (``features.auth``).

    Nested dicts are compared key by key; any other value is compared whole.

    Attributes:
        added: paths only in the newer config, with their values.
        removed: paths only in the older config, with their values.
        changed: paths in both with different values, as ``(old, new)``.
    """

    old_version: int
    new_version: int
    added: FrozenDict
    removed: FrozenDict
    changed: FrozenDict

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    @classmethod
    def between(
        cls,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        old_version: int = 0,
        new_version: int = 0,
    ) -> ConfigDiff:
        """Compare two configs."""
        added: dict[str, Any] = {}
        removed: dict[str, Any] = {}
        changed: dict[str, Any] = {}
        _walk_diff(old, new, "", added, removed, changed)
        return cls(
            old_version, new_version, FrozenDict(added), FrozenDict(removed), FrozenDict(changed)
        )


def _walk_diff(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    prefix: str,
    added: dict[str, Any],
    removed: dict[str, Any],
    changed: dict[str, Any],
) -> None:
    for key in old:
        path = _key_path(prefix, key)
        if key not in new:
            removed[path] = old[key]
        elif not same(old[key], new[key]):
            a, b = old[key], new[key]
            if isinstance(a, Mapping) and isinstance(b, Mapping):
                _walk_diff(a, b, path, added, removed, changed)
            else:
                changed[path] = (a, b)
    for key in new:
        if key not in old:
            added[_key_path(prefix, key)] = new[key]


@dataclass(frozen=True, slots=True)
class ConfigHistory:
    """The immutable history of one configuration; every operation returns a new one.

    ``entries`` holds the kept versions, oldest first, each one more than the
    last. With no ``limit`` every version is kept (``entries[v].version == v``);
    with one, only the newest ``limit`` versions are, and older ones are gone
    for `get`, `rollback` and `diff`.
    """

    entries: tuple[ConfigChange, ...]
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            raise ValueError(f"a config history limit must be an int >= 1, got {self.limit!r}")

    def _append(self, entry: ConfigChange) -> ConfigHistory:
        entries = (*self.entries, entry)
        if self.limit is not None and len(entries) > self.limit:
            entries = entries[-self.limit :]
        return ConfigHistory(entries, self.limit)

    @classmethod
    def start(
        cls,
        config: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
        *,
        clock: WallClock = utc_now,
        limit: int | None = None,
    ) -> ConfigHistory:
        """A history holding only the initial config, as version 0; it keeps at
        most ``limit`` versions (all of them when None)."""
        frozen = _frozen(config)
        meta = _frozen(metadata or {"reason": "initial configuration"})
        return cls((ConfigChange(0, frozen, frozen, meta, clock()),), limit)

    @property
    def current(self) -> ConfigChange:
        """The newest entry."""
        return self.entries[-1]

    @property
    def version(self) -> int:
        """The newest version."""
        return self.entries[-1].version

    @property
    def config(self) -> ImmutableState:
        """The newest config."""
        return self.entries[-1].config

    def get(self, version: int) -> ConfigChange:
        """The entry for ``version``.

        Raises:
            UnknownVersionError: no such version (it is a `LookupError`).
        """
        oldest = self.entries[0].version
        if (
            not isinstance(version, int)
            or isinstance(version, bool)
            or not (oldest <= version <= self.version)
        ):
            raise UnknownVersionError(version, oldest, self.version)
        return self.entries[version - oldest]

    def update(
        self,
        changes: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
        *,
        clock: WallClock = utc_now,
    ) -> ConfigHistory:
        """Set top-level keys (a shallow merge) as a new version.

        Raises:
            UnencodableValueError: a value cannot be stored (nothing changes).
            TypeError: ``changes`` is not a mapping.
        """
        if not isinstance(changes, Mapping):
            raise TypeError(f"config changes must be a mapping, got {type(changes).__qualname__}")
        frozen_changes = _frozen(changes)
        meta = _frozen(metadata)
        config = self.config.update(frozen_changes)
        entry = ConfigChange(self.version + 1, frozen_changes, config, meta, clock())
        return self._append(entry)

    def rollback(
        self, version: int, metadata: Mapping[str, Any] | None = None, *, clock: WallClock = utc_now
    ) -> ConfigHistory:
        """Restore ``version``'s config as a new version; the history is kept.

        Raises:
            UnknownVersionError: no such version.
        """
        target = self.get(version).config
        current = self.config
        changes = {
            k: v for k, v in target._data.items() if k not in current or not same(current[k], v)
        }
        removed = tuple(k for k in current if k not in target)
        meta = _frozen({"reason": f"rollback to version {version}", **_fields_of(metadata or {})})
        entry = ConfigChange(
            self.version + 1, ImmutableState(changes), target, meta, clock(), removed, version
        )
        return self._append(entry)

    def diff(self, a: int, b: int) -> ConfigDiff:
        """What changed from version ``a`` to version ``b``.

        Raises:
            UnknownVersionError: either version does not exist.
        """
        return ConfigDiff.between(self.get(a).config, self.get(b).config, a, b)
