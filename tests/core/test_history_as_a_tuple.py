"""A snapshot's `History` behaves exactly as the plain tuple it replaced.

Every way of building a snapshot (the transition drivers, the codec's
documents and deltas, pickle and copy) gives a history equal to, and hashing
like, the tuple the code used to keep.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime as dt
import pickle
from collections.abc import Sequence

import pytest
from support import TOGGLE, Ticks

from stateward.core import (
    History,
    ImmutableState,
    MachineBuilder,
    MachineCodec,
    MachineSnapshot,
    MachineSpec,
    TransitionRecord,
    apply_creation,
    apply_transition,
    apply_transition_async,
    decode,
    encode,
)

# Private, on purpose: CHUNK is where History's storage changes shape, so the
# lengths that matter are counted from it; EMPTY_HISTORY is the one shared
# empty value, and only its identity shows that it is shared.
from stateward.core._history import CHUNK, EMPTY_HISTORY

# Private, on purpose: transition_step is the actors' entry into the
# algorithm; a handle cannot start from a hand-built snapshot such as a
# history given as a list, so the step is called directly (as support.DRIVERS does).
from stateward.core._machine import transition_step

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


class Fixed:
    """A wall clock stopped at one time."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


def toggle_spec(limit: int) -> MachineSpec:
    builder = MachineBuilder("a", TOGGLE)
    builder.history_limit = limit
    return builder.build()


def record(version: int) -> TransitionRecord:
    source, target = ("a", "b") if version % 2 else ("b", "a")
    keys = ("k",) if version % 3 == 0 else ()
    return TransitionRecord(version, source, target, None, T0 + dt.timedelta(days=version), keys)


def model_after(
    history: Sequence[TransitionRecord], new: TransitionRecord, limit: int
) -> tuple[TransitionRecord, ...]:
    """What `_after` computed before History existed (a plain tuple)."""
    if limit > 1:
        return (*tuple(history)[1 - limit :], new)
    return (new,) if limit else ()


def check_same_as_tuple(snap: MachineSnapshot, model: tuple[TransitionRecord, ...]) -> None:
    history = snap.history
    assert type(history) is History
    assert tuple(history) == model and history == model and model == history
    assert len(history) == len(model) and list(history.entries()) == [r.to_tuple() for r in model]
    as_tuple = dataclasses.replace(snap, history=model)
    assert snap == as_tuple and as_tuple == snap
    assert hash(snap) == hash(as_tuple)
    if model:
        assert history[-1] == model[-1] and history[0] == model[0]
        assert history[-len(model)] == model[0]


STARTS = [0, 1, CHUNK - 1, CHUNK, 3 * CHUNK + 5]
LIMITS = [0, 1, 2, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 3]


@pytest.mark.parametrize("kind", ["tuple", "list", "History"])
@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize("limit", LIMITS)
def test_every_path_that_builds_a_snapshot_keeps_the_tuple_it_used_to(
    limit: int, start: int, kind: str
) -> None:
    spec = toggle_spec(limit)
    stored = tuple(record(v) for v in range(1, start + 1))
    given: Sequence[TransitionRecord] = {
        "tuple": stored,
        "list": list(stored),
        "History": History(stored),
    }[kind]
    state = "b" if start % 2 else "a"
    first = MachineSnapshot(state, start, ImmutableState(n=0), given)
    codec = MachineCodec(spec)
    loaded = codec.from_document("m", decode(encode(codec.document(first))))
    # As before, a stored history is taken as stored (even past the limit):
    # the next transition trims it.
    assert type(loaded.history) is History and tuple(loaded.history) == stored

    plain, stepped, awaited, replayed = first, first, first, loaded
    model: tuple[TransitionRecord, ...] = stored
    clock = Ticks(T0)
    for i in range(2 * CHUNK + 5):
        target = "a" if plain.state == "b" else "b"
        payload = {"x": i} if i % 4 == 0 else None
        at = clock()
        fixed = Fixed(at)
        outcome = apply_transition(spec, plain, target, payload=payload, clock=fixed)
        model = model_after(model, outcome.record, limit)
        check_same_as_tuple(outcome.snapshot, model)

        new, entry, _, _ = transition_step(
            spec, stepped, target, None, payload, at, None, lambda a: None
        )
        assert entry == outcome.record.to_tuple()
        check_same_as_tuple(new, model)

        later = asyncio.run(
            apply_transition_async(spec, awaited, target, payload=payload, clock=fixed)
        )
        assert later.record == outcome.record
        check_same_as_tuple(later.snapshot, model)

        delta = decode(encode(codec.delta(plain, outcome.snapshot)))
        replayed = codec.apply(replayed, delta)
        if limit:
            check_same_as_tuple(replayed, model)
        else:
            assert replayed.history == () and replayed == outcome.snapshot

        plain, stepped, awaited = outcome.snapshot, new, later.snapshot
        assert plain == stepped == awaited == replayed
        assert hash(plain) == hash(stepped) == hash(replayed)


def test_a_created_machine_starts_with_the_shared_empty_history() -> None:
    spec = toggle_spec(5)
    created = apply_creation(spec, clock=Ticks(T0)).snapshot
    assert created.history is EMPTY_HISTORY and created.history == ()
    assert created == MachineSnapshot("a", 0, ImmutableState(), ())
    assert hash(created) == hash(MachineSnapshot("a", 0, ImmutableState(), ()))
    assert MachineSnapshot.initial(spec) == created


def test_snapshots_pickle_and_copy_with_their_history_and_stay_equal() -> None:
    spec = toggle_spec(CHUNK + 2)
    snap = MachineSnapshot.initial(spec)
    clock = Ticks(T0)
    for i in range(3 * CHUNK):
        snap = apply_transition(spec, snap, "b" if i % 2 == 0 else "a", clock=clock).snapshot
    as_tuple = dataclasses.replace(snap, history=tuple(snap.history))
    for back in (
        pickle.loads(pickle.dumps(snap)),
        pickle.loads(pickle.dumps(snap, protocol=2)),
        copy.copy(snap),
        copy.deepcopy(snap),
    ):
        assert type(back.history) is History
        assert back == snap == as_tuple and hash(back) == hash(as_tuple)
        # The copy goes on like the original.
        nxt = apply_transition(spec, back, "b", clock=lambda: T0).snapshot
        assert nxt == apply_transition(spec, snap, "b", clock=lambda: T0).snapshot
    # A hand-built snapshot keeps the history it was given, as before.
    assert type(pickle.loads(pickle.dumps(as_tuple)).history) is tuple


@pytest.mark.parametrize("limit", LIMITS)
def test_newest_gives_the_last_records_of_every_shape_of_history(limit: int) -> None:
    history = EMPTY_HISTORY
    for version in range(1, 3 * CHUNK + 8):
        history = history.appended(record(version).to_tuple(), limit)
        entries = tuple(history.entries())
        for count in (0, 1, 2, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 1, len(entries) + 1):
            assert history.newest(count) == entries[max(0, len(entries) - count) :], count
