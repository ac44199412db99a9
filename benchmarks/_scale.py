"""The cases of many machines at once: spawn_machines, fanout_transitions and
fairness (issue 14).

A stateward whose host starts a thread per actor (measured on a throwaway
runtime, `threads_per_machine`) cannot run 100,000 machines: Linux stops a
process at about 32,000 threads. These cases then measure it at a count the
host can take (`stateward_count`) and say so in their notes; a pooled
stateward runs the full counts.
"""

from __future__ import annotations

import statistics
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _harness import Sample, Stopwatch, System, percentile, rss_mib
from _systems import (
    CALL_TIMEOUT,
    TOGGLE,
    A,
    B,
    Counter,
    Peers,
    Sizes,
    _Model,
    automat_toggle,
    check,
    pipelined_toggles,
    psm_toggle,
    sample,
    stateward_toggle,
    thread_host_cap,
    thread_limit,
    threads_per_machine,
    transitions_toggle,
)

from stateward.actors import Runtime, StateMachine, StateManager
from stateward.core import ImmutableState


def stopped(made: int, exc: BaseException) -> str:
    """The problem of a case whose host could not create all its machines."""
    return f"creating machines stopped after {made:,}: {exc!r}"


# -- spawn_machines ------------------------------------------------------------------------


def stateward_count(wanted: int, thread_host: int) -> tuple[int, str]:
    """How many machines a stateward case creates, and a note when capped.

    A stateward that starts a thread per actor (measured: `threads_per_machine`)
    is measured at ``thread_host`` machines at most, and never near the
    process's thread limit; a pooled one at ``wanted``.
    """
    if threads_per_machine() < 0.5:
        return wanted, ""
    count = min(wanted, thread_host, thread_host_cap())
    if count == wanted:
        return count, "one thread per actor"
    return count, (
        f"capped at {count:,} of {wanted:,}: this stateward starts one thread per actor "
        f"(measured), and this process may start about {thread_limit():,} threads"
    )


