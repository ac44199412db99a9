"""A shard's batches without a cluster (nothing here starts Ray: a `Shard`
runs in this process over a SQLite store): a machine's snapshot travels back
as what the client lacks (`_delta`), and the client rebuilds it whole,
history included; a lone request that runs no code of the user's runs on
the thread that runs the batch."""

from __future__ import annotations

import datetime as dt
import pickle
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray_specs

from stateward.actors._reply import Reply
from stateward.actors.ray._delta import SHRUNK, grow, held_of, shrink
from stateward.actors.ray._link import Link, _grown, _packed, pickled
from stateward.actors.ray._paths import spec_path, store_recipe
from stateward.actors.ray._shard import Shard
from stateward.actors.stores import SQLiteStore
from stateward.core import ImmutableState, MachineSpec, apply_creation, apply_transition
from stateward.core._messages import Move

LOOP = MachineSpec("a", {"a": ["a"]}, history_limit=5)
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _lineage(count: int, spec: MachineSpec = LOOP, step: int = 1) -> list[Any]:
    """Snapshots 0..count of one machine, a transition each, ``step`` seconds apart."""
    snapshots = [apply_creation(spec, machine="m").snapshot]
    for i in range(count):
        at = START + dt.timedelta(seconds=step * (i + 1))
        moved = apply_transition(spec, snapshots[-1], "a", clock=lambda at=at: at, machine="m")
        snapshots.append(moved.snapshot)
    return snapshots


def test_a_snapshot_is_rebuilt_equal_from_any_held_one_still_in_its_history() -> None:
    snapshots = _lineage(12)
    for i, base in enumerate(snapshots):
        for j in range(i, len(snapshots)):
            done = shrink(snapshots[j], held_of(base))  # type: ignore[arg-type]
            # Held: version i's record (none for version 0), still kept at j.
            assert (done is not None) == (i == 0 or j - i < LOOP.history_limit), (i, j)
            if done is None:
                continue
            shrunk, now_held = done
            assert len(shrunk[3]) == (j - i if i else min(j, LOOP.history_limit))
            rebuilt = grow(base, shrunk)
            assert rebuilt == snapshots[j] and list(rebuilt.history) == list(snapshots[j].history)
            assert now_held == held_of(snapshots[j])


def test_a_snapshot_of_another_lineage_travels_whole() -> None:
    mine, other = _lineage(4), _lineage(4, step=2)  # same versions, other times
    assert shrink(other[4], held_of(mine[2])) is None  # type: ignore[arg-type]
    # A client holding fewer records than the shard's history has before its
    # last one (it cannot have them) gets it whole too.
    last, _ = held_of(mine[3])  # type: ignore[misc]
    assert shrink(mine[4], (last, 1)) is None


def test_a_machine_that_keeps_no_history_is_rebuilt_from_its_state_alone() -> None:
    spec = MachineSpec("a", {"a": ["a"]}, history_limit=0)
    snapshots = _lineage(3, spec)
    done = shrink(snapshots[3], held_of(snapshots[1]))  # type: ignore[arg-type]
    assert done is not None
    assert grow(snapshots[1], done[0]) == snapshots[3] and snapshots[3].history == ()


@pytest.fixture
def shard(tmp_path: Path) -> Iterator[Shard]:
    client = SQLiteStore(tmp_path / "s.db", durability="batched")  # the file, as a client makes it
    recipe = store_recipe(client)
    client.close()
    shard = Shard(0, recipe, 2)
    yield shard
    shard.close()


def _move(name: str, number: int) -> tuple[Any, ...]:
    definition = spec_path(ray_specs.ORDER)
    data = pickled(Move(("review" if number % 2 == 0 else "draft", None, None)), "test")
    return ("call", name, data, f"test:{name}:{number}", "machine", definition, None)


def test_a_batch_answers_each_machine_snapshot_with_only_the_records_its_client_lacks(
    shard: Shard,
) -> None:
    definition = spec_path(ray_specs.ORDER)
    creates = [("create", name, "machine", definition, None, None) for name in ("x", "y")]
    answers, _ = pickle.loads(shard.run(_packed(creates, {}), False))[:2]
    held = {name: snapshot for name, (_, snapshot) in zip(("x", "y"), answers, strict=True)}
    # Three moves of x and one of y, then x again in the next batch.
    for batch in ([_move("x", 0), _move("x", 1), _move("y", 0), _move("x", 2)], [_move("x", 3)]):
        bases = dict(held)
        packed = _packed(batch, {name: held_of(s) for name, s in held.items()})  # type: ignore[misc]
        answers, whole, shrunk = pickle.loads(shard.run(packed, False))
        assert [ok for ok, _ in answers] == [SHRUNK] * len(batch)
        assert all(len(value[3]) == 1 for _, value in answers)  # one new record each
        assert whole == {} and set(shrunk.values()) == {None}  # each its last answer's
        rebuilt = _grown(batch, answers, bases)
        for op, (ok, snapshot) in zip(batch, rebuilt, strict=True):
            assert ok is True and snapshot.version == int(op[3].rsplit(":")[-1]) + 1
        for name in shrunk:
            assert bases[name] == shard.handles[name]._cell.read()
            held[name] = bases[name]
    assert [r.to_state for r in held["x"].history] == ["review", "draft", "review", "draft"]


