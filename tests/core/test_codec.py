"""encode/decode: exact round trips, a versioned header, and loud failures."""

from __future__ import annotations

import datetime as dt
import enum
import math
import pickle
import struct
import zlib
import zoneinfo
from typing import Any

import msgpack
import pytest
from support import assert_identical

from stateward.core import (
    SCHEMA_VERSION,
    DecodeError,
    FrozenDict,
    FrozenList,
    ImmutableState,
    SchemaVersionError,
    StatewardError,
    UnencodableValueError,
    decode,
    encode,
)

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
HEADER_SIZE = 7  # b"SW" | version byte | CRC-32 (4 bytes)


def round_trip(value: Any) -> Any:
    back = decode(encode(value))
    assert_identical(value, back)
    return back


def body_of(payload: bytes) -> bytes:
    return payload[HEADER_SIZE:]


def crc(version: int, body: bytes) -> int:
    """The header's checksum: CRC-32 over the version byte, then the body."""
    return zlib.crc32(body, zlib.crc32(bytes((version,))))


def with_body(body: bytes, version: int = SCHEMA_VERSION) -> bytes:
    """A payload with a correct header around ``body``."""
    return struct.pack(">2sBI", b"SW", version, crc(version, body)) + body


SAMPLE = ImmutableState(
    order={"id": 7, "items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}]},
    tags={"x", "y"},
    at=dt.datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=1),
    big=2**100,
    raw=b"\x00\xff",
    pair=(1, "two"),
)


# -- the header ------------------------------------------------------------------------


def test_a_payload_starts_with_magic_and_schema_version() -> None:
    payload = encode(SAMPLE)
    assert payload[:2] == b"SW"
    assert payload[2] == SCHEMA_VERSION == 1
    (checksum,) = struct.unpack(">I", payload[3:7])
    assert checksum == crc(SCHEMA_VERSION, body_of(payload))


def test_encoding_is_deterministic() -> None:
    assert encode(SAMPLE) == encode(SAMPLE)
    assert encode({"b": 1, "a": 2}) != encode({"a": 2, "b": 1})  # key order is kept


# -- exact round trips ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [None, True, False, 0, 1, -1, 2**63 - 1, 2**64 - 1, -(2**63), 1.5, -0.0, math.inf, -math.inf],
)
def test_scalars(value: object) -> None:
    round_trip(value)


@pytest.mark.parametrize("value", [2**64, 2**64 + 1, -(2**63) - 1, 10**40, -(10**40), 7**200])
def test_integers_beyond_64_bits(value: int) -> None:
    round_trip(value)
    round_trip([value, {"k": (value,)}])
    round_trip(ImmutableState(n=value, inside=[{value}]))


def test_float_precision_and_nan() -> None:
    round_trip(0.1 + 0.2)
    round_trip(5e-324)
    round_trip(1.7976931348623157e308)
    assert math.isnan(decode(encode(math.nan)))


@pytest.mark.parametrize("value", ["", "plain", "é ✓ 😀 \x00", b"", b"\x00\x01\xff", b"x" * 70000])
def test_text_and_bytes_are_distinct(value: str | bytes) -> None:
    round_trip(value)


@pytest.mark.parametrize(
    "when",
    [
        dt.datetime(2024, 5, 1, 12, 30, 15, 123456),
        dt.datetime(2024, 5, 1, 12, 30, fold=1),
        dt.datetime(1, 1, 1),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
        dt.datetime(2024, 5, 1, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
        dt.datetime(2024, 5, 1, tzinfo=dt.timezone(-dt.timedelta(hours=23, minutes=59))),
        dt.datetime(2024, 5, 1, tzinfo=dt.timezone(dt.timedelta(microseconds=1))),
        dt.datetime(2024, 5, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5), "EST")),
        dt.datetime(2024, 5, 1, tzinfo=dt.timezone(dt.timedelta(0), "Zulu")),
        dt.datetime(2024, 7, 1, 9, 0, tzinfo=PARIS),
        dt.datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=0),
        dt.datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=1),
    ],
    ids=repr,
)
def test_datetimes_keep_their_timezone_and_fold(when: dt.datetime) -> None:
    back = round_trip(when)
    assert back.utcoffset() == when.utcoffset()
    assert back.tzname() == when.tzname()


