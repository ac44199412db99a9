"""Equal twins: pairs of values that compare equal but are not the same value.

``True == 1``, ``1.0 == 1``, ``-0.0 == 0.0``, and two datetimes are equal when they
are the same instant in different timezones; a dict equals another with its keys in
another order. The codec keeps every one of these differences, so anything that
decides "unchanged" by ``==`` loses them. ``twins`` draws such pairs, nested in
the same containers on both sides (importable as ``twins`` from the tests).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from stateward.core import ImmutableState

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
UTC_PLUS_2 = dt.timezone(dt.timedelta(hours=2))

#: Hand-picked pairs, one of each kind of difference.
BASE_TWINS: list[tuple[Any, Any]] = [
    (1, True),
    (0, False),
    (1, 1.0),
    (True, 1.0),
    (0.0, -0.0),
    (0, -0.0),
    (
        dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 1, 14, tzinfo=UTC_PLUS_2),
    ),
    (
        dt.datetime(2026, 3, 1, 14, tzinfo=UTC_PLUS_2),
        dt.datetime(2026, 3, 1, 14, tzinfo=dt.timezone(dt.timedelta(hours=2), "EET")),
    ),
    (
        dt.datetime(2026, 7, 1, 12, tzinfo=PARIS),
        dt.datetime(2026, 7, 1, 12, tzinfo=UTC_PLUS_2),
    ),
    (frozenset({1, 2}), frozenset({True, 2})),
]

#: Equal dicts whose keys come in another order (the order is kept, and seen).
ORDER_TWINS: list[tuple[Any, Any]] = [({"a": 1, "b": 2}, {"b": 2, "a": 1})]

instants = st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2100, 1, 1)).map(
    lambda naive: naive.replace(tzinfo=dt.UTC)
)
offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).filter(bool)


def _moved(instant: dt.datetime, minutes: int) -> tuple[Any, Any]:
    """The same instant in UTC and at another offset."""
    return instant, instant.astimezone(dt.timezone(dt.timedelta(minutes=minutes)))


def _numbers(n: int) -> list[tuple[Any, Any]]:
    return [(n, float(n)), (float(n), n)]


value_twins = st.one_of(
    st.sampled_from(BASE_TWINS),
    st.builds(_moved, instants, offsets),
    st.integers(min_value=-(2**53), max_value=2**53).map(_numbers).flatmap(st.sampled_from),
)

#: Ways to put a value somewhere inside a container; applied to both twins alike.
WRAPS: list[Callable[[Any], Any]] = [
    lambda v: {"k": v},
    lambda v: {"first": 0, "k": v},
    lambda v: [v],
    lambda v: ["x", v],
    lambda v: (v,),
    lambda v: ImmutableState(k=v),
]


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


@st.composite
def twins(draw: st.DrawFn, *, orders: bool = True) -> tuple[Any, Any]:
    """A pair ``(a, b)`` with ``a == b`` whose types, signs, timezones or (with
    ``orders``) key order differ somewhere inside."""
    a, b = draw(st.one_of(value_twins, st.sampled_from(ORDER_TWINS)) if orders else value_twins)
    for wrap in draw(st.lists(st.sampled_from(WRAPS), max_size=3)):
        a, b = wrap(a), wrap(b)
    if draw(st.booleans()) and _hashable(a) and _hashable(b):
        a, b = frozenset([a]), frozenset([b])
    assert a == b
    return a, b
