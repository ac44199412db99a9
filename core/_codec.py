"""The msgpack codec for snapshots: ``encode(value) -> bytes`` and ``decode(bytes)``.

A payload is a small header followed by a msgpack body::

    b"SW" | schema version (1 byte) | CRC-32 of version and body (4 bytes, big-endian) | body

The header makes a stateward payload recognisable, the schema version lets a
newer format be refused instead of misread, and the checksum means a torn or
flipped payload is reported instead of decoded into wrong data.

Types that msgpack has no exact form for travel as extension types, so that a
tuple stays a tuple, a set a set, a datetime keeps its timezone and a nested
`ImmutableState` comes back as one. The extension type codes and the depth
scan that checks a body before it is unpacked are in ``_layout``.
"""

from __future__ import annotations

import datetime as _dt
import struct
import zlib
from typing import Any

import msgpack

from ._errors import DecodeError, SchemaVersionError
from ._frozen import FrozenDict, FrozenList, _depth_of, _freeze
from ._layout import (
    _EXT_BIGINT,
    _EXT_CONTAINERS,
    _EXT_DATETIME,
    _EXT_FROZENDICT,
    _EXT_FROZENLIST,
    _EXT_FROZENSET,
    _EXT_SET,
    _EXT_STATE,
    _EXT_TUPLE,
    _scan,
)
from ._state import ImmutableState
from ._storable import MAX_DEPTH, _check_key, _key_path, _too_deep
from ._zones import is_zone, zone

__all__ = ["SCHEMA_VERSION", "decode", "encode"]

SCHEMA_VERSION = 1
"""The payload format this code writes, and the newest it reads."""

_MAGIC = b"SW"
_HEADER = struct.Struct(">2sBI")

_TZ_NAIVE = 0
_TZ_FIXED = 1
_TZ_ZONE = 2


# Frozen values were checked on the way in; None, bool, float and bytes always
# encode. (A plain str is not here: it may hold a lone surrogate, which UTF-8 cannot.)
def _ext(code: int, data: bytes) -> msgpack.ExtType:
    """An ExtType, made directly: its own constructor re-checks both types in
    Python, which our callers already guarantee (an int code, bytes data)."""
    return _new_tuple(msgpack.ExtType, (code, data))


_new_tuple = tuple.__new__

_TRUSTED = frozenset({ImmutableState, FrozenDict, FrozenList, type(None), bool, float, bytes})

_FROZEN_CONTAINERS = frozenset({ImmutableState, FrozenDict, FrozenList})

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


#: Idle packers. A packer packs one value at a time, and ``_default`` packs
#: nested values while the outer one is still packing, so each call takes its
#: own from here (list.pop and list.append are atomic: threads share the pool
#: safely) and puts it back when done. Making a packer per call cost more than
#: the packing (msgpack's first buffer is 256 KiB; ours starts small).
_packers: list[msgpack.Packer] = []


def _pack(value: Any) -> bytes:
    try:
        packer = _packers.pop()
    except IndexError:
        packer = msgpack.Packer(
            default=_default, strict_types=True, use_bin_type=True, buf_size=1024
        )
    packed: bytes = packer.pack(value)  # on an error the packer is dropped, not reused
    if len(_packers) < _POOL_SIZE:
        _packers.append(packer)
    return packed


_POOL_SIZE = 64


_UTC = _dt.UTC
#: How UTC itself is written: a fixed offset of 0 with its default name (the
#: general branch below gives the same).
_UTC_FIELDS = (_TZ_FIXED, [0, None])


