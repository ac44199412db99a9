"""The frozen containers and `freeze`, which builds them.

Every value that goes into an `ImmutableState` (in ``_state``) is checked and
frozen once, on the way in: dicts become `FrozenDict`, lists become
`FrozenList`, sets become ``frozenset``, tuples stay tuples with frozen items.
Values that are already frozen are kept as they are, so
`ImmutableState.update` copies only the top-level table and shares every value
that did not change. Freezing builds the containers and the containers'
constructors freeze their items, so both live here; `ImmutableState` is a
frozen mapping too (a direct subclass of ``_FrozenMapping``, which is how
`freeze` knows it without importing it).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, NoReturn, TypeVar, overload

from ._errors import FrozenStateError, UnencodableValueError, UninitializedStateError
from ._storable import (
    _CONTAINERS,
    _SCALARS,
    MAX_DEPTH,
    _check_datetime,
    _check_key,
    _check_text,
    _key_path,
    _too_deep,
)

__all__ = ["MAX_DEPTH", "FrozenDict", "FrozenList", "freeze", "thaw"]


def _freeze_mapping(value: Mapping[Any, Any], path: str, room: int) -> dict[str, Any]:
    """The items of ``value``, checked and frozen; each may nest ``room`` levels."""
    frozen: dict[str, Any] = {}
    for key, item in value.items():
        key = _check_key(key, path)
        frozen[key] = _freeze(item, _key_path(path, key), room)
    return frozen


def _fields_of(value: Mapping[str, Any]) -> Mapping[str, Any]:
    # ``{**state}`` and ``dict(state)`` call ``state.keys()``, which a field named
    # ``keys`` hides (see _FieldFirst): read frozen mappings through their table.
    return value._data if isinstance(value, _FrozenMapping) else value


def freeze(value: Any, path: str = "") -> Any:
    """Return ``value`` checked and deeply frozen, sharing parts already frozen.

    Args:
        value: any supported value (see `ImmutableState`), nesting at most
            `MAX_DEPTH` containers.
        path: where the value sits, used in error messages (``order.items[2]``).

    Raises:
        UnencodableValueError: the value, or something inside it, is not supported
            or nests too deep. The message names its path and type.
    """
    return _freeze(value, path, MAX_DEPTH)


def _freeze(value: Any, path: str, room: int) -> Any:
    """`freeze`, for a value that may nest ``room`` containers deep."""
    kind = type(value)
    if kind in _SCALARS:
        if kind is _dt.datetime:
            return _check_datetime(value, path)
        if kind is str:
            return _check_text(value, path)
        return value
    if kind in _FROZEN:
        # Frozen already: shared as it is, if it fits. Its depth is worked out
        # once and kept on it, so sharing it again costs nothing.
        depth = value._depth
        if depth is None:
            depth = _depth_of(value)
        if depth > room:
            raise _too_deep(path, kind, room, depth)
        return value
    if room < 1 and kind in _CONTAINERS:
        raise _too_deep(path, kind, room)
    if kind is dict:
        return FrozenDict._wrap(_freeze_mapping(value, path, room - 1))
    if kind is list:
        room -= 1
        return FrozenList._wrap(
            tuple(_freeze(v, f"{path}[{i}]", room) for i, v in enumerate(value))
        )
    if kind is tuple:
        room -= 1
        return tuple(_freeze(v, f"{path}[{i}]", room) for i, v in enumerate(value))
    if kind is set or kind is frozenset:
        room -= 1
        return frozenset(_freeze(v, f"{path}{{{v!r}}}", room) for v in value)
    # Subclasses of ImmutableState and FrozenDict are stored as the plain type,
    # as str and int subclasses are below: that is what the codec can bring back.
    if isinstance(value, _FrozenMapping):
        return _freeze(kind._plain._wrap(value._data), path, room)
    if isinstance(value, Mapping):
        if room < 1:
            raise _too_deep(path, kind, room)
        return FrozenDict._wrap(_freeze_mapping(value, path, room - 1))
    # Subclasses of the basic scalars (str and int enums, for instance) are
    # stored as the plain value: that is what the codec can bring back.
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return _check_text(str.__str__(value), path)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, tuple):
        raise UnencodableValueError(
            path,
            kind,
            f"{kind.__qualname__} (a tuple subclass) cannot be stored as itself; "
            "pass a plain tuple, a dict or an ImmutableState",
        )
    raise UnencodableValueError(path, kind)


def _depth_of(value: Any) -> int:
    """How many containers deep ``value`` nests (0 for a scalar).

    Kept on a frozen container once worked out (its contents never change).
    Only called on values that are already bounded (frozen ones, and the
    records built from them), so the recursion is bounded too.
    """
    kind = type(value)
    if kind in _SCALARS:
        return 0
    # Exact types first: isinstance() against these ABC-derived classes is slow.
    if kind in _FROZEN:
        depth: int | None = value._depth
        if depth is None:
            depth = _deepest(value._items if kind is FrozenList else value._data.values())
            (_set_list_depth if kind is FrozenList else _set_depth)(value, depth)
        return depth
    if kind in _CONTAINERS:
        return _deepest(value.values() if kind is dict else value)
    if isinstance(value, (_FrozenMapping, FrozenList)):  # a subclass
        return _deepest(value._items if isinstance(value, FrozenList) else value._data.values())
    if isinstance(value, Mapping):
        return _deepest(value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return _deepest(value)
    return 0


def _deepest(items: Iterable[Any]) -> int:
    """The depth of a container holding ``items``: one more than the deepest item."""
    deepest = 0
    scalars = _SCALARS
    for item in items:
        if type(item) not in scalars:  # a scalar adds nothing: skip the call
            depth = _depth_of(item)
            if depth > deepest:
                deepest = depth
    return deepest + 1


def thaw(value: Any) -> Any:
    """Return plain mutable containers for frozen ones, recursively.

    `FrozenDict` and `ImmutableState` become ``dict``, `FrozenList` becomes
    ``list``, ``frozenset`` becomes ``set`` (its items stay hashable, so frozen),
    tuples stay tuples with thawed items. Scalars are returned as they are.
    """
    if isinstance(value, _FrozenMapping):
        return {k: thaw(v) for k, v in value._data.items()}
    kind = type(value)
    if kind is FrozenList:
        return [thaw(v) for v in value._items]
    if kind is tuple:
        return tuple(thaw(v) for v in value)
    if kind is frozenset:
        return set(value)
    return value


#: The frozen types, exactly (FrozenDict, FrozenList, ImmutableState, not their
#: subclasses): what `freeze` shares as it is.
_FROZEN: set[type] = set()


class _FrozenMapping(Mapping[str, Any]):
    """The shared machinery of FrozenDict and ImmutableState.

    A direct subclass (FrozenDict here, ImmutableState in ``_state``) is a
    plain frozen type: `freeze` shares its values as they are, and stores a
    value of a further subclass as that plain type (``_plain``).
    """

    __slots__ = ("_data", "_depth", "_hash")
    _data: dict[str, Any]
    _hash: int | None
    _depth: int | None
    _plain: ClassVar[type[_FrozenMapping]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if _FrozenMapping in cls.__bases__:
            cls._plain = cls
            _FROZEN.add(cls)

    @classmethod
    def _wrap(cls: type[_M], data: dict[str, Any]) -> _M:
        # Internal: ``data`` is already frozen and owned by the new value.
        self = object.__new__(cls)
        _set_data(self, data)
        _set_hash(self, None)
        _set_depth(self, None)
        return self

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _FrozenMapping):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other.items())
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self) -> int:
        cached = self._hash
        if cached is None:
            cached = hash(frozenset(self._data.items()))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise FrozenStateError(type(self).__name__, name)

    def __delattr__(self, name: str) -> NoReturn:
        raise FrozenStateError(type(self).__name__, name, operation="delete")

    def __setitem__(self, key: str, value: object) -> NoReturn:
        raise FrozenStateError(type(self).__name__, key)

    def __delitem__(self, key: str) -> NoReturn:
        raise FrozenStateError(type(self).__name__, key, operation="delete")

    def __copy__(self: _M) -> _M:
        return self

    def __deepcopy__(self: _M, memo: object) -> _M:
        return self

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return (type(self)._wrap, (self._data,))

    def to_dict(self) -> dict[str, Any]:
        """Return a plain, mutable copy: nested dicts, lists and sets, recursively."""
        return {k: thaw(v) for k, v in self._data.items()}


_M = TypeVar("_M", bound=_FrozenMapping)


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """A slot's own setter: quicker than object.__setattr__, the only other way in
    past the frozen classes' __setattr__."""
    setter: Callable[[Any, Any], None] = cls.__dict__[name].__set__
    return setter


