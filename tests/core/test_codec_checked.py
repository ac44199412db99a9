"""encode_checked: the stores' fast encode for values built from checked parts."""

from __future__ import annotations

import datetime as dt
import enum
import zoneinfo
from collections.abc import Callable
from typing import Any

import pytest

from stateward.core import FrozenDict, ImmutableState, UnencodableValueError, decode, encode
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


# -- the stores' record shapes, part by part: accepted and refused as encode does ------------

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
PARIS = zoneinfo.ZoneInfo("Europe/Paris")


class Odd(dt.tzinfo):
    """A tzinfo the codec cannot store."""

    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(hours=1)

    def dst(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)


class SubDatetime(dt.datetime):
    pass


class Level(enum.IntEnum):
    HIGH = 3


RECORD_PARTS = [
    "plain",
    Colour.RED,
    "é-ü",
    "\ud800",  # a lone surrogate: UTF-8 cannot hold it
    Level.HIGH,
    True,
    2**64,
    -(2**63) - 1,
    T0,
    dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(0), "UTC")),
    dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(0), "Z")),
    dt.datetime(2026, 1, 1, tzinfo=zoneinfo.ZoneInfo("UTC")),
    dt.datetime(2026, 10, 25, 2, 30, tzinfo=PARIS, fold=1),
    dt.datetime(2026, 1, 1),
    dt.datetime(2026, 1, 1, tzinfo=Odd()),
    SubDatetime(2026, 1, 1, tzinfo=dt.UTC),
    ImmutableState(a=1),
    FrozenDict({"a": (1, 2)}),
]


def outcome(fn: Callable[[Any], bytes], value: Any) -> tuple[str, Any]:
    """What ``fn(value)`` gives: its bytes, or the type and message of its error."""
    try:
        return ("bytes", fn(value))
    except Exception as exc:
        return (type(exc).__qualname__, str(exc))


@pytest.mark.parametrize("part", RECORD_PARTS, ids=repr)
def test_encode_checked_accepts_and_refuses_what_encode_does(part: Any) -> None:
    for value in (
        ("m", "machine", 1, 1, ((1, "a", "b", None, part, ()), {}, [])),
        (part, "config", 2, 1, (2, ImmutableState(), ImmutableState(), ImmutableState(), T0)),
        ("c", "manager", 3, 1, (3, {"k": part}, ["gone"])),
    ):
        assert outcome(encode_checked, value) == outcome(encode, value)
