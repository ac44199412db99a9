"""ImmutableState, FrozenDict, FrozenList, freeze and thaw."""

from __future__ import annotations

import copy
import datetime as dt
import enum
import operator
import pickle
import zoneinfo

import pytest

from stateward.core import (
    FrozenDict,
    FrozenList,
    FrozenStateError,
    ImmutableState,
    StatewardError,
    UnencodableValueError,
    UninitializedStateError,
    freeze,
    thaw,
)


class Widget:
    """A value stateward cannot store."""


class Color(str, enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class OddZone(dt.tzinfo):
    """A tzinfo that is neither datetime.timezone nor zoneinfo.ZoneInfo."""

    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(hours=1)

    def dst(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)

    def tzname(self, when: dt.datetime | None) -> str:
        return "ODD"


# -- construction and access ------------------------------------------------------------


def test_fields_from_keywords_a_mapping_or_both() -> None:
    assert ImmutableState(a=1, b=2) == ImmutableState({"a": 1, "b": 2})
    both = ImmutableState({"a": 1, "b": 2}, b=3)
    assert both.to_dict() == {"a": 1, "b": 3}
    assert ImmutableState() == ImmutableState({})
    assert len(ImmutableState()) == 0


def test_attribute_and_mapping_access() -> None:
    s = ImmutableState(user_id="user_123", status="active", count=0)
    assert s.count == 0
    assert s["count"] == 0
    assert s.user_id == "user_123"
    assert len(s) == 3
    assert list(s) == ["user_id", "status", "count"]
    assert "count" in s
    assert "missing" not in s
    assert s.get("missing", "dflt") == "dflt"
    assert dict(s.items()) == {"user_id": "user_123", "status": "active", "count": 0}


def test_missing_field_errors_list_the_fields() -> None:
    s = ImmutableState(a=1, b=2)
    with pytest.raises(AttributeError, match=r"no field 'nope'; fields: a, b"):
        _ = s.nope
    with pytest.raises(KeyError):
        _ = s["nope"]
    assert not hasattr(s, "__nope__")


def test_dir_lists_identifier_fields() -> None:
    s = ImmutableState({"count": 1, "not an identifier": 2})
    names = dir(s)
    assert "count" in names
    assert "update" in names
    assert "not an identifier" not in names


def test_a_field_named_items_is_read_as_the_field() -> None:
    order = ImmutableState(items=[1, 2], keys="k", values=(3,), get="g")
    assert order.items == FrozenList([1, 2])
    assert order.keys == "k"
    assert order.values == (3,)
    assert order.get == "g"
    # The mapping helpers stay reachable through the class.
    assert list(ImmutableState.keys(order)) == ["items", "keys", "values", "get"]
    # Without such a field, the helpers are the usual methods.
    plain = ImmutableState(a=1)
    assert list(plain.items()) == [("a", 1)]
    assert list(plain.keys()) == ["a"]
    assert list(plain.values()) == [1]
    assert plain.get("a") == 1


def test_methods_win_over_fields_of_the_same_name() -> None:
    s = ImmutableState({"update": 1, "to_dict": 2, "without": 3})
    assert callable(s.update)
    assert s["update"] == 1
    assert s["to_dict"] == 2
    assert s.update(update=5)["update"] == 5


def test_a_state_with_a_keys_field_can_be_copied_and_merged() -> None:
    # {**state} and dict(state) call state.keys(), which the field hides.
    source = ImmutableState(keys=["k1"], other=1)
    assert ImmutableState(source) == source
    assert ImmutableState(a=0).update(source).to_dict() == {"a": 0, "keys": ["k1"], "other": 1}
    assert FrozenDict(source) == {"keys": ["k1"], "other": 1}


# -- deep immutability ----------------------------------------------------------------------


def test_nested_containers_are_frozen_on_the_way_in() -> None:
    s = ImmutableState(
        d={"x": {"y": [1, {2, 3}]}},
        lst=[[1], {"k": "v"}],
        st={1, 2},
        fs=frozenset({"a"}),
        tup=(1, [2], {"z": 3}),
    )
    assert type(s.d) is FrozenDict
    assert type(s.d["x"]) is FrozenDict
    assert type(s.d["x"]["y"]) is FrozenList
    assert type(s.d["x"]["y"][1]) is frozenset
    assert type(s.lst) is FrozenList
    assert type(s.lst[0]) is FrozenList
    assert type(s.lst[1]) is FrozenDict
    assert type(s.st) is frozenset
    assert type(s.fs) is frozenset
    assert type(s.tup) is tuple
    assert type(s.tup[1]) is FrozenList
    assert type(s.tup[2]) is FrozenDict


def test_input_containers_are_copied_not_aliased() -> None:
    inner = [1, 2]
    source = {"inner": inner}
    s = ImmutableState(source=source)
    inner.append(3)
    source["new"] = [4]
    assert s.source.to_dict() == {"inner": [1, 2]}


def test_setting_an_attribute_raises_frozen_state_error() -> None:
    s = ImmutableState(count=0)
    with pytest.raises(FrozenStateError, match=r"cannot set 'count'; use \.update\(count=\.\.\.\)"):
        s.count = 1
    with pytest.raises(AttributeError):
        s.other = 1
    with pytest.raises(FrozenStateError, match="cannot delete 'count'"):
        del s.count
    assert s.count == 0
    assert issubclass(FrozenStateError, AttributeError)
    assert issubclass(FrozenStateError, StatewardError)


def test_item_assignment_raises_too() -> None:
    s = ImmutableState(count=0, nested={"a": [1]})
    with pytest.raises(FrozenStateError):
        s["count"] = 1
    with pytest.raises(TypeError):
        del s["count"]
    with pytest.raises(FrozenStateError, match=r"FrozenDict is immutable: cannot set 'a'.*to_dict"):
        s.nested["a"] = 2
    with pytest.raises(FrozenStateError):
        s.nested["a"][0] = 2
    with pytest.raises(FrozenStateError):
        del s.nested["a"][0]
    with pytest.raises(AttributeError):
        s.nested["a"].append(2)
    assert s.to_dict() == {"count": 0, "nested": {"a": [1]}}


def test_internals_cannot_be_replaced_or_deleted() -> None:
    s = ImmutableState(a=1)
    with pytest.raises(FrozenStateError):
        s._data = {}
    items = FrozenList([1])
    with pytest.raises(FrozenStateError):
        items._items = ()
    with pytest.raises(FrozenStateError, match="cannot delete '_items'"):
        del items._items
    fd = FrozenDict(a=1)
    with pytest.raises(FrozenStateError):
        del fd._data
    assert s == {"a": 1}
    assert items == [1]
    assert fd == {"a": 1}


# -- update, without ---------------------------------------------------------------------


def test_update_returns_a_new_state_and_leaves_the_original() -> None:
    old = ImmutableState(count=0, name="x")
    new = old.update(count=1, extra=[1])
    assert new is not old
    assert new.to_dict() == {"count": 1, "name": "x", "extra": [1]}
    assert old.to_dict() == {"count": 0, "name": "x"}
    assert old.update({"count": 2}, name="y").to_dict() == {"count": 2, "name": "y"}


def test_unchanged_values_are_shared_between_versions() -> None:
    old = ImmutableState(items=[{"sku": "a"}, {"sku": "b"}], meta={"k": "v"}, total=0)
    new = old.update(total=10)
    assert new.items is old.items
    assert new.meta is old.meta
    assert new.total == 10


def test_already_frozen_values_are_kept_not_copied() -> None:
    frozen = FrozenDict(a=[1, 2])
    s = ImmutableState(d=frozen)
    assert s.d is frozen
    assert freeze(frozen) is frozen
    t = (1, 2)
    assert ImmutableState(t=t).t == t


def test_update_with_a_bad_value_raises_and_changes_nothing() -> None:
    old = ImmutableState(count=0)
    with pytest.raises(UnencodableValueError, match=r"bad\.deep\[0\]"):
        old.update(count=1, bad={"deep": [Widget()]})
    assert old.to_dict() == {"count": 0}


def test_without_removes_keys_and_names_a_missing_one() -> None:
    s = ImmutableState(a=1, b=2, c=3)
    assert s.without("a", "c").to_dict() == {"b": 2}
    assert s.to_dict() == {"a": 1, "b": 2, "c": 3}
    assert s.without() == s
    with pytest.raises(KeyError, match="no field 'zz'; fields: a, b, c"):
        s.without("a", "zz")


# -- to_dict, thaw, copy -------------------------------------------------------------------


def test_to_dict_returns_plain_mutable_containers() -> None:
    s = ImmutableState(
        d={"x": [1, {"y": 2}]},
        tags={"a"},
        t=([1], 2),
        nested=ImmutableState(k=[3]),
    )
    plain = s.to_dict()
    assert plain == {
        "d": {"x": [1, {"y": 2}]},
        "tags": {"a"},
        "t": ([1], 2),
        "nested": {"k": [3]},
    }
    assert type(plain["d"]) is dict
    assert type(plain["d"]["x"]) is list
    assert type(plain["d"]["x"][1]) is dict
    assert type(plain["tags"]) is set
    assert type(plain["t"]) is tuple
    assert type(plain["t"][0]) is list
    assert type(plain["nested"]) is dict
    plain["d"]["x"].append(99)
    assert s.d["x"] == [1, {"y": 2}]


def test_thaw_and_freeze_are_inverse_for_dicts_and_lists() -> None:
    value = {"a": [1, {"b": (2, [3])}], "c": None}
    frozen = freeze(value)
    assert type(frozen) is FrozenDict
    assert thaw(frozen) == value
    assert type(thaw(frozen)["a"]) is list
    assert thaw(5) == 5
    assert thaw(frozenset({1})) == {1}
    assert type(thaw(frozenset({1}))) is set


def test_frozen_dict_copy_returns_a_plain_dict_to_change_and_store_back() -> None:
    # The user guide: features = config["features"].copy(); features["x"] = True
    config = ImmutableState(features={"auth": True, "beta": False})
    features = config["features"].copy()
    assert type(features) is dict
    features["beta"] = True
    features["dark_mode"] = True
    newer = config.update(features=features)
    assert newer.features == {"auth": True, "beta": True, "dark_mode": True}
    assert config.features == {"auth": True, "beta": False}


def test_copy_and_deepcopy_return_the_same_value() -> None:
    s = ImmutableState(a=[1])
    assert copy.copy(s) is s
    assert copy.deepcopy(s) is s
    assert copy.deepcopy(s.a) is s.a


def test_pickle_round_trip_keeps_types() -> None:
    s = ImmutableState(a=[1, {"b": {2}}], t=(1,), n=ImmutableState(x=1))
    back = pickle.loads(pickle.dumps(s))
    assert back == s
    assert type(back) is ImmutableState
    assert type(back.a) is FrozenList
    assert type(back.a[1]) is FrozenDict
    assert type(back.n) is ImmutableState


# -- equality, hashing, repr ---------------------------------------------------------------


def test_equality_and_hashing() -> None:
    a = ImmutableState(x=1, y=[1, 2], z={"k": {1}})
    b = ImmutableState(z={"k": {1}}, y=[1, 2], x=1)
    assert a == b
    assert hash(a) == hash(b)
    assert a != a.update(x=2)
    assert a == {"x": 1, "y": [1, 2], "z": {"k": {1}}}
    assert a != 1
    assert len({a, b, a.update(x=2)}) == 2
    assert {a: "found"}[b] == "found"


def test_a_list_and_a_tuple_are_different_values() -> None:
    assert ImmutableState(v=[1, 2]) != ImmutableState(v=(1, 2))
    assert FrozenList([1, 2]) != (1, 2)
    assert FrozenList([1, 2]) == [1, 2]


def test_repr_is_readable() -> None:
    s = ImmutableState(count=1, name="x", tags=[1], d={"k": 2})
    assert repr(s) == (
        "ImmutableState(count=1, name='x', tags=FrozenList([1]), d=FrozenDict({'k': 2}))"
    )
    assert repr(ImmutableState({"a b": 1})) == "ImmutableState({'a b': 1})"
    assert repr(ImmutableState()) == "ImmutableState()"


# -- what can be stored ----------------------------------------------------------------------


def test_an_unsupported_value_names_its_path_and_type() -> None:
    with pytest.raises(UnencodableValueError) as info:
        ImmutableState(order={"items": [1, 2, Widget()]})
    err = info.value
    assert err.path == "order.items[2]"
    assert err.value_type is Widget
    assert str(err).startswith(f"order.items[2]: {__name__}.Widget cannot be stored; supported:")
    assert isinstance(err, TypeError)
    assert isinstance(err, StatewardError)


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"top": Widget()}, "top"),
        ({"t": (1, (2, Widget()))}, r"t[1][1]"),
        ({"d": {"not ident": Widget()}}, "d['not ident']"),
        ({"not ident": Widget()}, "['not ident']"),
        ({"ok": [1], "l": [{"x": [0, Widget()]}]}, "l[0].x[1]"),
    ],
)
def test_paths_of_unsupported_values(fields: dict[str, object], path: str) -> None:
    with pytest.raises(UnencodableValueError, match=r"Widget cannot be stored") as info:
        ImmutableState(fields)
    assert info.value.path == path