def test_a_named_fixed_offset_keeps_its_name() -> None:
    est = dt.timezone(dt.timedelta(hours=-5), "EST")
    back = decode(encode(dt.datetime(2024, 1, 1, tzinfo=est)))
    assert back.tzname() == "EST"
    assert back.tzinfo == est


def test_a_zoneinfo_zone_comes_back_as_that_zone() -> None:
    first = decode(encode(dt.datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=0)))
    second = decode(encode(dt.datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=1)))
    assert first.tzinfo is PARIS
    assert (first.fold, second.fold) == (0, 1)
    # The ambiguous hour: fold picks summer time (+2) or winter time (+1).
    assert first.utcoffset() == dt.timedelta(hours=2)
    assert second.utcoffset() == dt.timedelta(hours=1)


@pytest.mark.parametrize(
    "value",
    [
        [],
        (),
        {},
        set(),
        frozenset(),
        [1, [2, [3]]],
        (1, (2,), [3]),
        {"a": {"b": [1, (2,)]}},
        {1, "a", (2, 3), frozenset({4})},
        frozenset({"x", (1,)}),
        [{"set": {1}}, ({"frozen": frozenset({2})},)],
    ],
    ids=repr,
)
def test_containers_keep_their_types(value: object) -> None:
    round_trip(value)


def test_a_tuple_stays_a_tuple_and_a_list_a_list() -> None:
    back = decode(encode({"t": (1, 2), "l": [1, 2]}))
    assert type(back["t"]) is tuple
    assert type(back["l"]) is list


def test_frozen_values_come_back_frozen() -> None:
    back = round_trip(SAMPLE)
    assert type(back) is ImmutableState
    assert type(back.order) is FrozenDict
    assert type(back.order["items"]) is FrozenList
    assert type(back.order["items"][0]) is FrozenDict
    assert type(back.tags) is frozenset
    assert back.at.fold == 1
    round_trip(FrozenDict(a=[1], b=FrozenList([2])))
    round_trip(FrozenList([1, {"a": 2}, (3,)]))


def test_a_nested_state_comes_back_as_one() -> None:
    value = {"outer": ImmutableState(inner=ImmutableState(n=1), many=[ImmutableState()])}
    back = round_trip(value)
    assert type(back) is dict
    assert type(back["outer"]) is ImmutableState
    assert type(back["outer"].inner) is ImmutableState
    assert back["outer"].inner.n == 1
    assert type(back["outer"].many[0]) is ImmutableState


def test_decoded_states_are_immutable() -> None:
    back = decode(encode(SAMPLE))
    with pytest.raises(AttributeError):
        back.big = 1
    with pytest.raises(TypeError):
        back.order["id"] = 8


def test_decode_accepts_bytes_like_input() -> None:
    payload = encode(SAMPLE)
    assert decode(bytearray(payload)) == SAMPLE
    assert decode(memoryview(payload)) == SAMPLE


# -- encoding errors -----------------------------------------------------------------------


class Widget:
    pass


class Color(str, enum.Enum):
    RED = "red"


def test_an_unsupported_value_is_named_by_its_path() -> None:
    with pytest.raises(UnencodableValueError) as info:
        encode({"order": {"items": [1, 2, Widget()]}})
    assert info.value.path == "order.items[2]"
    assert info.value.value_type is Widget
    assert f"{__name__}.Widget cannot be stored" in str(info.value)


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ((1, Widget()), "[1]"),
        ([{"a": (0, [Widget()])}], "[0].a[1][0]"),
        ({"k": {dt.date(2024, 1, 1)}}, "k[0]"),
        (Widget(), ""),
    ],
)
def test_paths_of_unsupported_values(value: object, path: str) -> None:
    with pytest.raises(UnencodableValueError, match="cannot be stored") as info:
        encode(value)
    assert info.value.path == path


def test_unsupported_dict_keys_and_timezones_are_refused() -> None:
    with pytest.raises(UnencodableValueError, match=r"a\[1\]: dict keys must be str"):
        encode({"a": {1: "x"}})

    class Zone(dt.tzinfo):
        def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
            return dt.timedelta(0)

    with pytest.raises(UnencodableValueError, match=r"when: datetime with tzinfo"):
        encode({"when": dt.datetime(2024, 1, 1, tzinfo=Zone())})
    with pytest.raises(UnencodableValueError, match="not valid UTF-8"):
        encode("\ud800")
    with pytest.raises(UnencodableValueError, match="not valid UTF-8"):
        encode({"\udc00": 1})


