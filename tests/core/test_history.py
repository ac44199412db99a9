"""History: the shared, bounded sequence of a snapshot's records."""

from __future__ import annotations

import copy
import datetime as dt
import pickle
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import TOGGLE

from stateward.core import (
    FrozenStateError,
    History,
    MachineBuilder,
    MachineCodec,
    MachineSnapshot,
    TransitionRecord,
    apply_transition,
    decode,
    encode,
)
from stateward.core._history import CHUNK, extend_history

T0 = dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.UTC)


def record(version: int) -> TransitionRecord:
    return TransitionRecord(version, "a", "b", None, T0, ())


@given(
    limit=st.integers(min_value=0, max_value=3 * CHUNK + 5),
    count=st.integers(min_value=0, max_value=5 * CHUNK),
)
def test_appending_keeps_the_last_limit_records_like_a_tuple(limit: int, count: int) -> None:
    history: History = History()
    model: tuple[TransitionRecord, ...] = ()
    for version in range(1, count + 1):
        history = history.appended(record(version).to_tuple(), limit)
        model = (*model, record(version))[-limit:] if limit else ()
        assert len(history) == len(model)
    assert tuple(history) == model
    assert history == model
    assert [history[i] for i in range(len(model))] == list(model)
    assert [history[-i] for i in range(1, len(model) + 1)] == [
        model[-i] for i in range(1, len(model) + 1)
    ]


def test_indexes_and_slices_like_a_tuple() -> None:
    model = tuple(record(v) for v in range(1, 2 * CHUNK + 7))
    history = History(model)
    rng = random.Random(6)
    for _ in range(200):
        a, b = rng.randrange(-80, 80), rng.randrange(-80, 80)
        step = rng.choice([1, 2, -1, 3])
        assert history[a:b:step] == model[a:b:step]
    with pytest.raises(IndexError):
        history[len(model)]
    with pytest.raises(IndexError):
        history[-len(model) - 1]
    assert history.index(model[40]) == 40
    assert list(reversed(history)) == list(reversed(model))
    assert model[3] in history


def test_snapshots_share_their_older_records() -> None:
    history = History(record(v) for v in range(1, 3 * CHUNK + 1))
    nxt = history.appended(record(3 * CHUNK + 1).to_tuple(), 10 * CHUNK)
    chunks, later = history._parts[0], nxt._parts[0]
    assert len(chunks) == 3 and len(later) == 3
    assert all(a is b for a, b in zip(later, chunks, strict=True))
    assert history == tuple(record(v) for v in range(1, 3 * CHUNK + 1))  # unchanged


def test_equality_hash_repr_pickle_and_copy() -> None:
    model = tuple(record(v) for v in range(1, 40))
    history = History(model)
    assert history == History(model) and model == history and history != model[:-1]
    assert hash(history) == hash(model)
    assert history != list(model)  # like a tuple: a list is another kind of value
    assert repr(history).startswith("History([TransitionRecord(version=1")
    for back in (pickle.loads(pickle.dumps(history)), copy.deepcopy(history)):
        assert type(back) is History and back == history


def test_is_frozen() -> None:
    history = History([record(1)])
    with pytest.raises(FrozenStateError):
        history._parts = ((), (), 0, 0)  # type: ignore[misc]
    with pytest.raises(FrozenStateError):
        del history._parts


def test_a_plain_sequence_is_taken_in() -> None:
    extended = extend_history((record(1), record(2), record(3)), record(4).to_tuple(), 2)
    assert type(extended) is History and extended == (record(3), record(4))
    assert list(extended.entries()) == [record(3).to_tuple(), record(4).to_tuple()]
    assert History.from_entries(extended.entries()) == extended
    assert extend_history([record(1)], record(2).to_tuple(), 0) == ()


def test_machine_history_over_a_long_run_and_through_the_codec() -> None:
    builder = MachineBuilder("a", TOGGLE)
    builder.history_limit = 70
    spec = builder.build()
    snap = MachineSnapshot.initial(spec)
    for i in range(500):
        snap = apply_transition(spec, snap, "b" if i % 2 == 0 else "a").snapshot
    assert [r.version for r in snap.history] == list(range(431, 501))
    codec = MachineCodec(spec)
    back = codec.from_document("m", decode(encode(codec.document(snap))))
    assert back == snap and type(back.history) is History
    assert back.history[-1].version == 500
    # A journal replay (delta, then apply) extends the history the same way.
    after = apply_transition(spec, snap, "b").snapshot
    replayed = codec.apply(back, decode(encode(codec.delta(snap, after))))
    assert replayed == after and type(replayed.history) is History