_set_data = _slot_setter(_FrozenMapping, "_data")
_set_hash = _slot_setter(_FrozenMapping, "_hash")
_set_depth = _slot_setter(_FrozenMapping, "_depth")


#: Reads the ``_data`` slot without falling back on ``__getattr__`` when it is unset.
_data_of = _FrozenMapping._data.__get__  # type: ignore[attr-defined]


def _field(value: _FrozenMapping, name: str) -> Any:
    """Attribute access to a key; only called when normal lookup fails, so methods
    and slots win."""
    try:
        data = _data_of(value)
    except AttributeError:
        # A subclass whose __init__ never ran ImmutableState.__init__ (an attrs
        # class, say): reading ``value._data`` here would call this again.
        raise UninitializedStateError(type(value), name) from None
    try:
        return data[name]
    except KeyError:
        if name.startswith("__"):
            raise AttributeError(name) from None
        known = ", ".join(sorted(value._data)) or "none"
        kind = type(value).__name__
        raise AttributeError(f"{kind} has no field {name!r}; fields: {known}") from None


class _FieldFirst:
    """A mapping helper method that a field of the same name hides.

    A record with a field ``items`` should give that field for ``state.items``,
    not the ``Mapping.items`` method; the method stays reachable through the class
    (``ImmutableState.items(state)``) and ``state.to_dict().items()``.
    """

    __slots__ = ("_method", "_name")

    def __init__(self, method: Callable[..., Any]) -> None:
        self._method = method
        self._name = method.__name__

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self._method
        data = instance._data  # type: ignore[attr-defined]
        if self._name in data:
            return data[self._name]
        return self._method.__get__(instance, owner)


