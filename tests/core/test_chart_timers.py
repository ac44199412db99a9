"""Durable timers in statecharts: a compound state's timeout runs while any
state inside it is active and goes when the state is exited; the timeouts of
the states a move exits go and of those it enters start, in the same
transaction; a parallel region's timeout; hook timers in a chart; the fence;
recovery from documents and journal deltas carrying both a configuration and
timers (and from what each branch wrote before the other)."""

from __future__ import annotations

import datetime as dt

import pytest

from stateward.core import (
    MachineBuilder,
    MachineDefinitionError,
    MachineSnapshot,
    MachineSpec,
    apply_creation,
    apply_transition,
    decode,
    encode,
)
from stateward.core._behaviours import machine_behaviour
from stateward.core._persist import MachineCodec
from stateward.core._timer_fire import Fire

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def clock_at(seconds: float):  # type: ignore[no-untyped-def]
    return lambda: at(seconds)


def fire(spec: MachineSpec, snapshot: MachineSnapshot, timer_id: str, seconds: float):  # type: ignore[no-untyped-def]
    return machine_behaviour(spec, clock=clock_at(seconds))(snapshot, Fire((timer_id,)))


def move(
    spec: MachineSpec, snapshot: MachineSnapshot, event: str, seconds: float
) -> MachineSnapshot:
    return apply_transition(spec, snapshot, event=event, clock=clock_at(seconds)).snapshot


def pending(snapshot: MachineSnapshot) -> dict[str, tuple[str, dt.datetime]]:
    return {t.name: (t.id, t.due) for t in snapshot.timers if t.kind == "state"}


# power on: "on" (idle|busy) with a one-minute timeout; "busy" has its own.
DEVICE = {
    "power": "off -> on",
    "work": "idle -> busy",
    "rest": "busy -> idle",
    "expire": "on -> off",
    "again": "on -> on",
}


def device(**timeouts: object) -> MachineSpec:
    return MachineSpec(
        "off",
        events=DEVICE,
        compound={"on": ["idle", "busy"]},
        timeouts=timeouts or {"on": (60, "expire"), "busy": (10, "rest")},
    )


def test_a_compound_states_timeout_is_kept_across_moves_between_its_children() -> None:
    spec = device()
    on = move(spec, MachineSnapshot.initial(spec), "power", 0)
    assert pending(on) == {"on": ("state:on@1", at(60))}
    busy = move(spec, on, "work", 5)
    assert pending(busy) == {"on": ("state:on@1", at(60)), "busy": ("state:busy@2", at(15))}
    idle = move(spec, busy, "rest", 7)  # busy exited: its timeout goes, on's stays
    assert pending(idle) == {"on": ("state:on@1", at(60))}
    fired = fire(spec, idle, "state:on@1", 60)
    assert fired.snapshot.state == "off"
    assert fired.snapshot.configuration == {"off"}
    assert fired.snapshot.timers == ()


def test_a_compound_states_timeout_is_cancelled_when_the_state_is_exited() -> None:
    spec = device()
    busy = move(spec, move(spec, MachineSnapshot.initial(spec), "power", 0), "work", 1)
    off = move(spec, busy, "expire", 2)  # exits busy and on: both timeouts go
    assert off.timers == ()
    # a firing of either, later, is dropped: no change, no version
    for timer in busy.timers:
        assert fire(spec, off, timer.id, 100).snapshot is off


def test_an_external_self_transition_on_a_compound_state_restarts_its_timeout() -> None:
    spec = device()
    on = move(spec, MachineSnapshot.initial(spec), "power", 0)
    again = move(spec, on, "again", 30)
    assert pending(again) == {"on": ("state:on@2", at(90))}
    assert fire(spec, again, "state:on@1", 60).snapshot is again  # the old one is fenced


def test_a_busy_states_timeout_fires_an_event_defined_on_its_parent() -> None:
    spec = device(busy=(10, "expire"))  # "expire" is defined from "on" only
    busy = move(spec, move(spec, MachineSnapshot.initial(spec), "power", 0), "work", 1)
    (timer,) = busy.timers
    fired = fire(spec, busy, timer.id, 11)
    assert fired.reply.error is None
    assert fired.snapshot.state == "off" and fired.snapshot.timers == ()


def test_a_timeout_whose_event_fires_from_neither_the_state_nor_its_parents_is_refused() -> None:
    with pytest.raises(MachineDefinitionError, match="cannot fire from 'idle'"):
        device(idle=(10, "rest"))


def test_creation_starts_the_timeouts_of_the_whole_initial_configuration() -> None:
    spec = MachineSpec(
        "on",
        events=DEVICE,
        compound={"on": ["idle", "busy"]},
        timeouts={"on": (60, "expire"), "idle": (5, "work")},
    )
    start = MachineSnapshot.initial(spec, at=at(0))
    assert pending(start) == {"on": ("state:on@0", at(60)), "idle": ("state:idle@0", at(5))}
    created = apply_creation(spec, clock=clock_at(0)).snapshot
    assert created.timers == start.timers
    worked = fire(spec, created, "state:idle@0", 5).snapshot
    assert worked.state == "busy"
    assert pending(worked) == {"on": ("state:on@0", at(60))}


# -- parallel regions -------------------------------------------------------------------------

PLAYER = {
    "start": "stopped -> running",
    "a_next": "a1 -> a2",
    "a_back": "a2 -> a1",
    "v_next": "v1 -> v2",
    "stop": "running -> stopped",
}


