"""Properties that hold for any value or any machine definition (hypothesis)."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import assert_identical

from stateward.core import (
    Event,
    FrozenDict,
    FrozenList,
    ImmutableState,
    InvalidTransition,
    MachineSnapshot,
    MachineSpec,
    apply_transition,
    decode,
    encode,
    freeze,
    thaw,
)

# Moderate, fast and free of side effects: no example database in the repository.
FAST = settings(max_examples=40, deadline=None, database=None)


# -- strategies -------------------------------------------------------------------------------

keys = st.text(max_size=6)
hashable_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # unbounded: beyond 64 bits too
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=8),
)
offsets = st.timedeltas(
    min_value=-dt.timedelta(hours=23, minutes=59), max_value=dt.timedelta(hours=23, minutes=59)
)
timezones = st.one_of(
    st.none(),
    st.builds(dt.timezone, offsets),
    st.builds(dt.timezone, offsets, st.text(min_size=1, max_size=5)),
    st.timezones(),
)
scalars = st.one_of(hashable_scalars, st.datetimes(timezones=timezones))


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    lists = st.lists(children, max_size=4)
    dicts = st.dictionaries(keys, children, max_size=4)
    return st.one_of(
        lists,
        lists.map(tuple),
        dicts,
        st.sets(hashable_scalars, max_size=4),
        st.frozensets(hashable_scalars, max_size=4),
        dicts.map(ImmutableState),
        dicts.map(FrozenDict),
        lists.map(FrozenList),
    )


values = st.recursive(scalars, containers, max_leaves=8)
fields = st.dictionaries(keys, values, max_size=5)


# -- values ---------------------------------------------------------------------------------


@FAST
@given(base=fields, changes=fields)
def test_update_never_changes_the_original(base: dict[str, Any], changes: dict[str, Any]) -> None:
    state = ImmutableState(base)
    before = encode(state)
    new = state.update(changes)
    assert encode(state) == before
    assert_identical(decode(before), state)
    assert new.to_dict() == {**state.to_dict(), **thaw(freeze(changes))}
    for key in state:
        if key not in changes:
            assert new[key] is state[key]


@FAST
@given(values)
def test_decode_encode_is_the_identity_with_types(value: Any) -> None:
    assert_identical(decode(encode(value)), value)


@FAST
@given(fields)
def test_a_state_round_trips_and_hashes_like_its_equal(data: dict[str, Any]) -> None:
    state = ImmutableState(data)
    back = decode(encode(state))
    assert_identical(back, state)
    assert back == state
    assert hash(back) == hash(state)
    assert ImmutableState(dict(reversed(list(data.items())))) == state


json_like = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text()),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=8,
)


@FAST
@given(st.dictionaries(keys, json_like, max_size=5))
def test_to_dict_gives_back_plain_input(data: dict[str, Any]) -> None:
    assert_identical(ImmutableState(data).to_dict(), data)


# -- a random walk over a random machine -------------------------------------------------------

state_names = st.lists(
    st.text(alphabet="abcde", min_size=1, max_size=2), min_size=1, max_size=6, unique=True
)
GHOST = "zz"  # never a state: the alphabet above has no "z"


@settings(max_examples=50, deadline=None, database=None)
@given(st.data())
def test_a_random_walk_only_reaches_allowed_states(data: st.DataObject) -> None:
    states = data.draw(state_names, label="states")
    edges = {
        s: data.draw(st.lists(st.sampled_from(states), unique=True), label=f"edges from {s}")
        for s in states
    }
    events = [
        Event(
            f"ev{i}",
            frozenset(data.draw(st.lists(st.sampled_from(states), min_size=1, unique=True))),
            data.draw(st.sampled_from(states)),
        )
        for i in range(data.draw(st.integers(0, 3), label="number of events"))
    ]
    initial = data.draw(st.sampled_from(states), label="initial")
    limit = data.draw(st.integers(0, 4), label="history_limit")
    spec = MachineSpec(initial, edges, events=events, history_limit=limit)

    allowed = {s: set(edges[s]) | {ev.target for ev in events if s in ev.sources} for s in states}
    snap = MachineSnapshot.initial(spec)
    reached = [snap.state]
    for _ in range(data.draw(st.integers(1, 15), label="steps")):
        source = snap.state
        by_event = events and data.draw(st.booleans())
        if by_event:
            ev = data.draw(st.sampled_from(events))
            ok = source in ev.sources
            kwargs: dict[str, Any] = {"event": ev.name}
            target = ev.target
        else:
            target = data.draw(st.sampled_from([*states, GHOST]))
            # A move by target is the event that makes it; when several events
            # make it, the caller must name one.
            makers = [ev for ev in events if source in ev.sources and ev.target == target]
            ok = target in allowed[source] and len(makers) <= 1
            kwargs = {"target": target}
        assert spec.allows(source, target) == (target in allowed[source])
        if ok:
            new = apply_transition(spec, snap, **kwargs).snapshot
            assert new.state == target
            assert new.version == snap.version + 1
            snap = new
            reached.append(target)
        else:
            with pytest.raises(InvalidTransition) as info:
                apply_transition(spec, snap, **kwargs)
            assert info.value.state == source
            assert info.value.allowed == tuple(sorted(allowed[source]))
            assert snap.state == source

    assert set(reached) <= set(states)
    for a, b in itertools.pairwise(reached):
        assert b in allowed[a]
    assert len(snap.history) == min(limit, snap.version)
    for record in snap.history:
        assert record.to_state in allowed[record.from_state]
    assert [r.version for r in snap.history] == list(
        range(snap.version - len(snap.history) + 1, snap.version + 1)
    )