class FrozenDict(_FrozenMapping):
    """An immutable, hashable dict with str keys; what a dict becomes inside a state.

    It compares equal to a dict with the same items. ``copy()`` returns a plain,
    shallow ``dict`` you can change and store back, as
    ``types.MappingProxyType.copy`` does. Keys are readable as attributes too
    (``config.features.metrics``), with the same rules as `ImmutableState`.
    """

    __slots__ = ()

    keys = _FieldFirst(Mapping.keys)
    items = _FieldFirst(Mapping.items)
    values = _FieldFirst(Mapping.values)
    get = _FieldFirst(_FrozenMapping.get)

    def __init__(
        self, mapping: Mapping[str, Any] | Iterable[tuple[str, Any]] = (), /, **items: Any
    ) -> None:
        data = dict(_fields_of(mapping) if isinstance(mapping, Mapping) else mapping, **items)
        _set_data(self, _freeze_mapping(data, "", MAX_DEPTH - 1))
        _set_hash(self, None)
        _set_depth(self, None)

    def copy(self) -> dict[str, Any]:
        """Return a plain, shallow ``dict`` with the same items."""
        return dict(self._data)

    def __getattr__(self, name: str) -> Any:
        return _field(self, name)

    def __repr__(self) -> str:
        return f"FrozenDict({self._data!r})"


class FrozenList(Sequence[Any]):
    """An immutable, hashable list; what a list becomes inside a state.

    It compares equal to a list (and another FrozenList) with the same items, but
    not to a tuple, so that a tuple and a list stay different values. ``copy()``
    returns a plain ``list``.
    """

    __slots__ = ("_depth", "_hash", "_items")
    _items: tuple[Any, ...]
    _hash: int | None
    _depth: int | None

    def __init__(self, items: Iterable[Any] = (), /) -> None:
        room = MAX_DEPTH - 1
        frozen = tuple(_freeze(v, f"[{i}]", room) for i, v in enumerate(items))
        _set_items(self, frozen)
        _set_list_hash(self, None)
        _set_list_depth(self, None)

    @classmethod
    def _wrap(cls, items: tuple[Any, ...], depth: int | None = None) -> FrozenList:
        self = object.__new__(cls)
        _set_items(self, items)
        _set_list_hash(self, None)
        _set_list_depth(self, depth)
        return self

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> FrozenList: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return FrozenList._wrap(self._items[index])
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)

    def __contains__(self, value: object) -> bool:
        return value in self._items

    def __eq__(self, other: object) -> bool:
        if type(other) is FrozenList:
            return self._items == other._items
        if isinstance(other, list):
            return list(self._items) == other
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self) -> int:
        cached = self._hash
        if cached is None:
            cached = hash((FrozenList, self._items))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __add__(self, other: Iterable[Any]) -> FrozenList:
        if isinstance(other, (list, FrozenList)):
            room = MAX_DEPTH - 1
            added = tuple(_freeze(v, "", room) for v in other)
            # Keep the depth when it is known, so that a list grown one item
            # at a time is never walked again to find it.
            depth = self._depth
            if depth is None:
                depth = _depth_of(self)
            for item in added:
                if type(item) not in _SCALARS:
                    depth = max(depth, 1 + _depth_of(item))
            return FrozenList._wrap(self._items + added, depth)
        return NotImplemented

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise FrozenStateError("FrozenList", name)

    def __delattr__(self, name: str) -> NoReturn:
        raise FrozenStateError("FrozenList", name, operation="delete")

    def __setitem__(self, index: object, value: object) -> NoReturn:
        raise FrozenStateError("FrozenList", index)

    def __delitem__(self, index: object) -> NoReturn:
        raise FrozenStateError("FrozenList", index, operation="delete")

    def __copy__(self) -> FrozenList:
        return self

    def __deepcopy__(self, memo: object) -> FrozenList:
        return self

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return (FrozenList._wrap, (self._items,))

    def copy(self) -> list[Any]:
        """Return a plain, shallow ``list`` with the same items."""
        return list(self._items)

    def __repr__(self) -> str:
        return f"FrozenList({list(self._items)!r})"


_set_items = _slot_setter(FrozenList, "_items")
_set_list_hash = _slot_setter(FrozenList, "_hash")
_set_list_depth = _slot_setter(FrozenList, "_depth")
_FROZEN.add(FrozenList)
