"""`quick_init`: the faster ``__init__`` of the records a transition makes keeps them
frozen dataclasses in every way, and refuses a class whose ``__init__`` it cannot reproduce;
`quick_maker`'s functions make the same values without ``__init__``."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import inspect
import pickle
from collections.abc import Callable
from typing import Any

import pytest

from stateward.core._history import EMPTY_HISTORY
from stateward.core._quick import quick_init, quick_maker
from stateward.core._snapshot import (
    EMPTY,
    MachineSnapshot,
    TransitionContext,
    new_context,
    new_snapshot,
)


def make_point(quick: bool) -> type:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Point:
        """A point."""

        x: int
        y: int = 0
        label: str = "p"

    return quick_init(Point) if quick else Point


def test_quick_init_keeps_the_dataclass_signature_and_errors() -> None:
    plain, quick = make_point(False), make_point(True)
    assert quick.__init__ is not plain.__init__
    assert inspect.signature(quick) == inspect.signature(plain)
    assert quick.__init__.__qualname__ == plain.__init__.__qualname__
    assert quick.__init__.__module__ == plain.__init__.__module__ == __name__
    assert quick.__init__.__doc__ == plain.__init__.__doc__
    bad_calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((), {}),
        ((1, 2, "a", 4), {}),
        ((1,), {"x": 2}),
        ((1,), {"nope": 2}),
    ]
    for args, kwargs in bad_calls:
        messages = []
        for cls in (plain, quick):
            with pytest.raises(TypeError) as info:
                cls(*args, **kwargs)
            messages.append(str(info.value))
        assert messages[0] == messages[1]


def test_quick_init_classes_keep_value_behaviour() -> None:
    quick = make_point(True)
    a = quick(1)
    assert (a.x, a.y, a.label) == (1, 0, "p")
    assert a == quick(x=1, y=0, label="p") == quick(1, label="p")
    assert hash(a) == hash(quick(1))
    assert a != quick(2)
    assert repr(a) == "make_point.<locals>.Point(x=1, y=0, label='p')"
    assert dataclasses.replace(a, y=5) == quick(1, 5)
    assert dataclasses.astuple(a) == (1, 0, "p")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.x = 2  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del a.x  # type: ignore[attr-defined]
    assert not hasattr(a, "__dict__")
    match a:
        case quick(x, y, label):  # type: ignore[misc]
            assert (x, y, label) == (1, 0, "p")
    assert copy.copy(a) == a
    assert copy.deepcopy(a) == a


def _plain() -> type:
    class Plain:
        x: int

    return Plain


def _unfrozen() -> type:
    @dataclasses.dataclass(slots=True)
    class Unfrozen:
        x: int

    return Unfrozen


def _unslotted() -> type:
    @dataclasses.dataclass(frozen=True)
    class Unslotted:
        x: int

    return Unslotted


def _post_init() -> type:
    @dataclasses.dataclass(frozen=True, slots=True)
    class PostInit:
        x: int

        def __post_init__(self) -> None:
            pass

    return PostInit


def _factory() -> type:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        x: tuple[int, ...] = dataclasses.field(default_factory=tuple)

    return Factory


def _not_in_init() -> type:
    @dataclasses.dataclass(frozen=True, slots=True)
    class NotInInit:
        x: int
        y: int = dataclasses.field(default=0, init=False)

    return NotInInit


def _keyword_only() -> type:
    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class KeywordOnly:
        x: int

    return KeywordOnly


def _init_var() -> type:
    @dataclasses.dataclass(frozen=True, slots=True)
    class WithInitVar:
        x: int
        scale: dataclasses.InitVar[int] = 1

    return WithInitVar


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_plain, "must be a frozen dataclass with slots=True"),
        (_unfrozen, "must be a frozen dataclass with slots=True"),
        (_unslotted, "must be a frozen dataclass with slots=True"),
        (_post_init, "no __post_init__"),
        (_factory, "use a default, not a default_factory"),
        (_not_in_init, "must take every field, in order"),
        (_keyword_only, "must take every field, in order"),
        (_init_var, "must take every field, in order"),
    ],
)
def test_quick_init_refuses_what_it_cannot_reproduce(
    make: Callable[[], type], message: str
) -> None:
    cls = make()
    before = cls.__dict__.get("__init__")
    with pytest.raises(TypeError, match=message):
        quick_init(cls)
    assert cls.__dict__.get("__init__") is before


def test_quick_maker_makes_the_same_frozen_value_as_the_class() -> None:
    cls = make_point(True)
    make = quick_maker(cls)
    made = make(1)
    assert type(made) is cls
    assert made == cls(1) and hash(made) == hash(cls(1))
    assert make(1, 2, "q") == cls(1, 2, "q")
    assert repr(make(3, 4)) == repr(cls(3, 4))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.x = 2  # type: ignore[attr-defined]
    assert not hasattr(made, "__dict__")
    assert dataclasses.replace(made, label="r") == cls(1, 0, "r")
    assert copy.deepcopy(made) == made
    with pytest.raises(TypeError):
        make(x=1)  # by position only: the hot path passes positions
    with pytest.raises(TypeError):
        make()


def test_quick_maker_works_for_plain_frozen_dataclasses_too() -> None:
    cls = make_point(False)  # no quick_init: the maker needs only the layout
    assert quick_maker(cls)(5, 6) == cls(5, 6)


def test_the_hot_path_makers_build_real_snapshots_and_contexts() -> None:
    at = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    snapshot = new_snapshot("a", 3, EMPTY, EMPTY_HISTORY)
    assert type(snapshot) is MachineSnapshot
    assert snapshot == MachineSnapshot("a", 3)
    assert (snapshot.chart, snapshot.timers) == (None, ())
    assert pickle.loads(pickle.dumps(snapshot)) == snapshot
    ctx = new_context("a", "b", None, EMPTY, EMPTY, 1, None, at)
    assert type(ctx) is TransitionContext
    assert ctx == TransitionContext("a", "b", None, EMPTY, EMPTY, 1, None, at)
    assert ctx.timer_requests == ()
    ctx.cancel_timer("t")  # the timer requests still accumulate on a made context
    assert [r.action for r in ctx.with_data(EMPTY).timer_requests] == ["cancel"]


def _subclass() -> type:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Base:
        x: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Derived(Base):
        y: int = 0

    return Derived


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_plain, "must be a frozen dataclass with slots=True"),
        (_unfrozen, "must be a frozen dataclass with slots=True"),
        (_post_init, "no __post_init__"),
        (_factory, "use a default, not a default_factory"),
        (_keyword_only, "must take every field, in order"),
        (_subclass, "must have no base class but object"),
    ],
)
def test_quick_maker_refuses_what_it_cannot_reproduce(
    make: Callable[[], type], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        quick_maker(make())