def test_a_batch_sent_as_a_list_is_answered_whole(shard: Shard) -> None:
    definition = spec_path(ray_specs.ORDER)
    shard.run([("create", "z", "machine", definition, None, None)], False)
    answers, snapshots = shard.run([_move("z", 0)], False)
    assert answers[0][0] is True and answers[0][1] == snapshots["z"]
    assert snapshots["z"].version == 1 and len(snapshots["z"].history) == 1


def test_a_lone_request_that_runs_no_user_code_runs_on_the_batchs_thread(shard: Shard) -> None:
    """No hand-off to a pool worker and back for it; a request that runs a
    hook (it could wait for a later call), or shares its batch, is queued
    for the pool as usual."""
    plain, guarded = spec_path(ray_specs.ORDER), spec_path(ray_specs.PAYMENTS)
    shard.run([("create", "plain", "machine", plain, None, None)], False)
    shard.run([("create", "guarded", "machine", guarded, None, None)], False)
    threads: list[str] = []
    for name in ("plain", "guarded"):
        shard.handles[name].add_observer(
            lambda old, new: threads.append(threading.current_thread().name)
        )
    here = threading.current_thread().name
    shard.run([_move("plain", 0)], False)
    assert threads == [here]
    shard.run([_move("plain", 1), _move("plain", 2)], False)
    pay = Move(("paid", None, ImmutableState({"amount": 5})))
    paid = ("call", "guarded", pickled(pay, "test"), "test:pay", "machine", guarded, None)
    (answer,), _ = shard.run([paid], False)
    assert answer[0] is True and answer[1].state == "paid"
    assert threads[0] == here and len(threads) == 4
    assert all(name != here for name in threads[1:]), threads


class _Recipient:
    """What a `Reply` needs of its cell."""

    name = "fake"
    default_timeout = 10.0

    def __init__(self) -> None:
        self.callback_lock = threading.Lock()

    def report(self, source: str, name: str, error: BaseException) -> None:
        raise AssertionError(f"{source} {name} raised {error!r}")


def test_the_next_batch_is_sent_before_the_last_ones_callers_are_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While a link answers one call's callers, its shard runs the next
    batch: that call starts first (still one call out at a time)."""
    ray = pytest.importorskip("ray")
    events: list[str] = []
    first_started, second_queued = threading.Event(), threading.Event()
    out = [0]  # calls started and not yet answered

    class Actor:
        class run:
            @staticmethod
            def remote(batch: Any, retry: bool) -> int:
                ops, _ = pickle.loads(batch)
                events.append(f"start {ops[0][1]}" if out[0] == 0 else "two calls out")
                out[0] += 1
                first_started.set()
                return len(events)

    def get(call: int, timeout: float) -> Any:
        if call == 1:  # the first call returns once the second batch is queued
            assert second_queued.wait(10)
        out[0] -= 1
        return [(True, call)], {}, {}

    monkeypatch.setattr(ray, "get", get)
    link = Link(None, 0, (0, Actor()), 10.0)
    try:
        recipient = _Recipient()
        replies = []
        for name in ("first", "second"):
            reply: Reply[Any] = Reply(recipient, name)  # type: ignore[arg-type]
            reply.add_done_callback(lambda r, name=name: events.append(f"answer {name}"))
            link.put(("call", name, b"", name), reply)
            replies.append(reply)
            if name == "first":  # out before the second is queued
                assert first_started.wait(10)
        second_queued.set()
        assert [reply.result(10) for reply in replies] == [1, 2]
    finally:
        link.close("test over", 10)
    assert events == ["start first", "start second", "answer first", "answer second"]


def test_a_request_whose_event_alternative_has_a_guard_is_not_run_on_the_batchs_thread() -> None:
    """An event's own guards (a branch, an ``unless``) are code of the
    user's: it could wait for a later call, which the shard's Ray thread
    would never take, so such a request goes to the pool."""
    from stateward.actors.ray._shard import _runs_no_user_code

    def has_ticket(ctx: Any) -> bool:
        return True

    plain = MachineSpec("outside", events={"enter": ["outside -> seated"]})
    branched = MachineSpec(
        "outside",
        events={
            "enter": [
                {"move": "outside -> seated", "guards": has_ticket},
                "outside -> standing",
            ]
        },
    )
    negated = MachineSpec(
        "outside", events={"enter": [{"move": "outside -> seated", "unless": has_ticket}]}
    )
    assert _runs_no_user_code(plain)
    assert not _runs_no_user_code(branched)
    assert not _runs_no_user_code(negated)
