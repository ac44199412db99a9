"""The Ray cases (issue 16): `RayRuntime` next to raw Ray actor calls doing the
same work, on one local cluster that the case starts and stops.

- ``ray_blocking``: one caller, one blocking transition at a time on one
  machine; stateward through a `RayRuntime` with one shard, against a raw Ray
  actor call (`_ray_specs.RawShard.step`) that applies the same transition
  and writes the same journal record to the same kind of store.
- ``ray_pipelined``: one caller keeping ``ray_in_flight`` requests in flight
  over ``ray_machines`` machines on 2 shards, round-robin; stateward's
  `RayRuntime` (its client coalesces the requests of one shard into one Ray
  call, its shard commits them as one group) against 2 raw Ray actors with
  one Ray call and one store write per request.

Every system writes to a `SQLiteStore` in ``batched`` mode, a fresh file per
system and round (stateward's shards and the raw actors open it by its path).
Each round starts its own shards or raw actors and kills them afterwards, so
no round inherits another's processes. The cluster (`local_cluster`) keeps
its files in a temporary folder and writes nothing to the home directory.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import shutil
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from _harness import CaseUnavailable, Sample, Stopwatch, System, timed_calls
from _ray_specs import TOGGLE_SPEC, RawShard
from _systems import CALL_TIMEOUT, A, B, Peers, Sizes, check, sample

from stateward.actors import StateMachine
from stateward.actors.stores import SQLiteStore

HERE = Path(__file__).resolve().parent
#: Untimed calls on each side before the timed ones (imports, first connections).
WARMUP_CALLS = 10
#: Shards (stateward) and raw actors (the baseline) in ray_pipelined.
PIPELINED_SHARDS = 2


@contextlib.contextmanager
def local_cluster() -> Iterator[None]:
    """A local Ray cluster for one case: 2 CPUs, no dashboard, its files in a
    temporary folder (removed afterwards), ``RAY_AUTH_MODE=disabled`` so Ray
    writes no token into ``~/.ray``; benchmarks/ on the workers' path.

    Raises:
        CaseUnavailable: Ray is not installed, or this process already runs Ray.
    """
    try:
        import ray
    except ImportError:
        raise CaseUnavailable("Ray is not installed (pip install 'stateward[ray]')") from None
    if ray.is_initialized():
        raise CaseUnavailable("this process is already connected to Ray; the case starts its own")
    folder = tempfile.mkdtemp(prefix="sw-bench-ray-")
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    try:
        with mock.patch.dict(os.environ, {"RAY_AUTH_MODE": "disabled"}):
            ray.init(
                num_cpus=2,
                include_dashboard=False,
                _temp_dir=folder,
                runtime_env={"env_vars": {"PYTHONPATH": path, "RAY_AUTH_MODE": "disabled"}},
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
            try:
                yield
            finally:
                ray.shutdown()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _ray_runtime(path: Path, shards: int) -> Any:
    from stateward.actors.ray import RayRuntime

    return RayRuntime(SQLiteStore(path, durability="batched"), shards=shards)


def _raw_actors(path: Path, count: int) -> list[Any]:
    import ray

    remote = ray.remote(RawShard).options(max_concurrency=1, max_restarts=0, max_task_retries=0)
    owner = f"bench-raw-{uuid.uuid4().hex[:8]}"
    return [remote.remote(str(path), owner) for _ in range(count)]


def _close_raw(actors: list[Any]) -> None:
    import ray

    try:
        ray.get([actor.close.remote() for actor in actors], timeout=CALL_TIMEOUT)
    finally:
        for actor in actors:
            ray.kill(actor)


def _toggle(i: int) -> str:
    return B if i % 2 == 0 else A


# -- ray_blocking --------------------------------------------------------------------------


def ray_blocking(sizes: Sizes, peers: Peers, scratch: Path) -> list[System]:
    n = sizes.ray_calls

    def timed(call: Callable[[int], int], problems: list[str]) -> tuple[Stopwatch, float]:
        """WARMUP_CALLS untimed calls, then ``n`` timed; each call returns the
        machine's new version, checked against the count."""
        wrong = 0

        def checked(i: int) -> None:
            nonlocal wrong
            wrong += call(i) != i + 1

        for i in range(WARMUP_CALLS):
            checked(i)
        watch, median = timed_calls(lambda i: checked(i + WARMUP_CALLS), n)
        check(problems, wrong == 0, f"{wrong} calls answered with an unexpected version")
        return watch, median

    def stateward(round_no: int) -> Sample:
        problems: list[str] = []
        runtime = _ray_runtime(scratch / f"stateward-blocking-{round_no}.db", 1)
        try:
            machine = StateMachine(TOGGLE_SPEC, name="m0", runtime=runtime)
            transition = machine.transition

            def call(i: int) -> int:
                return int(transition(_toggle(i), timeout=CALL_TIMEOUT).version)

            watch, median = timed(call, problems)
            total = n + WARMUP_CALLS
            check(problems, machine.version == total, f"version {machine.version} != {total}")
        finally:
            runtime.shutdown(timeout=CALL_TIMEOUT, stop_shards=True)
        return sample(n, watch, median, problems)

    def raw(round_no: int) -> Sample:
        import ray

        problems: list[str] = []
        (actor,) = _raw_actors(scratch / f"raw-blocking-{round_no}.db", 1)
        try:
            ray.get(actor.create.remote(["m0"]), timeout=CALL_TIMEOUT)
            step = actor.step.remote

            def call(i: int) -> int:
                return int(ray.get(step("m0", _toggle(i)), timeout=CALL_TIMEOUT))

            watch, median = timed(call, problems)
        finally:
            _close_raw([actor])
        return sample(n, watch, median, problems)

    return [
        System(
            "stateward",
            stateward,
            "RayRuntime(SQLiteStore batched, shards=1): machine.transition(), one at a time; "
            "checked: every reply's version",
            judge_by="wall",
        ),
        System(
            "raw-ray",
            raw,
            "a sync Ray actor: ray.get(actor.step.remote(...)) applies the transition "
            "(stateward.core) and commits the same journal record to SQLiteStore batched; "
            "checked: every reply's version",
            judge_by="wall",
        ),
    ]