def _encode_datetime(value: _dt.datetime) -> list[Any]:
    fields: list[Any] = [
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        value.fold,
    ]
    tz = value.tzinfo
    if tz is None:
        fields += [_TZ_NAIVE, None]
    elif tz is _UTC:
        fields += _UTC_FIELDS
    elif type(tz) is _dt.timezone:
        offset = tz.utcoffset(None)
        name = tz.tzname(None)
        default_name = _dt.timezone(offset).tzname(None)
        fields += [
            _TZ_FIXED,
            [offset // _dt.timedelta(microseconds=1), None if name == default_name else name],
        ]
    elif is_zone(tz) and tz.key is not None:
        fields += [_TZ_ZONE, tz.key]
    else:
        raise TypeError(f"unsupported tzinfo {tz!r}")
    return fields


def _decode_datetime(fields: list[Any]) -> _dt.datetime:
    year, month, day, hour, minute, second, micro, fold, tz_kind, tz_data = fields
    tz: _dt.tzinfo | None
    if tz_kind == _TZ_NAIVE:
        tz = None
    elif tz_kind == _TZ_FIXED:
        micros, name = tz_data
        offset = _dt.timedelta(microseconds=micros)
        tz = _dt.timezone(offset) if name is None else _dt.timezone(offset, name)
    elif tz_kind == _TZ_ZONE:
        tz = zone(tz_data)
    else:
        raise ValueError(f"unknown timezone kind {tz_kind!r}")
    return _dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=tz, fold=fold)


def _default(value: Any) -> msgpack.ExtType:
    kind = type(value)
    if kind is ImmutableState:
        return _ext(_EXT_STATE, _pack(value._data))
    if kind is FrozenDict:
        return _ext(_EXT_FROZENDICT, _pack(value._data))
    if kind is FrozenList:
        return _ext(_EXT_FROZENLIST, _pack(list(value._items)))
    if kind is tuple:
        return _ext(_EXT_TUPLE, _pack(list(value)))
    if kind is set:
        return _ext(_EXT_SET, _pack(list(value)))
    if kind is frozenset:
        return _ext(_EXT_FROZENSET, _pack(list(value)))
    if kind is _dt.datetime:
        return _ext(_EXT_DATETIME, _pack(_encode_datetime(value)))
    if kind is int:  # out of msgpack's 64-bit range
        return _ext(_EXT_BIGINT, str(value).encode("ascii"))
    raise TypeError(f"cannot encode {kind.__qualname__}")


#: How deep a store's record may nest: a value of `MAX_DEPTH` levels, plus the
#: levels the stores wrap around it (the record tuple, a document or delta, a
#: config's list of entries; 4 at most today, 8 leaves room to grow).
RECORD_DEPTH = MAX_DEPTH + 8


def _prepare(value: Any, path: str, room: int) -> Any:
    """Check ``value`` and turn big ints and scalar subclasses into encodable forms.

    Plain containers keep their types (a list stays a list, a dict a dict), so
    that what is decoded has the types that were encoded. ``value`` may nest
    ``room`` containers deep (each one counts, whether msgpack or an ext type
    carries it).
    """
    kind = type(value)
    if kind is int:
        return (
            value
            if _INT_MIN <= value <= _INT_MAX
            else _ext(_EXT_BIGINT, str(value).encode("ascii"))
        )
    if kind in _PREPARED:
        if room < 1:
            raise _too_deep(path, kind, room)
        room -= 1
        if kind is dict:
            return _prepare_fields(value, path, room)
        if kind is list:
            return _prepare_items(value, path, room)
        if kind is tuple:
            return _ext(_EXT_TUPLE, _pack(_prepare_items(value, path, room)))
        if kind is set:
            return _ext(_EXT_SET, _pack(_prepare_items(value, path, room)))
        if kind is frozenset:
            return _ext(_EXT_FROZENSET, _pack(_prepare_items(value, path, room)))
        if kind is ImmutableState:
            return _ext(_EXT_STATE, _pack(_prepare_fields(value._data, path, room)))
        if kind is FrozenDict:
            return _ext(_EXT_FROZENDICT, _pack(_prepare_fields(value._data, path, room)))
        return _ext(_EXT_FROZENLIST, _pack(_prepare_items(value._items, path, room)))
    # Everything else must be a scalar (or a subclass) that freeze() accepts: it
    # raises the path-naming error otherwise, and normalises str/int subclasses.
    return _freeze(value, path, room)