def test_scalar_subclasses_are_encoded_as_the_plain_value() -> None:
    back = decode(encode({Color.RED: [Color.RED, True]}))
    assert back == {"red": ["red", True]}
    (key,) = back
    assert type(key) is str
    assert type(back["red"][0]) is str


# -- decoding errors -----------------------------------------------------------------------


def test_empty_and_garbage_input_is_refused() -> None:
    with pytest.raises(DecodeError, match=r"not a stateward payload \(0 bytes, no header\)"):
        decode(b"")
    with pytest.raises(DecodeError, match=r"not a stateward payload: starts with b'hell'"):
        decode(b"hello world, not a payload")
    with pytest.raises(DecodeError, match="not a stateward payload"):
        decode(b"\x00" * 32)
    with pytest.raises(DecodeError, match="not a stateward payload"):
        decode(msgpack.packb({"a": 1}))


def test_every_truncation_is_refused() -> None:
    payload = encode(SAMPLE)
    for length in range(len(payload)):
        with pytest.raises(DecodeError, match=r"truncated|not a stateward payload") as info:
            decode(payload[:length])
        assert isinstance(info.value, StatewardError)
    with pytest.raises(DecodeError, match=r"payload truncated: 3 bytes, shorter than the 7-byte"):
        decode(payload[:3])
    with pytest.raises(DecodeError, match="checksum mismatch"):
        decode(payload[:-1])


def test_every_single_bit_flip_is_refused() -> None:
    payload = encode(SAMPLE)
    for bit in range(len(payload) * 8):
        flipped = bytearray(payload)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(DecodeError):
            decode(bytes(flipped))


def test_trailing_bytes_are_refused() -> None:
    with pytest.raises(DecodeError, match="checksum mismatch"):
        decode(encode(SAMPLE) + b"\x00")


def test_a_newer_schema_version_is_refused() -> None:
    # An intact payload from a newer schema: its checksum covers its own version.
    payload = with_body(body_of(encode(SAMPLE)), SCHEMA_VERSION + 1)
    with pytest.raises(
        SchemaVersionError, match=r"schema version 2.*up to version 1.*upgrade"
    ) as info:
        decode(bytes(payload))
    err = info.value
    assert (err.found, err.supported) == (2, 1)
    assert isinstance(err, DecodeError)
    back = pickle.loads(pickle.dumps(err))
    assert (back.found, back.supported, str(back)) == (2, 1, str(err))


def test_schema_version_zero_is_invalid() -> None:
    payload = with_body(body_of(encode(1)), 0)
    with pytest.raises(DecodeError, match="invalid schema version 0"):
        decode(payload)


@pytest.mark.parametrize(
    "body",
    [
        b"\xc1",  # a byte msgpack never uses
        b"\x92\x01",  # an array of 2 with one item
        msgpack.packb(1) + msgpack.packb(2),  # extra data
        msgpack.packb(msgpack.ExtType(99, b"")),  # unknown extension
        msgpack.packb(msgpack.ExtType(4, msgpack.packb([1, 2]))),  # datetime with 2 fields
        msgpack.packb(msgpack.ExtType(5, msgpack.packb([1]))),  # a state that is not a map
        msgpack.packb({1: 2}),  # non-str map key
    ],
)
def test_a_well_framed_but_invalid_body_is_refused(body: bytes) -> None:
    with pytest.raises(DecodeError, match="payload body is not valid"):
        decode(with_body(body))


def test_a_correct_frame_is_what_makes_a_payload() -> None:
    assert decode(with_body(msgpack.packb([1, "a"]))) == [1, "a"]


@pytest.mark.parametrize("bad", ["SW\x01", None, 7, [83, 87, 1]])
def test_non_bytes_input_is_a_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match=r"decode\(\) needs bytes, got"):
        decode(bad)  # type: ignore[arg-type]


def test_decode_errors_survive_pickling() -> None:
    with pytest.raises(DecodeError) as info:
        decode(b"")
    back = pickle.loads(pickle.dumps(info.value))
    assert back.reason == info.value.reason
    assert str(back) == str(info.value)


def test_a_flipped_version_bit_is_damage_not_a_newer_schema() -> None:
    payload = bytearray(encode(SAMPLE))
    payload[2] ^= 0x08  # version 1 -> 9, checksum left as it was
    with pytest.raises(DecodeError, match="checksum mismatch") as caught:
        decode(bytes(payload))
    assert not isinstance(caught.value, SchemaVersionError)
