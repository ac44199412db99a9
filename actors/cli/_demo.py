"""``stateward demo``: a supervised order-processing daemon, run, measured, then verified.

Order machines (100,000 by default) under one supervisor on a SQLite store,
driven by client threads (blocking transitions, pipelined chains, fan-outs,
``modify`` calls on a totals manager) while a seeded fraction of transitions
crash their machine; then the runtime shuts down, the store is reopened in a
new runtime and checked against what the clients saw acknowledged. The report
gives the machines, the threads, the memory per machine, the creation rate,
the transitions per second and the shutdown time, all measured in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from stateward.actors import (
    Runtime,
    ShutdownReport,
    SQLiteStore,
    StateMachine,
    StateManager,
    Supervisor,
    SupervisorEvent,
)
from stateward.actors._pool_host import DEFAULT_WORKERS
from stateward.core import MachineSpec, StatewardError

from . import _demo_orders
from ._demo_args import DEFAULT_SHARDS
from ._demo_measure import SAMPLE_EVERY, Memory, Progress
from ._demo_orders import Ledger, client, order_spec
from ._demo_ray import RayHost
from ._demo_report import Phase, Run, build_report, print_report, workers_label
from ._usage import UsageError

__all__ = ["run_demo"]

#: Seconds `Runtime.shutdown` may take: generous, and growing with the count,
#: so that a slow shutdown shows in the report instead of abandoning actors.
SHUTDOWN_BASE_S = 30.0
SHUTDOWN_PER_MACHINE_S = 0.002
#: Seconds to wait for the runtime's threads to end once it has shut down.
THREADS_BACK_S = 10.0


class ThreadsExhausted(StatewardError, RuntimeError):
    """The process could not start another thread while creating a machine."""

    def __init__(self, name: str, created: int, threads: int, workers: int | None) -> None:
        self.name, self.created, self.threads, self.workers = name, created, threads, workers
        advice = (
            "with --workers 0 every machine needs a thread of its own: leave --workers out "
            f"(a pool of {DEFAULT_WORKERS}) or ask for fewer machines"
            if workers == 0
            else "ask for fewer machines, or raise the process's thread limit (ulimit -u)"
        )
        super().__init__(
            f"could not start a thread for machine {name!r} after {created:,} machines "
            f"({threads:,} threads running): {advice}"
        )


def _names(count: int) -> list[str]:
    return [f"order-{i:04d}" for i in range(count)]


def _create(
    run: Run, progress: Progress, verb: str, make: Callable[[str], StateMachine]
) -> list[StateMachine]:
    """Make the machines, one per name with ``make``, showing progress and sampling
    the thread count as it goes."""
    names = _names(run.args.machines)
    machines: list[StateMachine] = []
    started = time.monotonic()
    progress.restart()
    for index, name in enumerate(names):
        try:
            machines.append(make(name))
        except RuntimeError as exc:
            if "start new thread" not in str(exc):
                raise
            raise ThreadsExhausted(name, index, run.threads.sample(), run.args.workers) from exc
        if index % SAMPLE_EVERY == 0:
            run.threads.sample()
            if progress.due():
                elapsed = time.monotonic() - started
                progress.show(
                    f"{verb:<10} {elapsed:6.1f} s  {index + 1:9,d} of {len(names):,} machines  "
                    f"{(index + 1) / elapsed:8,.0f}/s  threads {run.threads.sample():3d}"
                )
    progress.done()
    run.threads.sample()
    return machines


def _drive(
    run: Run,
    progress: Progress,
    machines: list[StateMachine],
    totals: StateManager,
    ledger: Ledger,
    restarts: Callable[[], int],
) -> None:
    """Run the clients for ``--seconds``, each on its own share of the machines."""
    args = run.args
    share = [machines[i :: args.clients] for i in range(args.clients)]
    # The driving phase is timed from the moment its deadline is set, so that it
    # never reports less than --seconds (making the threads takes time when loaded).
    started = time.monotonic()
    deadline = started + args.seconds
    clients = [
        threading.Thread(
            target=client,
            name=f"demo-client-{i}",
            args=(i, share[i], totals, ledger, deadline, args.seed, args.crash_rate),
        )
        for i in range(args.clients)
        if share[i]
    ]
    run.peak_clients = len(clients)
    progress.restart()
    for thread in clients:
        thread.start()
    last_total, last_time = 0, started
    while alive := [t for t in clients if t.is_alive()]:
        alive[0].join(min(0.1, progress.interval))
        run.threads.sample()
        if progress.due():
            now, total = time.monotonic(), sum(ledger.live)
            progress.show(
                f"{'driving':<10} {now - started:6.1f} s  {total:9,d} transitions  "
                f"{(total - last_total) / (now - last_time):8,.0f}/s  restarts {restarts():4d}  "
                f"threads {run.threads.sample():3d}"
            )
            last_total, last_time = total, now
    progress.done()
    run.driving = Phase(sum(ledger.acked.values()), time.monotonic() - started)


def _shut_down(run: Run, progress: Progress, host: Any) -> None:
    """Shut ``host``'s runtime down (on a helper thread, so progress can show),
    time it, and wait for its threads to end. A shutdown that raises leaves no
    report: the "every actor and thread stopped" check then fails, saying so."""
    done: list[ShutdownReport] = []
    timeout = SHUTDOWN_BASE_S + SHUTDOWN_PER_MACHINE_S * run.args.machines

    def stop() -> None:
        try:
            done.append(host.shutdown(timeout))
        except Exception as exc:  # reported by the check, never lost
            run.shutdown_error = f"{type(exc).__name__}: {exc}"

    stopper = threading.Thread(target=stop, name="demo-shutdown", daemon=True)
    started = time.monotonic()
    progress.restart()
    stopper.start()
    while stopper.is_alive():
        stopper.join(min(0.1, progress.interval))
        run.threads.sample()
        if progress.due():
            progress.show(
                f"{'stopping':<10} {time.monotonic() - started:6.1f} s  "
                f"{host.running():9,d} actors still running"
            )
    progress.done()
    run.stopping = Phase(run.args.machines, time.monotonic() - started)
    run.shutdown = done[0] if done else None
    run.threads_after = run.threads.wait_back(THREADS_BACK_S)


def _verify(run: Run, progress: Progress, spec: MachineSpec, ledger: Ledger, base: Any) -> None:
    """Reopen the store in a new runtime and check it against the ledger."""
    args, checks = run.args, run.checks
    base_versions, base_modifies = base
    timeout = SHUTDOWN_BASE_S + SHUTDOWN_PER_MACHINE_S * args.machines
    runtime = Runtime("verify", store=SQLiteStore(run.path, durability=args.durability))
    try:
        started = time.monotonic()
        reopened = _create(
            run, progress, "recovering", lambda name: StateMachine(spec, name=name, runtime=runtime)
        )
        run.recovery = Phase(len(reopened), time.monotonic() - started)
        stored_modifies = (
            StateManager({"modifies": 0}, name="totals", runtime=runtime).get_state().modifies
        )
        missing = [
            f"{m.name}: v{m.version}, expected v{base_versions[i] + ledger.acked.get(m.name, 0)}"
            for i, m in enumerate(reopened)
            if m.version != base_versions[i] + ledger.acked.get(m.name, 0)
        ]
        checks["every acknowledged transition is stored"] = {
            "ok": not missing and not ledger.errors,
            "detail": "; ".join((ledger.errors + missing)[:5])
            or f"{run.driving.count} transitions on {len(reopened)} machines",
        }
        checks["no update was lost"] = {
            "ok": stored_modifies - base_modifies == ledger.modifies,
            "detail": f"{ledger.modifies} modifies acknowledged, "
            f"{stored_modifies - base_modifies} stored",
        }
        broken = [
            f"{m.name}: {problem}"
            for m in reopened
            if (problem := _demo_orders.check_history(m)) is not None
        ]
        checks["each history is consistent with its state"] = {
            "ok": not broken,
            "detail": "; ".join(broken[:5]) or "all consistent",
        }
    finally:
        runtime.shutdown(timeout)
    mismatched = [
        f"{name}: {count} restarts for {ledger.crashed.get(name, 0)} crashes"
        for name, count in run.restarts.items()
        if count != ledger.crashed.get(name, 0)
    ]
    checks["restarts match the crashes injected"] = {
        "ok": not mismatched,
        "detail": "; ".join(mismatched[:5])
        or f"{ledger.crashes} crashes injected, {sum(run.restarts.values())} restarts, "
        "machine by machine",
    }
    report = run.shutdown
    leftover = run.threads_after - run.threads.start
    checks["every actor and thread stopped"] = {
        "ok": report is not None and report.clean and leftover == 0,
        "detail": (
            f"shutdown did not finish{': ' + run.shutdown_error if run.shutdown_error else ''}"
            if report is None
            else f"{report.describe()}; {leftover} threads left"
            if not report.clean or leftover
            else f"threads back to {run.threads.start}"
        ),
    }


class _LocalHost:
    """The demo's machines in this process: a `Runtime` on the store, every
    machine under one supervisor that restarts it when a hook crashes."""

    crash_restarts = True

    def __init__(self, args: argparse.Namespace, path: Path) -> None:
        self.spec = order_spec()
        self.label = workers_label(args)
        self.runtime = Runtime(
            "demo", store=SQLiteStore(path, durability=args.durability), workers=args.workers
        )
        self._lock, self._restarts = threading.Lock(), 0
        self.runtime.subscribe(self._count_restarts)
        self.orders = Supervisor(
            "orders",
            runtime=self.runtime,
            strategy="one_for_one",
            max_restarts=1_000_000,
            within=1.0,
        )

    def _count_restarts(self, event: SupervisorEvent) -> None:
        if event.kind == "restarted":
            with self._lock:
                self._restarts += 1

    def restarts(self) -> int:
        return self._restarts

    def machine(self, name: str) -> StateMachine:
        return StateMachine(
            self.spec, name=name, runtime=self.runtime, supervisor=self.orders, on_error="restart"
        )

    def totals(self) -> StateManager:
        return StateManager(
            {"modifies": 0}, name="totals", runtime=self.runtime, supervisor=self.orders
        )

    def start(self, say: Callable[[str], None]) -> None:
        """Nothing to start: the runtime runs in this process."""

    def running(self) -> int:
        return len(self.runtime.names())

    def shutdown(self, timeout: float) -> ShutdownReport:
        return self.runtime.shutdown(timeout)


#: The Ray demo's check in place of "restarts match the crashes injected".
RAY_CRASH_CHECK = "each injected crash failed only its own transition"


def _crashes_failed_alone(run: Run, ledger: Ledger) -> None:
    """On Ray, replace the restarts check: a shard's actors run with
    ``on_error="fail"``, so an injected crash fails its own transition (the
    caller gets the `InjectedCrash`) and the machine keeps its state, which the
    stored versions show; no restart is expected."""
    restarted = sum(run.restarts.values())
    ok = not ledger.errors and restarted == 0
    checks = run.checks = {
        (RAY_CRASH_CHECK if name == "restarts match the crashes injected" else name): check
        for name, check in run.checks.items()
    }
    checks[RAY_CRASH_CHECK] = {
        "ok": ok,
        "detail": f"{ledger.crashes} crashes injected, each answered to its caller with "
        f"its InjectedCrash, {restarted} restarts (on a RayRuntime a hook's exception fails "
        "its request; the machine keeps its state)"
        if ok
        else "; ".join(ledger.errors[:5]) or f"{restarted} restarts, none expected",
    }


def run_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run ``stateward demo`` with the parsed ``args``; return its exit code."""
    if args.shards is not None and not args.ray:
        raise UsageError("--shards goes with --ray (the shards of a RayRuntime)")
    if args.ray and args.shards is None:
        args.shards = DEFAULT_SHARDS
    folder = None
    if args.store:
        path = Path(args.store)
    else:
        folder = tempfile.mkdtemp(prefix="stateward-demo-")
        path = Path(folder) / "demo.db"
    run = Run(args, path)
    progress = Progress(err if args.json else out, args.progress_every)
    ledger = Ledger(args.clients)
    memory = Memory(args.memory)

    def say(text: str) -> None:
        if not args.json:
            print(text, file=out, flush=True)

    host: _LocalHost | RayHost = RayHost(args, path) if args.ray else _LocalHost(args, path)
    run.host_label = host.label
    say(
        f"stateward demo: {args.machines:,} order machines, {args.clients} clients for "
        f"{args.seconds:g} s, crash rate {args.crash_rate:g}, seed {args.seed}, {host.label}"
    )
    say(f"store {path} ({args.durability})")
    wall = time.monotonic()
    host.start(say)
    run.cluster_folder = getattr(host, "folder", None)
    try:
        totals = host.totals()
        memory.begin()
        started = time.monotonic()
        machines = _create(run, progress, "creating", host.machine)
        run.creation = Phase(len(machines), time.monotonic() - started)
        memory.end()
        say(
            f"created {run.creation.count:,} machines in {run.creation.seconds:.1f} s "
            f"({run.creation.rate:,.0f}/s)"
        )
        base = ([m.version for m in machines], totals.get_state().modifies)
        _drive(run, progress, machines, totals, ledger, host.restarts)
        run.restarts = {m.name: m.restarts for m in machines}
        del machines, totals
        say(f"clients ran {run.driving.seconds:.1f} s; shutting down")
    finally:
        _shut_down(run, progress, host)
    say(f"shut down in {run.stopping.seconds:.1f} s; reopening the store to verify")
    _verify(run, progress, host.spec, ledger, base)
    if not host.crash_restarts:
        _crashes_failed_alone(run, ledger)
    say(f"recovered {run.recovery.count:,} machines in {run.recovery.seconds:.1f} s")
    report = build_report(run, ledger, memory, time.monotonic() - wall)
    # A store the demo made for itself is removed once every check passed.
    report["store_kept"] = folder is None or not report["ok"]
    if args.json:
        print(json.dumps(report, indent=2), file=out)
    else:
        print_report(run, report, memory, out)
    if folder is not None and report["ok"]:
        for leftover in Path(folder).iterdir():
            leftover.unlink()
        os.rmdir(folder)
    return 0 if report["ok"] else 1