def player(**timeouts: object) -> MachineSpec:
    return MachineSpec(
        "stopped",
        events=PLAYER,
        compound={"audio": ["a1", "a2"], "video": ["v1", "v2"]},
        parallel={"running": ["audio", "video"]},
        timeouts=timeouts,
    )


def test_a_parallel_regions_state_timeout_fires_in_its_region_only() -> None:
    spec = player(a1=(10, "a_next"), running=(100, "stop"))
    running = move(spec, MachineSnapshot.initial(spec), "start", 0)
    assert pending(running) == {
        "running": ("state:running@1", at(100)),
        "a1": ("state:a1@1", at(10)),
    }
    video = move(spec, running, "v_next", 3)  # the other region moves: a1's timeout stays
    assert pending(video) == pending(running)
    fired = fire(spec, video, "state:a1@1", 10).snapshot
    assert fired.configuration == {"running", "audio", "a2", "video", "v2"}
    assert pending(fired) == {"running": ("state:running@1", at(100))}
    back = move(spec, fired, "a_back", 20)  # a1 entered again: a new timeout
    assert pending(back)["a1"] == ("state:a1@4", at(30))
    stopped = fire(spec, back, "state:running@1", 100).snapshot
    assert stopped.configuration == {"stopped"} and stopped.timers == ()


def test_hook_timers_work_in_a_parallel_machine_and_the_event_timeout_goes_on_any_move() -> None:
    builder = MachineBuilder(
        "stopped",
        events=PLAYER,
        compound={"audio": ["a1", "a2"], "video": ["v1", "v2"]},
        parallel={"running": ["audio", "video"]},
    )

    @builder.on_enter("running")
    def arm(ctx):  # type: ignore[no-untyped-def]
        ctx.start_timer("watchdog", 50, "stop")
        ctx.set_event_timeout(5, "v_next")
        ctx.send_later(1, "a_next")

    spec = builder.build()
    running = move(spec, MachineSnapshot.initial(spec), "start", 0)
    kinds = {(t.kind, t.event) for t in running.timers}
    assert kinds == {("named", "stop"), ("event", "v_next"), ("later", "a_next")}
    later = next(t for t in running.timers if t.kind == "later")
    moved = fire(spec, running, later.id, 1).snapshot  # a move: the event timeout goes
    assert moved.configuration >= {"a2", "v1"}
    assert {(t.kind, t.event) for t in moved.timers} == {("named", "stop")}
    stopped = fire(spec, moved, moved.timers[0].id, 50).snapshot
    assert stopped.state == "stopped" and stopped.timers == ()


# -- what is stored ---------------------------------------------------------------------------


def test_documents_with_a_configuration_and_timers_read_back() -> None:
    spec = player(a1=(10, "a_next"), running=(100, "stop"))
    codec = MachineCodec(spec)
    running = move(spec, MachineSnapshot.initial(spec), "start", 0)
    document = codec.document(running)
    assert "configuration" in document and "timers" in document
    assert codec.from_document("m", decode(encode(document))) == running


def test_journal_deltas_with_a_configuration_and_timers_replay() -> None:
    spec = player(a1=(10, "a_next"), running=(100, "stop"))
    codec = MachineCodec(spec)
    start = MachineSnapshot.initial(spec)
    running = move(spec, start, "start", 0)
    video = move(spec, running, "v_next", 3)  # timers unchanged: only the chart
    fired = fire(spec, video, "state:a1@1", 10).snapshot
    replayed = start
    for old, new in ((start, running), (running, video), (video, fired)):
        delta = decode(encode(codec.delta(old, new)))
        assert len(delta) == 4 and set(delta[3]) == (
            {"chart", "timers"} if new.timers is not old.timers else {"chart"}
        )
        replayed = codec.apply(replayed, delta)
        assert replayed == new


def test_deltas_written_before_the_merge_still_replay() -> None:
    # a statechart's delta from before timers: its fourth item is the chart itself
    chart_only = MachineSpec("off", events=DEVICE, compound={"on": ["idle", "busy"]})
    codec = MachineCodec(chart_only)
    start = MachineSnapshot.initial(chart_only)
    on = move(chart_only, start, "power", 0)
    old_delta = codec.delta(start, on)
    old_style = (*old_delta[:3], old_delta[3]["chart"])
    assert codec.apply(start, decode(encode(old_style))) == on
    # a flat machine's delta with only timers (what the timer branch wrote)
    flat = MachineSpec(
        "off", events={"power": "off -> on", "expire": "on -> off"}, timeouts={"on": (9, "expire")}
    )
    flat_codec = MachineCodec(flat)
    first = MachineSnapshot.initial(flat)
    powered = move(flat, first, "power", 0)
    delta = decode(encode(flat_codec.delta(first, powered)))
    assert set(delta[3]) == {"timers"}
    assert flat_codec.apply(first, delta) == powered


def test_a_flat_machines_document_read_into_a_statechart_keeps_its_timers() -> None:
    events = {"power": "off -> idle", "rest": "idle -> off"}
    flat = MachineSpec("off", events=events, timeouts={"idle": (9, "rest")})
    idle = move(flat, MachineSnapshot.initial(flat), "power", 0)
    stored = MachineCodec(flat).document(idle)
    chart = MachineSpec(
        "off", events=events, compound={"on": ["idle"]}, timeouts={"idle": (9, "rest")}
    )
    read = MachineCodec(chart).from_document("m", decode(encode(stored)))
    assert read.configuration == {"on", "idle"}
    assert read.timers == idle.timers
    assert fire(chart, read, idle.timers[0].id, 9).snapshot.state == "off"
