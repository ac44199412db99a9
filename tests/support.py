"""Helpers shared by the tests (importable as ``support``)."""

from __future__ import annotations

import datetime as dt
import struct
import threading
import zoneinfo
from collections.abc import Callable
from typing import Any

from stateward.core import FrozenDict, FrozenList, ImmutableState


class Workers:
    """Start threads that are always joined, and re-raise what they raised."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()

    def start(self, target: Callable[..., Any], *args: Any, name: str | None = None) -> None:
        def run() -> None:
            try:
                target(*args)
            except BaseException as exc:  # re-raised in the test thread by join()
                with self._lock:
                    self._errors.append(exc)

        thread = threading.Thread(target=run, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def join(self, timeout: float = 30.0) -> None:
        for thread in self._threads:
            thread.join(timeout)
        alive = [t.name for t in self._threads if t.is_alive()]
        self._threads.clear()
        if self._errors:
            first = self._errors[0]
            raise AssertionError(
                f"{len(self._errors)} worker(s) failed; first: {first!r}"
            ) from first
        assert not alive, f"workers still running after {timeout}s: {alive}"


def assert_identical(a: Any, b: Any) -> None:
    """Equal, and of the same type all the way down (floats compared bit for bit)."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, float):
        assert struct.pack(">d", a) == struct.pack(">d", b)
    elif isinstance(a, (list, tuple, FrozenList)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_identical(x, y)
    elif isinstance(a, (dict, FrozenDict, ImmutableState)):
        assert list(a) == list(b)  # not a.keys(): a field named "keys" would hide it
        for key in a:
            assert_identical(a[key], b[key])
    elif isinstance(a, (set, frozenset)):
        assert a == b
        for x in a:
            (y,) = [y for y in b if y == x]
            assert_identical(x, y)
    elif isinstance(a, dt.datetime):
        assert a.replace(tzinfo=None, fold=0) == b.replace(tzinfo=None, fold=0)
        assert a.fold == b.fold
        assert type(a.tzinfo) is type(b.tzinfo)
        if isinstance(a.tzinfo, zoneinfo.ZoneInfo):
            assert a.tzinfo.key == b.tzinfo.key
        elif a.tzinfo is not None:
            assert a.tzinfo.utcoffset(None) == b.tzinfo.utcoffset(None)
            assert a.tzinfo.tzname(None) == b.tzinfo.tzname(None)
    else:
        assert a == b
