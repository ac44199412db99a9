"""The codec's pool of msgpack packers, shared by threads: every thread gets
exactly the bytes a single thread gets, and a packer whose pack raised midway
never goes back to the pool.

Only the private pool (`_codec._packers`, `_POOL_SIZE`) can show which packer
was used and whether a failed one was given back; the public `encode` is
checked alongside it. Every wait is bounded, threads are joined and their
errors re-raised (`support.Workers`), seeds are fixed.
"""

from __future__ import annotations

import datetime as dt
import enum
import random
import threading
import zoneinfo
from collections.abc import Iterator
from typing import Any, ClassVar

import msgpack
import pytest
from support import Workers

from stateward.core import (
    FrozenDict,
    FrozenList,
    ImmutableState,
    UnencodableValueError,
    _codec,
    decode,
    encode,
)

WAIT = 20.0
SEED = 20261122
T0 = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


class Colour(str, enum.Enum):
    RED = "red"


PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def sample_values() -> list[Any]:
    at = dt.datetime(2026, 10, 25, 2, 30, tzinfo=PARIS, fold=1)
    return [
        {"a": (1, [2, (3, 4)]), "b": {"c": frozenset({1, 2})}},
        ImmutableState(n=2**70, l=[1, (2, 3)], d={"x": {"y": [at]}}, s={4, 5}, t=T0, b=b"\x00\xff"),
        (T0, at, dt.datetime(2026, 1, 1), T0.astimezone(dt.timezone(dt.timedelta(hours=-3)))),
        [ImmutableState(i=i, sub=ImmutableState(j=(i, str(i)))) for i in range(20)],
        FrozenList([FrozenDict({"k": (1, 2)}), -(2**63) - 1, 2**64]),
        ("record", "machine", 7, 1, ((7, "a", "b", None, T0, ("k",)), {"n": 1}, ["gone"])),
        {"enum": Colour.RED, "big": -(2**80), "nested": [[[[(1,)]]]]},
        "x" * 5000,
    ]


#: Values that fail deep inside, after the outer packer wrote part of its output.
FAILING = [
    ("ok", [1, 2, (3, object())]),
    {"a": ImmutableState(n=1), "b": [(1, {"c": {5}})], "z": [1, {"k": object()}]},
]


class TrackingPacker:
    """Wraps a real msgpack Packer: fails the test if a packer is used by two
    packs at once (shared between threads, or reentered), or used again after
    a pack that raised (it may hold part of that value)."""

    real = msgpack.Packer
    made: ClassVar[list[TrackingPacker]] = []
    faults: ClassVar[list[str]] = []

    def __init__(self, **options: Any) -> None:
        self._packer = self.real(**options)
        self.failed = False
        self.busy = False
        TrackingPacker.made.append(self)

    def pack(self, value: Any) -> bytes:
        if self.failed:
            TrackingPacker.faults.append("a packer whose pack() raised was used again")
        if self.busy:
            TrackingPacker.faults.append("a packer was used by two packs at once")
        self.busy = True
        try:
            packed: bytes = self._packer.pack(value)
        except BaseException:
            self.failed = True
            raise
        finally:
            self.busy = False
        return packed


@pytest.fixture
def tracked_packers(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[TrackingPacker]]:
    monkeypatch.setattr(_codec, "_packers", [])  # so every packer in use is tracked
    monkeypatch.setattr(msgpack, "Packer", TrackingPacker)
    TrackingPacker.made, TrackingPacker.faults = [], []
    yield TrackingPacker
    assert TrackingPacker.faults == []


def test_threads_encoding_at_once_get_exactly_the_single_threaded_bytes(
    tracked_packers: type[TrackingPacker], tiny_switch_interval: None
) -> None:
    values = sample_values()
    expected = [(encode(v), _codec.encode_checked(v)) for v in values]
    for plain, checked in expected:
        assert plain == checked
    errors = {}
    for i, bad in enumerate(FAILING):
        with pytest.raises(UnencodableValueError) as caught:
            encode(bad)
        errors[i] = str(caught.value)
    threads, rounds = 8, 150
    barrier = threading.Barrier(threads)

    def run(seed: int) -> None:
        rng = random.Random(seed)
        barrier.wait(WAIT)
        for _ in range(rounds):
            if rng.random() < 0.2:
                i = rng.randrange(len(FAILING))
                fn = encode if rng.random() < 0.5 else _codec.encode_checked
                with pytest.raises(UnencodableValueError) as caught:
                    fn(FAILING[i])
                assert str(caught.value) == errors[i]
            else:
                i = rng.randrange(len(values))
                plain, checked = expected[i]
                assert encode(values[i]) == plain
                assert _codec.encode_checked(values[i]) == checked

    workers = Workers()
    for n in range(threads):
        workers.start(run, SEED + n, name=f"encoder-{n}")
    workers.join(WAIT * 3)
    assert tracked_packers.faults == []
    assert any(p.failed for p in tracked_packers.made)  # failures did happen midway
    assert all(not p.failed for p in _codec._packers)  # and none went back to the pool
    assert len(_codec._packers) <= _codec._POOL_SIZE + threads
    for value, (plain, _) in zip(values, expected, strict=True):
        assert encode(value) == plain and decode(plain) == value


def test_a_value_that_fails_midway_leaves_no_trace_in_later_payloads(
    tracked_packers: type[TrackingPacker],
) -> None:
    values = sample_values()
    expected = [encode(v) for v in values]
    for _ in range(5):
        for bad in FAILING:
            for fn in (encode, _codec.encode_checked):
                with pytest.raises(UnencodableValueError):
                    fn(bad)
            assert [encode(v) for v in values] == expected
    assert all(not p.failed for p in _codec._packers)
