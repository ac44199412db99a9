"""encode_checked: the stores' fast encode for values built from checked parts."""

from __future__ import annotations

import datetime as dt
import enum

import pytest

from stateward.core import ImmutableState, UnencodableValueError, decode, encode
from stateward.core._codec import _packers, encode_checked

AT = dt.datetime(2026, 1, 2, 3, 4, 5, 6789, tzinfo=dt.UTC)
AT_PLUS_2 = AT.astimezone(dt.timezone(dt.timedelta(hours=2)))


class Colour(str, enum.Enum):
    RED = "red"


RECORDS = [
    ("m", "machine", 7, 1, ((7, "a", "b", None, AT, ("k",)), {"n": 1}, ["gone"])),
    ("c", "manager", 3, 1, (3, {"x": ImmutableState(a=[1, 2], b={"c": (1, 2)})}, [])),
    ("d", "config", 0, 1, ImmutableState(version=0, entries=[(0, {}, {}, {}, AT, (), None)])),
    ("big", "manager", 1, 1, (1, {"n": 2**70, "s": frozenset({1, 2})}, [])),
    (
        "z",
        "machine",
        1,
        1,
        ((1, "a", "b", "go", AT.astimezone(dt.timezone(dt.timedelta(hours=2))), ()), {}, []),
    ),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r[0])
def test_it_gives_what_encode_gives(record: tuple[object, ...]) -> None:
    assert encode_checked(record) == encode(record)
    assert decode(encode_checked(record)) == record


def test_a_part_it_cannot_pack_as_is_is_normalised_the_way_encode_does() -> None:
    record = ("m", "machine", 1, 1, ((1, Colour.RED, "b", None, AT, ()), {}, []))
    assert encode_checked(record) == encode(record)
    assert decode(encode_checked(record))[4][0][1] == "red"


def test_a_bad_part_is_named_as_encode_names_it() -> None:
    record = ("m", "machine", 1, 1, ((1, "a", "b", None, AT, ()), {"x": object()}, []))
    with pytest.raises(UnencodableValueError) as caught:
        encode_checked(record)
    with pytest.raises(UnencodableValueError) as expected:
        encode(record)
    assert str(caught.value) == str(expected.value)


def test_packers_are_reused_and_a_failed_one_is_dropped() -> None:
    encode({"a": (1, 2)})
    idle = len(_packers)
    assert idle >= 1
    encode({"a": (1, [2, (3, 4)])})  # nested: several packers at once, all given back
    assert len(_packers) >= idle
    with pytest.raises(UnencodableValueError):
        encode({"a": (1, object())})
    assert decode(encode({"after": (1, 2)})) == {"after": (1, 2)}