def spawn_machines(sizes: Sizes, peers: Peers, scratch: Path) -> list[System]:
    """Create many machines per system: the rate, memory, threads and shutdown time.

    Each system creates its own count (``machines`` in its entry); rates and
    bytes are per machine, so they compare across counts. The timed rounds run
    without tracemalloc (it slows allocation down); one more pass per system
    afterwards measures the tracemalloc peak.
    """

    def system(
        name: str,
        n: int,
        note: str,
        create: Callable[[Any], Any],
        open_: Callable[[], Any],
        close: Callable[[Any], float],
        inspect_made: Callable[[list[Any]], str | None],
        workers: Callable[[Any], int] = lambda _owner: 0,
    ) -> System:
        """Timed rounds, and one untimed memory pass after them (`System.finish`)."""

        def measure(round_no: int) -> Sample:
            owner = open_()
            threads_before = threading.active_count()
            rss_before = rss_mib()
            made: list[Any] = []
            latencies = [0.0] * n
            clock = time.perf_counter
            problems: list[str] = []
            timed = Stopwatch().start()
            try:
                for i in range(n):
                    started = clock()
                    made.append(create(owner))
                    latencies[i] = clock() - started
            except Exception as exc:  # reported: the host could not take n
                problems.append(stopped(len(made), exc))
            timed.stop()
            rss_after = rss_mib()
            threads = threading.active_count() - threads_before
            wrong = inspect_made(made) if len(made) == n else None
            if wrong:
                problems.append(wrong)
            created = len(made) or 1
            del made
            shutdown_s = close(owner)
            left = threading.active_count() - threads_before
            check(problems, left <= 0, f"{left} threads still alive after shutdown")
            values = {
                "created": float(created),
                "threads": float(threads),
                "workers": float(workers(owner)),
                "create_s": timed.wall,
                "shutdown_s": shutdown_s,
            }
            if rss_before is not None and rss_after is not None:
                values["rss_delta_mib"] = rss_after - rss_before
                values["rss_bytes_per_machine"] = (rss_after - rss_before) * 2**20 / created
                if round_no == 0:
                    values["rss_delta_first_round_mib"] = rss_after - rss_before
            latency = statistics.median(latencies[:created]) * 1e6
            result = sample(created, timed, latency, problems)
            result.values.update(values)
            return result

        def memory() -> tuple[float, int]:
            """The tracemalloc peak of creating the machines, and how many were made."""
            owner = open_()
            made: list[Any] = []
            tracemalloc.start()
            try:
                for _ in range(n):
                    made.append(create(owner))
            except Exception:  # the timed rounds report it
                pass
            finally:
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
            count = len(made) or 1
            del made
            close(owner)
            return float(peak), count

        def finish(samples: list[Sample]) -> dict[str, Any]:
            """The memory pass, untimed, once after the rounds."""
            peak, count = memory()
            samples[0].values["tracemalloc_peak_mib"] = peak / 2**20
            samples[0].values["tracemalloc_bytes_per_machine"] = peak / count
            return {"machines": n}

        return System(name, measure, note, detail, finish)

    def detail(_counts: dict[str, int], values: dict[str, float]) -> str:
        parts = [
            f"tracemalloc peak {values.get('tracemalloc_peak_mib', float('nan')):.1f} MiB "
            f"({values.get('tracemalloc_bytes_per_machine', float('nan')):,.0f} B per machine)",
        ]
        if "rss_delta_mib" in values:
            parts.append(
                f"RSS +{values.get('rss_delta_first_round_mib', float('nan')):.1f} MiB in the "
                f"first round (median of rounds +{values['rss_delta_mib']:.1f} MiB, "
                f"{values['rss_bytes_per_machine']:,.0f} B per machine: freed memory is reused)"
            )
        parts.append(f"threads +{values.get('threads', 0):,.0f}")
        parts.append(f"created in {values.get('create_s', 0):.2f} s")
        if values.get("shutdown_s"):
            parts.append(f"runtime.shutdown() {values['shutdown_s']:.2f} s")
        return ", ".join(parts)

    def sw_open() -> Runtime:
        return Runtime("bench-spawn", default_timeout=120)

    def sw_close(runtime: Runtime) -> float:
        began = time.perf_counter()
        runtime.shutdown(timeout=600)
        return time.perf_counter() - began

    def sw_workers(runtime: Runtime) -> int:
        return int(getattr(runtime, "workers", None) or 0)  # a pooled runtime's pool size

    def sw_check(made: list[StateMachine]) -> str | None:
        alive = sum(1 for m in made if m.alive and m.current_state == A)
        if alive != len(made):
            return f"{len(made) - alive} machines not alive in state 'a'"
        made[-1].transition(B, timeout=CALL_TIMEOUT)
        return None if made[-1].current_state == B else "the last machine did not transition"

    def none() -> None:
        return None

    def no_close(_owner: Any) -> float:
        return 0.0

    def peer_check(state_of: Callable[[Any], str]) -> Callable[[list[Any]], str | None]:
        def check(made: list[Any]) -> str | None:
            good = sum(1 for m in made if state_of(m) == A)
            return None if good == len(made) else f"{len(made) - good} machines not in state 'a'"

        return check

    def stateward(name: str, wanted: int, thread_host: int) -> System:
        count, capped = stateward_count(wanted, thread_host)
        note = (
            f"StateMachine(...) in one Runtime, {count:,} machines"
            + (f" ({capped})" if capped else "")
            + "; shutdown is runtime.shutdown()"
        )
        return system(
            name,
            count,
            note,
            lambda rt: StateMachine(A, TOGGLE, runtime=rt),
            sw_open,
            sw_close,
            sw_check,
            sw_workers,
        )

    n = sizes.spawn
    systems = [
        stateward(
            "stateward",
            sizes.spawn_stateward or n,
            sizes.spawn_stateward or sizes.spawn_thread_host,
        ),
    ]
    if peers.transitions is not None:
        machine_cls = peers.transitions.Machine
        systems.append(
            system(
                "transitions-Machine",
                n,
                f"{n:,} x Machine(model=..., states, transitions): a plain object, no thread",
                lambda _o: transitions_toggle(machine_cls, None),
                none,
                no_close,
                peer_check(lambda m: m.state),
            )
        )

        def shared_machine() -> Any:
            return machine_cls(
                model=[],
                states=[A, B],
                initial=A,
                transitions=[
                    {"trigger": "go_b", "source": A, "dest": B},
                    {"trigger": "go_a", "source": B, "dest": A},
                ],
                auto_transitions=False,
            )

        def add_model(machine: Any) -> Any:
            model = _Model()
            machine.add_model(model)
            return model

        systems.append(
            system(
                "transitions-add_model",
                sizes.spawn_add_model,
                f"{sizes.spawn_add_model:,} models added to one Machine with add_model(): "
                "O(N^2) in the models already added, so measured at fewer",
                add_model,
                shared_machine,
                no_close,
                peer_check(lambda m: m.state),
            )
        )
    if peers.statemachine is not None:
        sm = peers.statemachine
        systems.append(
            system(
                "python-statemachine",
                n,
                f"{n:,} instances of a StateMachine subclass: plain objects, no thread",
                lambda _o: psm_toggle(sm, None),
                none,
                no_close,
                peer_check(lambda m: m.current_state_value),
            )
        )
    if peers.automat is not None:
        automat = peers.automat

        def automat_check(made: list[Any]) -> str | None:
            refused = 0
            for machine in made:  # go_b is accepted in state 'a' only
                try:
                    machine.go_b()
                except automat.NoTransition:
                    refused += 1
            return f"{refused} machines not in state 'a'" if refused else None

        systems.append(
            system(
                "automat",
                n,
                f"{n:,} machines from one automat TypeMachineBuilder: plain objects, no thread; "
                "checked: each accepts go_b (only state 'a' does)",
                lambda _o: automat_toggle(automat),
                none,
                no_close,
                automat_check,
            )
        )
    if sizes.spawn_alone:
        systems.append(
            stateward(f"stateward-{sizes.spawn_alone}", sizes.spawn_alone, sizes.spawn_alone)
        )
    return systems