def test_a_set_item_is_named_by_its_value() -> None:
    with pytest.raises(UnencodableValueError, match=r"datetime\.date cannot be stored") as info:
        ImmutableState(tags={1, dt.date(2024, 1, 2)})
    assert info.value.path == "tags{datetime.date(2024, 1, 2)}"


@pytest.mark.parametrize("bad", [1, (1, 2), None, b"red"])
def test_dict_keys_must_be_str(bad: object) -> None:
    with pytest.raises(UnencodableValueError, match="dict keys must be str") as info:
        ImmutableState(d={bad: "v"})
    assert info.value.path == f"d[{bad!r}]"


def test_str_subclass_enums_are_stored_as_plain_str() -> None:
    s = ImmutableState(color=Color.RED, level=Level.HIGH, d={Color.RED: [Color.RED]})
    assert type(s.color) is str
    assert s.color == "red"
    assert type(s.level) is int
    assert s.level == 3
    (key,) = s.d
    assert type(key) is str
    assert type(s.d["red"][0]) is str


def test_subclasses_of_frozen_mappings_are_stored_as_the_plain_type() -> None:
    class Custom(ImmutableState):
        __slots__ = ()

    s = ImmutableState(inner=Custom(a=1))
    assert type(s.inner) is ImmutableState
    assert s.inner == {"a": 1}


