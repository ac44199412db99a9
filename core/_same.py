"""Exact sameness: whether two values are the same in every way the codec keeps."""

from __future__ import annotations

import datetime as _dt
import struct
from typing import Any

from ._frozen import FrozenList, _FrozenMapping
from ._zones import is_zone

__all__ = ["same"]


_DOUBLE = struct.Struct(">d")


def same(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are the same value in every way the codec keeps.

    Equality is not enough to decide that a value is unchanged: ``True == 1``,
    ``1.0 == 1``, ``-0.0 == 0.0``, and two datetimes are equal when they are
    the same instant in different timezones. This compares types all the way
    down, floats bit for bit, a datetime's wall time, fold and timezone, and
    the order of a mapping's keys. Use it wherever "unchanged" decides what is
    written or reported (journal deltas, config changes and diffs).
    """
    if a is b:
        return True
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is float:
        return _DOUBLE.pack(a) == _DOUBLE.pack(b)
    if kind is _dt.datetime:
        return (
            a.replace(tzinfo=None) == b.replace(tzinfo=None)
            and a.fold == b.fold
            and _tz_identity(a.tzinfo) == _tz_identity(b.tzinfo)
        )
    if isinstance(a, _FrozenMapping) or kind is dict:
        a_items = a._data.items() if isinstance(a, _FrozenMapping) else a.items()
        b_items = b._data.items() if isinstance(b, _FrozenMapping) else b.items()
        return len(a_items) == len(b_items) and all(
            ka == kb and same(va, vb) for (ka, va), (kb, vb) in zip(a_items, b_items, strict=True)
        )
    if kind is FrozenList or kind is tuple or kind is list:
        return len(a) == len(b) and all(map(same, a, b))
    if kind is frozenset or kind is set:
        if a != b:
            return False
        # Each item of ``a`` has exactly one equal item in ``b`` (a set cannot
        # hold two equal items); it must be the same one, not just an equal one.
        in_b = {item: item for item in b}
        return all(same(item, in_b[item]) for item in a)
    return bool(a == b)


def _tz_identity(tz: _dt.tzinfo | None) -> object:
    """What the codec keeps of a timezone: its offset and name, or its key."""
    if tz is None:
        return None
    if type(tz) is _dt.timezone:
        return (tz.utcoffset(None), tz.tzname(None))
    if is_zone(tz):
        return ("zone", tz.key)
    return tz