# -- fanout_transitions --------------------------------------------------------------------


def fanout_transitions(sizes: Sizes, peers: Peers, scratch: Path) -> list[System]:
    """One sender, one pipelined transition on each of N machines.

    The machines are created before the clock starts; the sender asks each for
    one transition (request_transition) and then collects every reply. Next to
    it, the same number of pipelined transitions on one machine, in the same
    round: the target compares the two round by round.
    """
    count, capped = stateward_count(sizes.fanout, sizes.fanout_thread_host)
    window = sizes.pipelined_window

    def fanout(_round: int) -> Sample:
        counter = Counter()
        with Runtime("bench-fanout", default_timeout=120) as runtime:
            machines: list[StateMachine] = []
            try:
                for _ in range(count):
                    machines.append(stateward_toggle(runtime, counter))
            except Exception as exc:  # reported: the host could not take count
                return Sample(0.0, None, False, [stopped(len(machines), exc)])
            timed = Stopwatch().start()
            replies = [machine.request_transition(B) for machine in machines]
            versions = [reply.result(CALL_TIMEOUT).version for reply in replies]
            timed.stop()
            problems: list[str] = []
            wrong = sum(1 for v in versions if v != 1)
            check(problems, wrong == 0, f"{wrong} replies with a version other than 1")
            moved = sum(1 for m in machines if m.current_state == B and m.version == 1)
            check(problems, moved == count, f"{count - moved} machines not at version 1 in 'b'")
            check(problems, counter.n == count, f"hook ran {counter.n} times for {count}")
            del machines, replies
        return sample(count, timed, None, problems)

    def one_machine(_round: int) -> Sample:
        counter = Counter()
        with Runtime("bench-fanout-one") as runtime:
            machine = stateward_toggle(runtime, counter)
            timed, wrong = pipelined_toggles(machine, count, window)
            problems: list[str] = []
            check(problems, wrong == 0, f"{wrong} replies out of order")
            check(problems, machine.version == count, f"version {machine.version} != {count}")
        return sample(count, timed, None, problems)

    systems = [
        System(
            "stateward",
            fanout,
            f"{count:,} machines"
            + (f" ({capped})" if capped else "")
            + ", one request_transition() each from one sender, then every reply.result(); "
            "creating the machines is not timed; checked: every reply and machine at version 1",
        ),
        System(
            "stateward-one-machine",
            one_machine,
            f"the same {count:,} transitions on one machine, up to {window:,} replies in flight "
            "(as pipelined_transitions): the single-machine rate of this round",
        ),
    ]
    systems[0].finish = lambda _samples: {"machines": count}
    return systems