_PREPARED = frozenset({dict, list, tuple, set, frozenset, ImmutableState, FrozenDict, FrozenList})


def _prepare_fields(value: Any, path: str, room: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        key = _check_key(key, path)
        out[key] = _prepare(item, _key_path(path, key), room)
    return out


def _prepare_items(value: Any, path: str, room: int) -> list[Any]:
    # Items of a tuple or set are listed under the container's own path.
    return [_prepare(v, f"{path}[{i}]", room) for i, v in enumerate(value)]


def encode(value: Any) -> bytes:
    """Encode a supported value into a self-describing, checksummed payload.

    Supported: None, bool, int (any size), float, str, bytes, datetime, list,
    tuple, dict with str keys, set, frozenset, `ImmutableState`, `FrozenDict`,
    `FrozenList`, nested in any way up to `MAX_DEPTH` containers deep.
    ``decode(encode(x)) == x`` and the types are the same.

    Raises:
        UnencodableValueError: something in ``value`` is not supported, or it
            nests too deep; the message names its path (``order.items[2]``) and type.
    """
    body = None
    kind = type(value)
    if kind in _TRUSTED and (
        kind not in _FROZEN_CONTAINERS or (value._depth or _depth_of(value)) <= MAX_DEPTH
    ):
        # Frozen values were checked on the way in (their depth is kept on
        # them): let msgpack walk them.
        try:
            body = _pack(value)
        except OverflowError:  # an int beyond 64 bits somewhere inside
            body = None
    if body is None:
        # Plain values: check every part (naming the path of a bad one) and
        # convert big ints and scalar subclasses on the way.
        body = _pack(_prepare(value, "", MAX_DEPTH))
    return _HEADER.pack(_MAGIC, SCHEMA_VERSION, _checksum(SCHEMA_VERSION, body)) + body


def encode_checked(value: Any) -> bytes:
    """`encode` for a value built only from parts that were checked already
    (the stores' records: names, versions, and values taken from frozen state).
    It packs them as they are; only if that fails does it check every part, as
    `encode` does, to name what is wrong. A record may nest `RECORD_DEPTH`
    levels (`decode_record` reads it back)."""
    try:
        body = _pack(value)
    except (OverflowError, TypeError, ValueError):
        body = None
    # Every level takes at least one byte of msgpack, so a short body cannot nest
    # too deep: most journal records are, and skip the walk.
    if body is None or (len(body) > RECORD_DEPTH and _depth_of(value) > RECORD_DEPTH):
        body = _pack(_prepare(value, "", RECORD_DEPTH))
    return _HEADER.pack(_MAGIC, SCHEMA_VERSION, _checksum(SCHEMA_VERSION, body)) + body


def _checksum(version: int, body: bytes) -> int:
    """CRC-32 over the schema version byte and the body: a flipped version bit is
    damage, not a newer format."""
    return zlib.crc32(body, zlib.crc32(bytes((version,))))


def _ext_hook(code: int, data: bytes) -> Any:
    return _from_ext(code, data, _unpack)


def _ext_hook_deep(code: int, data: bytes) -> Any:
    return _from_ext(code, data, _unpack_deep)


def _from_ext(code: int, data: bytes, unpack: Any) -> Any:
    if code == _EXT_BIGINT:
        return int(data.decode("ascii"))
    if code not in _EXT_CONTAINERS and code != _EXT_DATETIME:
        raise ValueError(f"unknown extension type {code}")
    inner = unpack(data)
    if code == _EXT_STATE:
        return ImmutableState._wrap(_as_frozen_fields(inner))
    if code == _EXT_FROZENDICT:
        return FrozenDict._wrap(_as_frozen_fields(inner))
    if type(inner) is not list:
        raise ValueError(f"expected an array inside extension type {code}")
    if code == _EXT_FROZENLIST:
        return FrozenList._wrap(tuple(_frozen(v) for v in inner))
    if code == _EXT_TUPLE:
        return tuple(inner)
    if code == _EXT_SET:
        return set(inner)
    if code == _EXT_FROZENSET:
        return frozenset(inner)
    return _decode_datetime(inner)


#: What decoding finds already frozen inside a state: kept as it is.
_FROZEN_KINDS = frozenset(
    {type(None), bool, int, float, str, bytes, _dt.datetime, ImmutableState, FrozenDict, FrozenList}
)


def _frozen(value: Any) -> Any:
    # The payload's depth was checked before unpacking, so no limit applies here
    # (a store's record nests deeper than a value may).
    return value if type(value) in _FROZEN_KINDS else _freeze(value, "", RECORD_DEPTH)


def _as_frozen_fields(inner: Any) -> dict[str, Any]:
    if type(inner) is not dict:
        raise ValueError(f"expected a map inside a state, found {type(inner).__qualname__}")
    return {key: _frozen(value) for key, value in inner.items()}


def _unpack(body: bytes) -> Any:
    return msgpack.unpackb(body, ext_hook=_ext_hook, raw=False, strict_map_key=True, use_list=True)


def _unpack_deep(body: bytes) -> Any:
    """`_unpack` for a payload with many ext levels, one inside the other.

    Each ext's body is unpacked by a nested call; ``unpackb`` keeps its parser
    (about 40 KB) on the C stack, so some tens of levels would overflow a
    thread's stack. An ``Unpacker`` keeps its parser on the heap.
    """
    unpacker = msgpack.Unpacker(
        ext_hook=_ext_hook_deep,
        raw=False,
        strict_map_key=True,
        use_list=True,
        max_buffer_size=max(len(body), 1),
    )
    unpacker.feed(body)
    return unpacker.unpack()


#: Up to this many ext levels, one inside the other, decode with ``unpackb``.
_SHALLOW_EXTS = 8


def decode(data: bytes | bytearray | memoryview) -> Any:
    """Decode a payload made by `encode`.

    A payload nesting more than `MAX_DEPTH` containers is refused before it is
    unpacked, counting them as `ImmutableState` does.

    Raises:
        DecodeError: ``data`` is not a stateward payload, is truncated, does
            not match its checksum, or nests too deep. Nothing is returned in
            that case.
        SchemaVersionError: the payload was written by a newer stateward.
        TypeError: ``data`` is not bytes-like.
    """
    return _decode(data, MAX_DEPTH)


def decode_record(data: bytes | bytearray | memoryview) -> Any:
    """`decode` for a store's record (see `encode_checked`): it may nest
    `RECORD_DEPTH` levels."""
    return _decode(data, RECORD_DEPTH)


def _decode(data: bytes | bytearray | memoryview, limit: int) -> Any:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decode() needs bytes, got {type(data).__qualname__}")
    data = bytes(data)
    if len(data) < _HEADER.size:
        if _MAGIC.startswith(data[:2]) and data:
            raise DecodeError(
                f"payload truncated: {len(data)} bytes, shorter than the {_HEADER.size}-byte header"
            )
        raise DecodeError(f"not a stateward payload ({len(data)} bytes, no header)")
    magic, version, checksum = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise DecodeError(f"not a stateward payload: starts with {data[:4]!r}, expected {_MAGIC!r}")
    body = data[_HEADER.size :]
    # The header (magic, version byte, CRC over version and body) is the one part
    # of the format that every schema version keeps, so the checksum is checked
    # first: only an intact payload can claim to be from a newer schema.
    if _checksum(version, body) != checksum:
        raise DecodeError(
            f"payload corrupt or truncated: checksum mismatch over {len(body)} body bytes"
        )
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(version, SCHEMA_VERSION)
    if version < 1:
        raise DecodeError(f"invalid schema version {version} in payload header")
    exts = _scan(body, limit)
    try:
        return (_unpack if exts <= _SHALLOW_EXTS else _unpack_deep)(body)
    except Exception as exc:  # msgpack raises several types for bad input
        raise DecodeError(f"payload body is not valid: {exc}") from exc
