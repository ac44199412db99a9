"""decode refuses a map whose key is not a str, as encode never writes one.

msgpack's unpacker (with ``strict_map_key``) lets bytes keys through, so a
payload with a valid checksum could decode into a dict, a `FrozenDict` or even
an `ImmutableState` with a bytes key: a value that `ImmutableState` refuses to
build, that `encode` refuses to write back, and whose ``repr`` raised
AttributeError. Such a payload is damaged or forged: it is refused with
`DecodeError`, whatever container the map sits in.
"""

from __future__ import annotations

import struct
import zlib

import msgpack
import pytest

from stateward.core import DecodeError, FrozenDict, ImmutableState, decode, encode

_STATE, _FROZENDICT, _TUPLE = 5, 6, 1


def payload(body: bytes) -> bytes:
    """``body`` behind a valid stateward header (magic, version 1, CRC-32)."""
    return struct.pack(">2sBI", b"SW", 1, zlib.crc32(body, zlib.crc32(bytes((1,))))) + body


def ext(code: int, inner: object) -> msgpack.ExtType:
    return msgpack.ExtType(code, msgpack.packb(inner, use_bin_type=True))


BYTES_KEY = {b"k": 1}

FORGED = {
    "plain map": BYTES_KEY,
    "map in a list": [1, BYTES_KEY],
    "second key": {"a": 1, b"k": 2},
    "map as a value": {"a": BYTES_KEY},
    "state": ext(_STATE, BYTES_KEY),
    "frozendict": ext(_FROZENDICT, BYTES_KEY),
    "state in a tuple": ext(_TUPLE, [ext(_STATE, BYTES_KEY)]),
}


@pytest.mark.parametrize("value", FORGED.values(), ids=FORGED.keys())
def test_a_map_with_a_bytes_key_is_refused(value: object) -> None:
    body = msgpack.packb(value, use_bin_type=True)
    with pytest.raises(DecodeError, match="key"):
        decode(payload(body))


def test_maps_with_str_keys_and_bytes_values_still_decode() -> None:
    value = {
        "a": {"b": b"k"},
        "s": ImmutableState(k=b"v", n={"x": 1}),
        "f": FrozenDict({"k": b""}),
        "e": {},
    }
    assert decode(encode(value)) == value
    body = msgpack.packb({"k": [b"k", {"j": 1}]}, use_bin_type=True)
    assert decode(payload(body)) == {"k": [b"k", {"j": 1}]}