def test_frozen_values_are_shared_and_frozen_subclasses_stored_as_their_plain_type() -> None:
    class CustomDict(FrozenDict):
        __slots__ = ()

    class Custom(ImmutableState):
        __slots__ = ()

    inner, items, table = ImmutableState(a=1), FrozenList([1, [2]]), FrozenDict(b=[3])
    s = ImmutableState(inner=inner, items=items, table=table, mine=CustomDict(c=1))
    assert s.inner is inner and s.items is items and s.table is table
    assert type(s.mine) is FrozenDict and s.mine == {"c": 1}
    assert type(freeze(Custom(d=2))) is ImmutableState
    assert type(freeze(CustomDict(e=[4])).e) is FrozenList


def test_a_lone_surrogate_cannot_be_stored() -> None:
    with pytest.raises(UnencodableValueError, match="not valid UTF-8") as info:
        ImmutableState(d={"k": ["ok", "\ud800"]})
    assert info.value.path == "d.k[1]"
    with pytest.raises(UnencodableValueError, match="not valid UTF-8"):
        ImmutableState({"\udcff": 1})
    assert ImmutableState(s="é ✓ 😀").s == "é ✓ 😀"


def test_datetimes_naive_or_with_a_supported_tzinfo() -> None:
    naive = dt.datetime(2024, 5, 1, 12, 0)
    utc = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    paris = dt.datetime(2024, 5, 1, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
    s = ImmutableState(naive=naive, utc=utc, paris=paris)
    assert s.naive is naive
    assert s.utc is utc
    assert s.paris is paris


def test_a_datetime_with_another_tzinfo_is_rejected() -> None:
    when = dt.datetime(2024, 5, 1, tzinfo=OddZone())
    with pytest.raises(UnencodableValueError, match=r"at\[0\]: datetime with tzinfo .*OddZone"):
        ImmutableState(at=[when])
    with pytest.raises(UnencodableValueError, match=r"use datetime\.timezone or zoneinfo"):
        ImmutableState(when=when)


@pytest.mark.parametrize(
    "bad",
    [dt.date(2024, 1, 1), dt.timedelta(1), object(), 1j, bytearray(b"x"), Widget],
)
def test_other_types_are_rejected(bad: object) -> None:
    with pytest.raises(UnencodableValueError, match=rf"^v: .*{type(bad).__qualname__}"):
        ImmutableState(v=bad)


def test_a_tuple_subclass_is_rejected_with_a_fix() -> None:
    from collections import namedtuple

    Point = namedtuple("Point", "x y")
    with pytest.raises(UnencodableValueError, match=r"tuple subclass.*plain tuple"):
        ImmutableState(p=Point(1, 2))


def test_errors_about_values_survive_pickling() -> None:
    with pytest.raises(UnencodableValueError) as info:
        ImmutableState(order={"items": [1, 2, Widget()]})
    back = pickle.loads(pickle.dumps(info.value))
    assert type(back) is UnencodableValueError
    assert back.path == "order.items[2]"
    assert back.value_type is Widget
    assert str(back) == str(info.value)

    with pytest.raises(FrozenStateError) as frozen:
        ImmutableState(a=1).a = 2
    back_frozen = pickle.loads(pickle.dumps(frozen.value))
    assert (back_frozen.type_name, back_frozen.key) == ("ImmutableState", "a")
    assert str(back_frozen) == str(frozen.value)


# -- FrozenDict and FrozenList -------------------------------------------------------------------


def test_frozen_dict_behaves_as_a_read_only_dict() -> None:
    fd = FrozenDict({"a": [1]}, b=2)
    assert fd == {"a": [1], "b": 2}
    assert FrozenDict([("a", 1)]) == {"a": 1}
    assert type(fd["a"]) is FrozenList
    assert hash(fd) == hash(FrozenDict(b=2, a=[1]))
    assert fd.get("zz") is None
    assert list(fd.keys()) == ["a", "b"]
    assert repr(FrozenDict(a=1)) == "FrozenDict({'a': 1})"
    assert fd.a == [1] and fd.b == 2  # keys read as attributes, like ImmutableState's
    with pytest.raises(AttributeError, match="FrozenDict has no field 'zz'; fields: a, b"):
        _ = fd.zz
    with pytest.raises(UnencodableValueError, match=r"\[1\]: dict keys must be str"):
        FrozenDict({1: 2})


def test_frozen_list_behaves_as_a_read_only_list() -> None:
    fl = FrozenList([1, [2], {"k": 3}])
    assert fl == [1, [2], {"k": 3}]
    assert fl[0] == 1
    assert fl[-1] == {"k": 3}
    assert type(fl[1:]) is FrozenList
    assert fl[1:] == [[2], {"k": 3}]
    assert len(fl) == 3
    assert [2] in fl
    assert fl.index(1) == 0
    assert fl.count(1) == 1
    assert hash(fl) == hash(FrozenList([1, [2], {"k": 3}]))
    assert repr(FrozenList([1])) == "FrozenList([1])"

    copied = fl.copy()
    assert type(copied) is list
    copied.append(4)
    assert len(fl) == 3

    joined = operator.add(FrozenList([1]), [[2]])  # FrozenList.__add__, not unpacking
    assert type(joined) is FrozenList
    assert type(joined[1]) is FrozenList
    assert joined == [1, [2]]
    with pytest.raises(TypeError):
        operator.add(FrozenList([1]), (2,))


def test_frozen_list_checks_its_items() -> None:
    with pytest.raises(UnencodableValueError) as info:
        FrozenList([1, Widget()])
    assert info.value.path == "[1]"


# -- subclasses that never ran ImmutableState.__init__ -------------------------------------


class SkipsInit(ImmutableState):
    """Keeps its own slot and never calls ImmutableState.__init__."""

    __slots__ = ("own",)

    def __init__(self, own: int) -> None:
        object.__setattr__(self, "own", own)


class DictSkipsInit(FrozenDict):
    def __init__(self) -> None:
        pass


def test_a_subclass_that_skips_init_gives_a_clear_error_not_endless_recursion() -> None:
    state = SkipsInit(1)
    assert state.own == 1  # its own slot works
    assert not hasattr(state, "missing")  # once recursed until RecursionError
    with pytest.raises(UninitializedStateError) as caught:
        state.missing  # noqa: B018 - the attribute access is what is tested
    error = caught.value
    assert isinstance(error, AttributeError)
    assert isinstance(error, StatewardError)
    assert error.name == "missing"
    assert "SkipsInit" in str(error)
    assert "super().__init__" in str(error)
    for use in (operator.itemgetter("own"), len, repr, hash, ImmutableState, freeze):
        with pytest.raises(UninitializedStateError):
            use(state)
    assert not hasattr(DictSkipsInit(), "missing")
    with pytest.raises(UninitializedStateError, match=r"FrozenDict\.__init__"):
        DictSkipsInit()["k"]


def test_an_attrs_frozen_subclass_gives_a_clear_error() -> None:
    attrs = pytest.importorskip("attrs", reason="attrs is not installed")

    @attrs.define(frozen=True, slots=True)
    class Order(ImmutableState):
        number: int

    order = Order(7)
    assert order.number == 7
    assert not hasattr(order, "missing")
    with pytest.raises(UninitializedStateError):
        order["number"]
