"""Properties of random statecharts (hypothesis): random trees of compound and
parallel states with history states, random events between random states
(parents and history states included), random event sequences. After every
step the configuration is legal, ``current_state`` follows its rule, the exit
and enter hooks replay the step in order, the record's configurations match
the snapshots, and the snapshot round-trips through the codec and through
journal replay.

The checks below are written from the spec's public questions (`parent`,
`children`, `is_compound`, `is_parallel`), not from the implementation's
own helpers."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stateward.core import (
    InvalidTransition,
    MachineBuilder,
    MachineSnapshot,
    MachineSpec,
    apply_transition,
    decode,
    encode,
)
from stateward.core._behaviours import machine_behaviour
from stateward.core._persist import MachineCodec
from stateward.core._timer_fire import Fire

#: More examples with STATEWARD_CHART_EXAMPLES=2000 (a local, longer run).
FAST = settings(
    max_examples=int(os.environ.get("STATEWARD_CHART_EXAMPLES", "60")), deadline=None, database=None
)


@st.composite
def charts(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    """The keywords of a random statechart, and its event names."""
    count = draw(st.integers(2, 11))
    names = [f"s{i}" for i in range(count)]
    kids: dict[str, list[str]] = {}
    for i in range(1, count):  # a parent always comes earlier: no cycle
        parent = draw(st.integers(-1, i - 1))  # -1: a top-level state
        if parent >= 0:
            kids.setdefault(names[parent], []).append(names[i])
    compound: dict[str, Any] = {}
    parallel: dict[str, list[str]] = {}
    for parent, children in kids.items():
        if draw(st.integers(0, 3)) == 0:
            parallel[parent] = children
        else:
            initial = draw(st.sampled_from(children))
            compound[parent] = {"initial": initial, "states": children}
    history = {
        f"{parent}_{kind}": (parent, kind)
        for parent in compound
        for kind in ("shallow", "deep")
        if draw(st.booleans())
    }
    targets = names + list(history)
    events: dict[str, list[dict[str, Any]]] = {}
    for e in range(draw(st.integers(1, 6))):
        moves: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()
        for _ in range(draw(st.integers(1, 4))):
            source = draw(st.sampled_from(names))
            target = draw(st.sampled_from(targets))
            if (source, target) in seen:
                continue
            seen.add((source, target))
            tag = f"e{e}:{source}->{target}"
            move: dict[str, Any] = {
                "move": f"{source} -> {target}",
                "guards": lambda ctx, tag=tag: tag in ctx.payload.get("allow", ()),
            }
            inside = target == source or (
                source in compound and _is_inside(target, source, kids, history)
            )
            if inside and draw(st.booleans()):
                move["internal"] = True
            moves.append(move)
        events[f"e{e}"] = moves
    for parent in parallel:
        if draw(st.booleans()):
            events[f"done.state.{parent}"] = [
                {"move": f"{parent} -> {draw(st.sampled_from(names))}"}
            ]
    initial = draw(st.sampled_from(names))
    return (
        {
            "initial": initial,
            "events": events,
            "compound": compound,
            "parallel": parallel,
            "history": history,
        },
        list(events),
    )


def _is_inside(
    state: str, ancestor: str, kids: dict[str, list[str]], history: dict[str, Any]
) -> bool:
    if state in history:
        parent = history[state][0]
        return parent == ancestor or _is_inside(parent, ancestor, kids, history)
    return any(state == c or _is_inside(state, c, kids, history) for c in kids.get(ancestor, ()))


def legal(spec: MachineSpec, active: frozenset[str]) -> None:
    top = [s for s in active if spec.parent(s) is None]
    assert len(top) == 1, f"top-level states active: {top}"
    for state in active:
        parent = spec.parent(state)
        assert parent is None or parent in active, f"{state} active without {parent}"
        children = [c for c in spec.children(state) if c in active]
        if spec.is_compound(state):
            assert len(children) == 1, f"{state} has active children {children}"
        elif spec.is_parallel(state):
            assert children == list(spec.children(state)), f"{state}'s regions: {children}"
        else:
            assert not spec.children(state)


def current(spec: MachineSpec, active: frozenset[str]) -> str:
    leaves = [s for s in active if not any(c in active for c in spec.children(s))]
    around = [{leaf, *spec.ancestors(leaf)} for leaf in leaves]
    common = set.intersection(*around)
    return max(common, key=lambda s: len(spec.ancestors(s)))


def replay(spec: MachineSpec, before: frozenset[str], calls: list[tuple[str, str]]) -> set[str]:
    """Apply the hooks' exits and enters, in order, to ``before``: each exit
    leaves a state with nothing active below it, each enter enters a state
    whose parent is already active."""
    active = set(before)
    for kind, state in calls:
        if kind == "exit":
            assert state in active and not any(c in active for c in spec.children(state))
            active.remove(state)
        else:
            parent = spec.parent(state)
            assert state not in active and (parent is None or parent in active)
            active.add(state)
    return active


@FAST
@given(charts(), st.data())
def test_random_statecharts_keep_a_legal_configuration(
    chart: tuple[dict[str, Any], list[str]], data: st.DataObject
) -> None:
    """Run longer with ``STATEWARD_CHART_EXAMPLES=2000``."""
    keywords, event_names = chart
    calls: list[tuple[str, str]] = []
    builder = MachineBuilder(**keywords)
    probe = builder.build()
    for state in probe.states:
        builder.on_exit(state)(lambda ctx, s=state: calls.append(("exit", s)))
        builder.on_enter(state)(lambda ctx, s=state: calls.append(("enter", s)))
    spec = builder.build()
    codec = MachineCodec(spec)
    snap = MachineSnapshot.initial(spec)
    legal(spec, snap.configuration)
    assert snap.state == current(spec, snap.configuration)
    replayed = codec.from_document("m", decode(encode(codec.document(snap))))
    assert replayed == snap
    tags = [
        f"{name}:{move['move'].replace(' ', '')}"
        for name in event_names
        for move in keywords["events"][name]
    ]
    for _ in range(data.draw(st.integers(1, 12))):
        leaves = [s for s in snap.configuration if not spec.children(s)]
        possible = sorted({e for leaf in leaves for e in spec.allowed_events(leaf)})
        event = data.draw(st.sampled_from(possible or event_names))
        allow = data.draw(st.just(tags) | st.lists(st.sampled_from(tags), max_size=4))
        calls.clear()
        try:
            new = apply_transition(spec, snap, event=event, payload={"allow": allow}).snapshot
        except InvalidTransition:  # refused (TransitionRejected too): nothing changed
            continue
        legal(spec, new.configuration)
        assert new.state == current(spec, new.configuration)
        assert replay(spec, snap.configuration, calls) == new.configuration
        record = new.history[-1]
        assert record.configuration_before == snap.configuration
        assert record.configuration_after == new.configuration
        assert (record.version, record.from_state, record.to_state) == (
            snap.version + 1,
            snap.state,
            new.state,
        )
        assert codec.from_document("m", decode(encode(codec.document(new)))) == new
        replayed = codec.apply(replayed, decode(encode(codec.delta(snap, new))))
        assert replayed == new
        snap = new


#: Fewer examples than the test above (each also fires timers); more with
#: STATEWARD_CHART_EXAMPLES.
TIMED = settings(
    max_examples=int(os.environ.get("STATEWARD_CHART_EXAMPLES", "30")), deadline=None, database=None
)


@TIMED
@given(charts(), st.data())
def test_random_statecharts_hold_the_timeouts_of_their_active_states_only(
    chart: tuple[dict[str, Any], list[str]], data: st.DataObject
) -> None:
    """Random state timeouts in random statecharts, fired at random points
    between random events: the pending state timeouts are those of the active
    states, each once; a state neither exited nor entered keeps its timer; a
    fired timer is gone; snapshots with timers round-trip through the codec
    and journal replay. Run longer with ``STATEWARD_CHART_EXAMPLES=2000``."""
    keywords, event_names = chart
    tags = [
        f"{name}:{move['move'].replace(' ', '')}"
        for name in event_names
        for move in keywords["events"][name]
    ]
    probe = MachineBuilder(**keywords).build()
    timeouts: dict[str, Any] = {}
    for state in probe.states:
        fires = probe.allowed_events(state)
        if fires and data.draw(st.booleans()):
            event = data.draw(st.sampled_from(fires))
            timeouts[state] = (data.draw(st.integers(1, 100)), event, {"allow": tags})
    calls: list[tuple[str, str]] = []
    builder = MachineBuilder(**keywords, timeouts=timeouts)
    for state in probe.states:
        builder.on_exit(state)(lambda ctx, s=state: calls.append(("exit", s)))
        builder.on_enter(state)(lambda ctx, s=state: calls.append(("enter", s)))
    spec = builder.build()
    codec = MachineCodec(spec)

    #: active states whose timeout fired since they were entered
    spent: set[str] = set()

    def state_timers(snapshot: MachineSnapshot) -> dict[str, Any]:
        named = [t.name for t in snapshot.timers if t.kind == "state"]
        assert len(named) == len(set(named)), f"a state's timeout pending twice: {named}"
        assert set(named) == {s for s in snapshot.configuration if s in timeouts} - spent
        return {t.name: t for t in snapshot.timers}

    snap = MachineSnapshot.initial(spec)
    state_timers(snap)
    replayed = codec.from_document("m", decode(encode(codec.document(snap))))
    assert replayed == snap
    for step in range(data.draw(st.integers(1, 12))):
        calls.clear()
        fired = None
        if snap.timers and data.draw(st.booleans()):
            fired = data.draw(st.sampled_from(snap.timers))
            outcome = machine_behaviour(spec)(snap, Fire((fired.id,)))
            new = outcome.snapshot
            if outcome.reply.error is not None:  # used up, nothing moved
                assert new.configuration == snap.configuration
                calls.clear()
        else:
            leaves = [s for s in snap.configuration if not spec.children(s)]
            possible = sorted({e for leaf in leaves for e in spec.allowed_events(leaf)})
            event = data.draw(st.sampled_from(possible or event_names))
            allow = data.draw(st.just(tags) | st.lists(st.sampled_from(tags), max_size=4))
            try:
                new = apply_transition(spec, snap, event=event, payload={"allow": allow}).snapshot
            except InvalidTransition:
                continue
        legal(spec, new.configuration)
        assert new.state == current(spec, new.configuration)
        touched = {s for _, s in calls}
        before = state_timers(snap)
        spent -= {s for kind, s in calls if kind == "enter"}
        spent &= new.configuration
        if fired is not None:
            assert all(t.id != fired.id for t in new.timers), "a fired timer stayed pending"
            if fired.kind == "state" and fired.name in new.configuration - touched:
                spent.add(fired.name)
        after = state_timers(new)
        for state in snap.configuration & new.configuration - touched - spent:
            if state in timeouts:
                assert after[state] is before[state], f"{state}'s timeout restarted at {step}"
        assert codec.from_document("m", decode(encode(codec.document(new)))) == new
        replayed = codec.apply(replayed, decode(encode(codec.delta(snap, new))))
        assert replayed == new
        snap = new
