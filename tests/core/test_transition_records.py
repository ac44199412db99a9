"""The records of a transition (snapshot, context, outcome, history record) are
frozen dataclasses: keyword construction, equality, hashing, repr, replace, pickle,
copies, and an error on assignment."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from collections.abc import Callable
from typing import Any

import pytest
from support import T0

from stateward.core import (
    CreationOutcome,
    ImmutableState,
    MachineSnapshot,
    TransitionContext,
    TransitionOutcome,
    TransitionRecord,
)


def record() -> TransitionRecord:
    return TransitionRecord(1, "a", "b", "go", T0, ("p",))


def context() -> TransitionContext:
    return TransitionContext("a", "b", "go", ImmutableState(p=1), ImmutableState(d=0), 1, "m", T0)


def snapshot() -> MachineSnapshot:
    return MachineSnapshot("b", 1, ImmutableState(d=0), (record(),))


SAMPLES: dict[type, Callable[[], Any]] = {
    TransitionRecord: record,
    MachineSnapshot: snapshot,
    TransitionContext: context,
    TransitionOutcome: lambda: TransitionOutcome(
        MachineSnapshot("a"), snapshot(), record(), context(), ()
    ),
    CreationOutcome: lambda: CreationOutcome(MachineSnapshot("a"), context(), ()),
}


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_the_records_of_a_transition_are_still_frozen_dataclasses(cls: type) -> None:
    value = SAMPLES[cls]()
    names = [f.name for f in dataclasses.fields(cls)]
    assert list(inspect.signature(cls).parameters) == names
    assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"
    assert cls.__init__.__module__ == cls.__module__
    by_keyword = cls(**{name: getattr(value, name) for name in names})
    assert by_keyword == value
    assert hash(by_keyword) == hash(value)
    assert repr(by_keyword) == repr(value)
    assert repr(value).startswith(f"{cls.__name__}({names[0]}=")
    assert dataclasses.replace(value) == value
    assert pickle.loads(pickle.dumps(value)) == value
    assert copy.deepcopy(value) == value
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, names[0], None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(value, names[-1])
    with pytest.raises(TypeError, match="missing"):
        cls()


def test_record_and_snapshot_defaults() -> None:
    bare = MachineSnapshot("s")
    assert (bare.state, bare.version, bare.data, list(bare.history)) == ("s", 0, {}, [])
    assert isinstance(bare.data, ImmutableState)
    assert MachineSnapshot(state="s", version=3).version == 3
    assert TransitionRecord(1, "a", "b", None, T0).payload_keys == ()
    assert dataclasses.replace(MachineSnapshot("s"), state="t").state == "t"
    assert dataclasses.replace(record(), event=None).event is None