# -- ray_pipelined -------------------------------------------------------------------------


def ray_pipelined(sizes: Sizes, peers: Peers, scratch: Path) -> list[System]:
    window, count, seconds = sizes.ray_in_flight, sizes.ray_machines, sizes.ray_seconds
    names = [f"m{i}" for i in range(count)]

    def drive(
        send: Callable[[int, str], Any], answer: Callable[[Any], int], problems: list[str]
    ) -> tuple[Stopwatch, list[int]]:
        """Keep ``window`` requests in flight over the machines, round-robin,
        for ``seconds``; check each answer's version; return the count sent to
        each machine."""
        sent = [0] * count
        in_flight: collections.deque[tuple[int, Any]] = collections.deque()
        wrong = done = 0

        def settle() -> None:
            nonlocal wrong
            expected, pending = in_flight.popleft()
            wrong += answer(pending) != expected

        clock = Stopwatch().start()
        stop_at = time.perf_counter() + seconds
        while time.perf_counter() < stop_at:
            for _ in range(window):  # one window's worth between clock reads
                index = done % count
                if len(in_flight) >= window:
                    settle()
                sent[index] += 1
                in_flight.append((sent[index], send(index, _toggle(sent[index] - 1))))
                done += 1
        while in_flight:
            settle()
        clock.stop()
        check(problems, wrong == 0, f"{wrong} replies with an unexpected version")
        return clock, sent

    def stateward(round_no: int) -> Sample:
        problems: list[str] = []
        runtime = _ray_runtime(scratch / f"stateward-pipelined-{round_no}.db", PIPELINED_SHARDS)
        try:
            machines = [StateMachine(TOGGLE_SPEC, name=n, runtime=runtime) for n in names]
            requests = [m.request_transition for m in machines]
            watch, sent = drive(
                lambda i, target: requests[i](target),
                lambda reply: int(reply.result(CALL_TIMEOUT).version),
                problems,
            )
            for machine, expected in zip(machines, sent, strict=True):
                if machine.version != expected:
                    problems.append(f"{machine.name}: version {machine.version} != {expected}")
        finally:
            runtime.shutdown(timeout=CALL_TIMEOUT, stop_shards=True)
        done = sum(sent)
        return sample(done, watch, None, problems, transitions=done)

    def raw(round_no: int) -> Sample:
        import ray

        problems: list[str] = []
        actors = _raw_actors(scratch / f"raw-pipelined-{round_no}.db", PIPELINED_SHARDS)
        try:
            places = [zlib.crc32(n.encode()) % PIPELINED_SHARDS for n in names]
            owners = [actors[place] for place in places]
            placed: list[list[str]] = [[] for _ in actors]
            for name, place in zip(names, places, strict=True):
                placed[place].append(name)
            created = ray.get(
                [actor.create.remote(mine) for actor, mine in zip(actors, placed, strict=True)],
                timeout=CALL_TIMEOUT,
            )
            check(problems, sum(created) == count, f"created {sum(created)} of {count}")
            steps = [owner.step.remote for owner in owners]
            watch, sent = drive(
                lambda i, target: steps[i](names[i], target),
                lambda ref: int(ray.get(ref, timeout=CALL_TIMEOUT)),
                problems,
            )
        finally:
            _close_raw(actors)
        done = sum(sent)
        return sample(done, watch, None, problems, transitions=done)

    shape = f"{window:,} requests in flight over {count:,} machines on {PIPELINED_SHARDS}"
    return [
        System(
            "stateward",
            stateward,
            f"RayRuntime(SQLiteStore batched, shards={PIPELINED_SHARDS}): request_transition(), "
            f"{shape} shards, round-robin; checked: every reply's version and every machine's",
            finish=lambda _samples: {"in_flight": window, "machines": count},
            judge_by="wall",
        ),
        System(
            "raw-ray",
            raw,
            f"{PIPELINED_SHARDS} sync Ray actors, one actor.step.remote() per request (the same "
            f"transition and journal record, SQLiteStore batched): {shape} actors; checked: "
            "every reply's version",
            finish=lambda _samples: {"in_flight": window, "machines": count},
            judge_by="wall",
        ),
    ]
