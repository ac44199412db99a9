"""Which definition a machine uses: the ways a `StateMachine` can be defined
(a plain mapping, a `MachineSpec`, a `MachineBuilder`) read into one spec,
shared with every machine defined the same way."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stateward.core import MachineBuilder, MachineSnapshot, MachineSpec
from stateward.core._persist import MachineCodec


class Shared:
    """What every machine of one definition shares: the spec, its codec, and
    the snapshot a machine of it starts from (when created without data)."""

    __slots__ = ("codec", "initial", "source", "spec")

    def __init__(self, spec: MachineSpec, source: object = None) -> None:
        self.spec = spec
        self.codec = MachineCodec(spec)
        self.initial = MachineSnapshot.initial(spec)
        #: The spec or builder it was made from, when keyed by its identity.
        self.source = source


#: The definitions in use, by a hashable form of how they were given: the
#: canonical form of a plain definition or of a builder's content, or a spec
#: itself (by identity). So a machine costs its own state only: creating the
#: 100,000th machine of a definition builds no spec. Cleared when it grows
#: past `_SHARED_MAX` (a program that makes definitions on the fly builds
#: them again, no more).
_shared: dict[Any, Shared] = {}
_SHARED_MAX = 1024


class _Unshared(Exception):
    """A definition part that is not read into a shared definition."""


def _frozen(part: Any) -> Any:
    """A hashable copy of a definition's part: a ``{state: [targets]}`` or
    ``{event: "a -> b"}`` dict, a list of events, a str or None. Raises
    `_Unshared` for a part in another container (a one-shot iterable, a
    custom mapping), whose reading could differ from the spec's own: that
    definition is then built for the machine alone, as given. (An unhashable
    value inside shows when the key is hashed.)"""
    if part is None or type(part) is str:
        return part
    if type(part) is dict:
        items = []
        for key, value in part.items():
            kind = type(value)
            if kind is list or kind is tuple:
                value = ("items", tuple(value))
            elif not (kind is str or value is None) and isinstance(value, Iterable):
                raise _Unshared
            items.append((key, value))
        return ("mapping", tuple(items))
    if type(part) is list or type(part) is tuple:
        return ("items", tuple(part))
    raise _Unshared


def _thawed(part: Any) -> Any:
    """`_frozen`'s input again (lists as tuples)."""
    if type(part) is not tuple:
        return part
    if part[0] == "mapping":
        return {key: _thawed(value) for key, value in part[1]}
    return part[1]


def _remember(key: Any, spec: MachineSpec, source: object = None) -> Shared:
    shared = Shared(spec, source)
    if len(_shared) >= _SHARED_MAX:
        _shared.clear()
    _shared[key] = shared
    return shared


def _plain(
    initial_state: Any, transitions: Any, events: Any, history_limit: int
) -> MachineSpec | Shared:
    """The definition shared by the machines defined the same plain way."""
    global _last
    last = _last
    if (
        last is not None
        and transitions is last[0]
        and events is last[1]
        and initial_state == last[2]
        and history_limit == last[3]
        and transitions == last[4]
        and events == last[5]
    ):
        same: Shared = last[6]  # the same objects as last time, with the same content
        return same
    try:
        key = (initial_state, _frozen(transitions), _frozen(events), history_limit)
        shared = _shared.get(key)
    except (_Unshared, TypeError):  # TypeError: an unhashable value in it
        return MachineSpec(initial_state, transitions, events=events, history_limit=history_limit)
    if shared is None:
        spec = MachineSpec(
            initial_state,
            _thawed(key[1]),
            events=_thawed(key[2]),
            history_limit=history_limit,
        )
        shared = _remember(key, spec)
    _last = (
        transitions,
        events,
        initial_state,
        history_limit,
        _copy(transitions),
        _copy(events),
        shared,
    )
    return shared


#: The plain definition read last: its transitions and events objects, a copy
#: of their content (compared in C, it tells whether they changed since), and
#: what they were read into. Machines are mostly made in a row from one
#: definition; this spares reading it again for each.
_last: tuple[Any, ...] | None = None


def _copy(part: Any) -> Any:
    """A copy of a dict or list part that compares equal to it (==) while
    its content stays the same."""
    if type(part) is dict:
        return {key: list(value) if type(value) is list else value for key, value in part.items()}
    if type(part) is list:
        return list(part)
    return part


def _of_spec(spec: MachineSpec) -> Shared:
    """The codec and initial snapshot of a spec passed in, shared by identity."""
    key = ("spec", id(spec))
    shared = _shared.get(key)
    if shared is None or shared.source is not spec:  # an id reused after a clear
        shared = _remember(key, spec, spec)
    return shared


def _of_builder(builder: MachineBuilder) -> MachineSpec | Shared:
    """The spec built from ``builder`` as it is now, shared with the machines
    made from it before as long as its content has not changed since."""
    try:
        key = (
            "builder",
            id(builder),
            builder.initial,
            _frozen(builder.transitions),
            _frozen(builder.events),
            _frozen(builder.states),
            builder.history_limit,
            builder.name,
            tuple(builder._hooks),
            tuple(builder._effects.items()),
            tuple(builder._extra_events),
        )
        shared = _shared.get(key)
    except (_Unshared, TypeError):  # TypeError: an unhashable value in it
        return builder.build()
    if shared is None or shared.source is not builder:
        shared = _remember(key, builder.build(), builder)
    return shared


def read_definition(
    initial_state: str | MachineSpec | MachineBuilder | None,
    transitions: Mapping[str, Iterable[str]] | MachineSpec | MachineBuilder | None,
    events: Any,
    history_limit: int | None,
) -> MachineSpec | Shared:
    """Read the ways a machine can be defined into one MachineSpec, or into the
    definition it shares with the machines defined the same way."""
    spec_like = transitions if isinstance(transitions, (MachineSpec, MachineBuilder)) else None
    if isinstance(initial_state, (MachineSpec, MachineBuilder)):
        spec_like, initial_state = initial_state, None
    if spec_like is not None:
        shared = _of_builder(spec_like) if isinstance(spec_like, MachineBuilder) else None
        if isinstance(shared, MachineSpec):
            spec = shared
        else:
            spec = shared.spec if shared is not None else spec_like  # type: ignore[assignment]
        if events is not None:
            raise TypeError("pass events= in the MachineSpec, not next to it")
        if initial_state is not None and initial_state != spec.initial:
            raise ValueError(
                f"initial_state {initial_state!r} differs from the spec's initial state "
                f"{spec.initial!r}; leave initial_state out or build the spec with it"
            )
        if history_limit is not None and history_limit != spec.history_limit:
            builder = spec.to_builder()
            builder.history_limit = history_limit
            return builder.build()
        if shared is not None:
            return shared
        return _of_spec(spec)
    assert not isinstance(transitions, (MachineSpec, MachineBuilder))
    return _plain(
        initial_state, transitions, events, 100 if history_limit is None else history_limit
    )
