"""ImmutableState: a deeply immutable record of named values.

Its values are checked and frozen on the way in by ``_frozen`` (`freeze` and
the frozen containers); it shares that module's mapping machinery with
`FrozenDict`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._frozen import (
    MAX_DEPTH,
    FrozenDict,
    FrozenList,
    _field,
    _FieldFirst,
    _fields_of,
    _freeze_mapping,
    _FrozenMapping,
    _set_data,
    _set_depth,
    _set_hash,
)

# FrozenDict and FrozenList were defined here before, and a pickle made then
# names them here: they stay importable from here.
__all__ = ["FrozenDict", "FrozenList", "ImmutableState", "record"]


class ImmutableState(_FrozenMapping):
    """A deeply immutable record of named values.

    Build it from keyword arguments, a mapping, or both:

    ```python
    state = ImmutableState(user_id="user_123", status="active", count=0)
    state.count, state["count"], "count" in state, len(state)
    newer = state.update(count=1)   # a new state; state itself is unchanged
    ```

    Supported values are None, bool, int, float, str, bytes, datetime (naive,
    with a ``datetime.timezone`` or a ``zoneinfo.ZoneInfo``), list, tuple, dict
    with str keys, set, frozenset and nested ImmutableState. Dicts, lists and
    sets are frozen on the way in (`FrozenDict`, `FrozenList`, ``frozenset``).
    A value may nest at most `MAX_DEPTH` containers, this state included.
    Anything else, or anything deeper, raises `UnencodableValueError` (a
    `TypeError`) naming the key path and the type. Setting an attribute or an
    item raises `FrozenStateError` (an `AttributeError`).

    A field named like one of the mapping helpers (``keys``, ``items``,
    ``values``, ``get``) hides that helper on attribute access, so
    ``order.items`` is the field. A field named ``update``, ``without`` or
    ``to_dict`` is read as ``state["update"]``: those methods always win.
    """

    __slots__ = ()

    keys = _FieldFirst(Mapping.keys)
    items = _FieldFirst(Mapping.items)
    values = _FieldFirst(Mapping.values)
    get = _FieldFirst(_FrozenMapping.get)

    def __init__(self, fields: Mapping[str, Any] | None = None, /, **more: Any) -> None:
        data: Mapping[str, Any] = more if fields is None else {**_fields_of(fields), **more}
        _set_data(self, _freeze_mapping(data, "", MAX_DEPTH - 1))
        _set_hash(self, None)
        _set_depth(self, None)

    def __getattr__(self, name: str) -> Any:
        return _field(self, name)

    def update(self, changes: Mapping[str, Any] | None = None, /, **more: Any) -> ImmutableState:
        """Return a new state with ``changes`` applied; this one is unchanged.

        Values that are not changed are shared with the new state, not copied.
        """
        if changes is not None:
            more = {**_fields_of(changes), **more}
        data = dict(self._data)
        data.update(_freeze_mapping(more, "", MAX_DEPTH - 1))
        return ImmutableState._wrap(data)

    def without(self, *keys: str) -> ImmutableState:
        """Return a new state without ``keys``.

        Raises:
            KeyError: a key is not in the state.
        """
        data = dict(self._data)
        for key in keys:
            if key not in data:
                known = ", ".join(sorted(self._data)) or "none"
                raise KeyError(f"ImmutableState has no field {key!r}; fields: {known}")
            del data[key]
        return ImmutableState._wrap(data)

    def __dir__(self) -> Iterable[str]:
        return [*super().__dir__(), *(k for k in self._data if k.isidentifier())]

    def __repr__(self) -> str:
        if all(k.isidentifier() for k in self._data):
            inner = ", ".join(f"{k}={v!r}" for k, v in self._data.items())
            return f"ImmutableState({inner})"
        return f"ImmutableState({self._data!r})"


def record(**fields: Any) -> ImmutableState:
    """An ImmutableState of values that are frozen already, built without checks.

    For the documents that wrap a value for the codec (a machine's snapshot, a
    store's state and version): they nest a level or two deeper than the value
    they hold, which may itself be `MAX_DEPTH` deep. The codec's record limit
    (`RECORD_DEPTH`) leaves room for them.
    """
    return ImmutableState._wrap(fields)