# -- fairness ------------------------------------------------------------------------------

#: The quantum the fairness target allows when the runtime names none (a host
#: with a thread per actor has no quantum; a pooled one hands a cell back after
#: ``runtime.quantum`` messages).
NOMINAL_QUANTUM = 100


def fairness(sizes: Sizes, peers: Peers, scratch: Path) -> list[System]:
    """One busy cell with a backlog, and many cells with one message each.

    The busy cell's handler counts the messages it has handled. One sender
    queues the whole backlog, then one message to each other cell; each of
    those handlers records the busy cell's count when it runs. Its lag is that
    count minus the count when its message was sent: how many of the backlog
    went first. Ordering evidence, not wall-clock time: a fair host answers
    each within one quantum of the busy cell, an unfair one after the backlog.
    """
    backlog, others = sizes.fairness_backlog, sizes.fairness_others
    lags_seen: list[int] = []

    def measure(_round: int) -> Sample:
        handled = [0]
        seen: list[tuple[int, int]] = []  # (index of the other cell, busy count then)

        def bump(state: ImmutableState) -> ImmutableState:
            handled[0] += 1
            return state.update(n=state.n + 1)

        def record(index: int) -> Callable[[ImmutableState], ImmutableState]:
            def answer(state: ImmutableState) -> ImmutableState:
                seen.append((index, handled[0]))
                return state.update(n=state.n + 1)

            return answer

        problems: list[str] = []
        with Runtime("bench-fairness", default_timeout=120) as runtime:
            busy = StateManager({"n": 0}, runtime=runtime)
            cells = [StateManager({"n": 0}, runtime=runtime) for _ in range(others)]
            timed = Stopwatch().start()
            queued = [busy.request_modify(bump) for _ in range(backlog)]
            sent_at = []
            replies = []
            for index, cell in enumerate(cells):
                sent_at.append(handled[0])
                replies.append(cell.request_modify(record(index)))
            for reply in replies:
                reply.result(CALL_TIMEOUT)
            for reply in queued:
                reply.result(CALL_TIMEOUT)
            timed.stop()
            check(problems, busy.get_state().n == backlog, "the busy cell lost messages")
            check(problems, len(seen) == others, f"{len(seen)} of {others} cells answered")
        lags = [handled_then - sent_at[index] for index, handled_then in seen]
        lags_seen.extend(lags)
        result = sample(backlog + others, timed, None, problems)
        if lags:
            ordered = sorted(lags)
            result.values.update(
                max_lag=float(ordered[-1]),
                median_lag=float(statistics.median(ordered)),
                quantum=float(getattr(runtime, "quantum", None) or 0),
                answered_after_backlog=float(sum(1 for lag in lags if lag >= backlog)),
            )
        return result

    def detail(_counts: dict[str, int], values: dict[str, float]) -> str:
        if not lags_seen:
            return ""
        ordered = sorted(lags_seen)
        return (
            f"lag = busy-cell messages handled between sending a cell's message and its "
            f"answer; over all rounds: median {statistics.median(ordered):,.0f}, "
            f"p99 {percentile(ordered, 0.99):,.0f}, max {ordered[-1]:,} of a backlog of "
            f"{backlog:,}; allowed: one quantum ({quantum(values):,.0f} messages"
            + ("" if values.get("quantum") else ", nominal: this runtime names no quantum")
            + ")"
        )

    def quantum(values: dict[str, float]) -> float:
        return values.get("quantum") or NOMINAL_QUANTUM

    def finish(samples: list[Sample]) -> dict[str, Any]:
        named = [s.values["quantum"] for s in samples if s.values.get("quantum")]
        return {
            "max_lag": max(lags_seen, default=None),
            "backlog": backlog,
            "cells": others,
            "quantum": named[0] if named else NOMINAL_QUANTUM,
            "quantum_named": bool(named),
        }

    return [
        System(
            "stateward",
            measure,
            f"StateManager.request_modify(): {backlog:,} to one cell, then one to each of "
            f"{others} other cells, from one sender; ops/s counts every message",
            detail,
            finish,
        )
    ]
