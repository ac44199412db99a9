"""VersionedConfig, ConfigHistory (update, rollback, diff, get), ConfigChange, ConfigDiff."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pickle
from collections.abc import Iterator
from typing import Any

import pytest

from stateward.core import (
    ConfigChange,
    ConfigDiff,
    ConfigHistory,
    FrozenDict,
    ImmutableState,
    UnencodableValueError,
    UnknownVersionError,
    VersionedConfig,
    decode,
    encode,
)

T0 = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)
INITIAL = {"debug": False, "workers": 4, "features": {"auth": True, "beta": False}}


@pytest.fixture
def clock() -> Any:
    """A clock that moves one minute per call, starting at T0."""

    def ticks() -> Iterator[dt.datetime]:
        at = T0
        while True:
            yield at
            at += dt.timedelta(minutes=1)

    it = ticks()
    return lambda: next(it)


@pytest.fixture
def history(clock: Any) -> ConfigHistory:
    """Versions 0..3: initial, debug on, a new key, features replaced."""
    h = ConfigHistory.start(INITIAL, clock=clock)
    h = h.update({"debug": True}, {"by": "alice"}, clock=clock)
    h = h.update({"timeout": 30}, {"by": "bob", "why": "slow backend"}, clock=clock)
    return h.update({"features": {"auth": True, "beta": True}}, clock=clock)


# -- start and update -------------------------------------------------------------------------


def test_start_holds_version_zero() -> None:
    h = ConfigHistory.start(INITIAL, clock=lambda: T0)
    assert h.version == 0
    assert len(h.entries) == 1
    first = h.current
    assert first.version == 0
    assert first.config == INITIAL
    assert first.changes == INITIAL
    assert first.metadata == {"reason": "initial configuration"}
    assert first.at == T0
    assert (first.removed, first.rollback_of) == ((), None)
    assert type(h.config) is ImmutableState
    assert ConfigHistory.start({}, {"by": "ops"}).current.metadata == {"by": "ops"}


def test_versions_increase_by_exactly_one(history: ConfigHistory) -> None:
    assert history.version == 3
    assert [e.version for e in history.entries] == [0, 1, 2, 3]
    for v, entry in enumerate(history.entries):
        assert entry.version == v
        assert history.get(v) is entry


def test_update_is_a_shallow_merge(history: ConfigHistory) -> None:
    assert history.config.to_dict() == {
        "debug": True,
        "workers": 4,
        "features": {"auth": True, "beta": True},
        "timeout": 30,
    }
    h = history.update({"features": {"dark": True}})
    # A nested dict is replaced whole, not merged.
    assert h.config.features == {"dark": True}
    assert h.current.changes == {"features": {"dark": True}}


def test_each_change_records_metadata_and_time(history: ConfigHistory) -> None:
    second = history.get(2)
    assert second.changes == {"timeout": 30}
    assert second.metadata == {"by": "bob", "why": "slow backend"}
    assert second.at == T0 + dt.timedelta(minutes=2)
    assert history.get(3).metadata == ImmutableState()
    assert [e.at for e in history.entries] == [T0 + dt.timedelta(minutes=m) for m in range(4)]


def test_the_default_clock_is_utc_now() -> None:
    before = dt.datetime.now(dt.UTC)
    h = ConfigHistory.start({}).update({"a": 1})
    assert h.current.at.tzinfo is dt.UTC
    assert h.current.at >= before


def test_update_leaves_the_old_history_unchanged(history: ConfigHistory) -> None:
    older = history
    newer = history.update({"workers": 8})
    assert older.version == 3
    assert older.config.workers == 4
    assert newer.version == 4
    assert newer.entries[:4] == older.entries
    # Entries are shared, not copied.
    assert all(a is b for a, b in zip(newer.entries, older.entries, strict=False))


def test_a_config_key_named_like_a_mapping_method() -> None:
    h = ConfigHistory.start({"items": 1}).update({"keys": ["k1"], "values": 2})
    assert h.config.to_dict() == {"items": 1, "keys": ["k1"], "values": 2}
    assert h.rollback(0).config.to_dict() == {"items": 1}


def test_values_are_frozen(history: ConfigHistory) -> None:
    with pytest.raises(TypeError):
        history.config.features["beta"] = False
    with pytest.raises(dataclasses.FrozenInstanceError):
        history.current.version = 9  # type: ignore[misc]
    with pytest.raises(AttributeError):
        history.entries = ()  # type: ignore[misc]


# -- bad input changes nothing -------------------------------------------------------------------


@pytest.mark.parametrize("changes", ["debug=true", [("debug", True)], None, 3])
def test_changes_must_be_a_mapping(history: ConfigHistory, changes: Any) -> None:
    with pytest.raises(TypeError, match=r"config changes must be a mapping, got"):
        history.update(changes)
    assert history.version == 3


def test_an_unencodable_value_is_refused(history: ConfigHistory) -> None:
    with pytest.raises(UnencodableValueError, match=r"^limits\.hard\[1\]: object cannot be stored"):
        history.update({"workers": 9, "limits": {"hard": [1, object()]}})
    with pytest.raises(UnencodableValueError, match=r"^who: "):
        history.update({"workers": 9}, {"who": object()})
    assert history.version == 3
    assert history.config.workers == 4


# -- get and unknown versions ----------------------------------------------------------------------


@pytest.mark.parametrize("version", [-1, 4, 100, True, "1", 1.0, None])
def test_unknown_versions_name_the_kept_range(history: ConfigHistory, version: object) -> None:
    with pytest.raises(
        UnknownVersionError,
        match=rf"config version {version!r} does not exist; versions 0 to 3 are kept",
    ) as info:
        history.get(version)  # type: ignore[arg-type]
    assert isinstance(info.value, LookupError)
    assert (info.value.version, info.value.oldest, info.value.newest) == (version, 0, 3)


def test_rollback_and_diff_refuse_unknown_versions(history: ConfigHistory) -> None:
    with pytest.raises(UnknownVersionError, match="config version 7 does not exist"):
        history.rollback(7)
    with pytest.raises(UnknownVersionError, match="config version -2 does not exist"):
        history.diff(-2, 1)
    with pytest.raises(UnknownVersionError, match="config version 9 does not exist"):
        history.diff(0, 9)
    assert history.version == 3


def test_unknown_version_error_survives_pickling() -> None:
    err = UnknownVersionError(7, 0, 3)
    back = pickle.loads(pickle.dumps(err))
    assert (back.version, back.oldest, back.newest) == (7, 0, 3)
    assert str(back) == str(err) == "config version 7 does not exist; versions 0 to 3 are kept"


# -- rollback --------------------------------------------------------------------------------


def test_rollback_appends_a_version_equal_to_the_target(history: ConfigHistory, clock: Any) -> None:
    rolled = history.rollback(1, {"by": "carol"}, clock=clock)
    assert rolled.version == 4
    assert rolled.config == history.get(1).config
    entry = rolled.current
    assert entry.rollback_of == 1
    assert entry.removed == ("timeout",)
    assert entry.changes == {"features": {"auth": True, "beta": False}}
    assert entry.metadata == {"reason": "rollback to version 1", "by": "carol"}
    assert entry.at == T0 + dt.timedelta(minutes=4)
    # The history is kept, not rewritten.
    assert rolled.entries[:4] == history.entries
    assert history.version == 3


def test_rollback_to_version_zero_and_to_the_current_version(history: ConfigHistory) -> None:
    to_zero = history.rollback(0)
    assert to_zero.config == INITIAL
    assert to_zero.current.removed == ("timeout",)
    assert set(to_zero.current.changes) == {"debug", "features"}
    same = history.rollback(3)
    assert same.version == 4
    assert same.config == history.config
    assert same.current.changes == ImmutableState()
    assert same.current.removed == ()


def test_rollback_metadata_can_override_the_reason(history: ConfigHistory) -> None:
    rolled = history.rollback(0, {"reason": "incident 42"})
    assert rolled.current.metadata == {"reason": "incident 42"}


def test_rollback_notices_a_change_of_type() -> None:
    h = ConfigHistory.start({"limit": 1}).update({"limit": 1.0})
    rolled = h.rollback(0)
    assert type(rolled.config.limit) is int
    assert rolled.current.changes == {"limit": 1}


def test_versions_stay_consecutive_across_updates_and_rollbacks(history: ConfigHistory) -> None:
    h = history.rollback(0).update({"x": 1}).rollback(2).rollback(5)
    assert [e.version for e in h.entries] == list(range(8))
    assert [e.rollback_of for e in h.entries[4:]] == [0, None, 2, 5]
    assert h.config == h.get(5).config


# -- diff ------------------------------------------------------------------------------------


def test_diff_lists_added_removed_and_changed_paths(history: ConfigHistory) -> None:
    diff = history.diff(0, 3)
    assert (diff.old_version, diff.new_version) == (0, 3)
    assert diff.added == {"timeout": 30}
    assert diff.removed == {}
    assert diff.changed == {"debug": (False, True), "features.beta": (False, True)}
    assert diff
    backwards = history.diff(3, 0)
    assert backwards.removed == {"timeout": 30}
    assert backwards.changed == {"debug": (True, False), "features.beta": (True, False)}


def test_diff_of_a_version_with_itself_is_empty(history: ConfigHistory) -> None:
    diff = history.diff(2, 2)
    assert not diff
    assert (diff.added, diff.removed, diff.changed) == (FrozenDict(), FrozenDict(), FrozenDict())


def test_diff_walks_nested_dicts_with_dotted_paths() -> None:
    old = {"db": {"pool": {"min": 1, "max": 5}, "host": "a"}, "odd key": {"x": 1}, "gone": 1}
    new = {"db": {"pool": {"min": 1, "max": 10, "idle": 3}}, "odd key": {"x": 2}, "flag": [1]}
    diff = ConfigDiff.between(old, new, 4, 5)
    assert diff.added == {"db.pool.idle": 3, "flag": [1]}
    assert diff.removed == {"db.host": "a", "gone": 1}
    assert diff.changed == {"db.pool.max": (5, 10), "['odd key'].x": (1, 2)}
    assert (diff.old_version, diff.new_version) == (4, 5)


def test_diff_compares_other_values_whole_including_their_type() -> None:
    diff = ConfigDiff.between(
        {"a": [1, 2], "b": 1, "c": (1,), "d": {"k": 1}},
        {"a": [1, 3], "b": True, "c": [1], "d": 5},
    )
    assert diff.changed == {
        "a": ([1, 2], [1, 3]),
        "b": (1, True),
        "c": ((1,), [1]),
        "d": ({"k": 1}, 5),
    }
    assert type(diff.changed["b"][1]) is bool


# -- VersionedConfig and ConfigChange ---------------------------------------------------------


def test_versioned_config_freezes_its_values() -> None:
    vc = VersionedConfig(2, {"a": {"b": [1]}}, {"by": "x"})  # type: ignore[arg-type]
    assert type(vc.config) is ImmutableState
    assert type(vc.metadata) is ImmutableState
    assert vc.config.a == {"b": [1]}
    assert VersionedConfig(0, ImmutableState()).metadata == ImmutableState()
    with pytest.raises(dataclasses.FrozenInstanceError):
        vc.version = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        vc.config.a["b"] = 2
    assert vc == VersionedConfig(2, ImmutableState(a={"b": [1]}), ImmutableState(by="x"))
    assert hash(vc) == hash(
        VersionedConfig(2, ImmutableState(a={"b": [1]}), ImmutableState(by="x"))
    )


@pytest.mark.parametrize("version", [-1, True, "1", 1.5])
def test_versioned_config_checks_the_version(version: object) -> None:
    with pytest.raises(ValueError, match=r"version must be an int >= 0, got"):
        VersionedConfig(version, ImmutableState())  # type: ignore[arg-type]


def test_versioned_config_refuses_unencodable_values() -> None:
    with pytest.raises(UnencodableValueError, match=r"^x\[0\]"):
        VersionedConfig(0, {"x": [object()]})  # type: ignore[arg-type]


def test_a_change_as_versioned_config(history: ConfigHistory) -> None:
    entry = history.get(2)
    vc = entry.to_versioned()
    assert vc == VersionedConfig(2, entry.config, entry.metadata)


def test_a_change_round_trips_through_the_codec(history: ConfigHistory) -> None:
    rolled = history.rollback(1)
    for entry in rolled.entries:
        back = ConfigChange.from_tuple(decode(encode(entry.to_tuple())))
        assert back == entry
        assert type(back.config) is ImmutableState
        assert type(back.removed) is tuple
    assert ConfigChange.from_tuple(rolled.current.to_tuple()).rollback_of == 1


def test_a_history_limit_keeps_only_the_newest_versions() -> None:
    history = ConfigHistory.start({"n": 0}, limit=3)
    for n in range(1, 6):
        history = history.update({"n": n})
    assert [e.version for e in history.entries] == [3, 4, 5]
    assert history.version == 5 and history.config == {"n": 5}
    with pytest.raises(UnknownVersionError, match="versions 3 to 5 are kept"):
        history.rollback(1)
    assert history.rollback(3).config == {"n": 3}
    with pytest.raises(ValueError, match="limit must be an int >= 1"):
        ConfigHistory.start({}, limit=0)
