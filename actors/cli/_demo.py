"""``stateward demo``: a supervised order-processing daemon, run, then verified.

Order machines under one supervisor on a SQLite store, driven by client threads
(blocking transitions, pipelined chains, ``modify`` calls on a totals manager)
while a seeded fraction of transitions crash their actor; then the store is
reopened in a new runtime and checked against what the clients saw acknowledged.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from stateward.actors import (
    ActorCrashed,
    Runtime,
    SQLiteStore,
    StateMachine,
    StateManager,
    Supervisor,
)
from stateward.core import InvalidTransition, MachineBuilder, MachineSpec

# -- the demo's order machine ---------------------------------------------------------

#: The order lifecycle the demo drives; ``delivered -> pending`` starts the next
#: order, so each machine can keep going for as long as the demo runs.
ORDER_MOVES = {
    "pending": ["paid", "cancelled"],
    "paid": ["packed", "cancelled"],
    "packed": ["shipped"],
    "shipped": ["delivered"],
    "delivered": ["pending"],
    "cancelled": ["pending"],
}
#: The path a client pushes each order along.
NEXT = {
    "pending": "paid",
    "paid": "packed",
    "packed": "shipped",
    "shipped": "delivered",
    "delivered": "pending",
    "cancelled": "pending",
}


class InjectedCrash(RuntimeError):
    """The failure the demo injects into a seeded fraction of its transitions."""


def order_spec(history_limit: int = 50) -> MachineSpec:
    """The demo's order machine: an enter hook counts deliveries, and crashes on
    purpose when the payload asks it to."""
    orders = MachineBuilder("pending", ORDER_MOVES, history_limit=history_limit, name="order")

    @orders.on_enter
    def enter(ctx: Any) -> Any:
        if ctx.payload.get("crash"):
            raise InjectedCrash(f"injected crash in {ctx.machine} at version {ctx.version}")
        if ctx.target == "delivered":
            return {"delivered": ctx.data.get("delivered", 0) + 1}
        return None

    return orders.build()


# -- progress -------------------------------------------------------------------------------


class Progress:
    """Live progress: one rewritten line on a terminal, plain lines otherwise."""

    def __init__(self, stream: TextIO, interval: float) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.interval = interval

    def show(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K" + text)
        else:
            self.stream.write("progress: " + text + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


# -- the demo --------------------------------------------------------------------------------


@dataclass
class _Ledger:
    """What the clients saw acknowledged, per machine."""

    acked: dict[str, int] = field(default_factory=dict)
    crashed: dict[str, int] = field(default_factory=dict)
    crashes: int = 0
    refused: int = 0
    modifies: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client(
    index: int,
    machines: list[StateMachine],
    totals: StateManager,
    ledger: _Ledger,
    deadline: float,
    seed: int,
    crash_rate: float,
) -> None:
    rng = random.Random(seed * 1_000 + index)
    acked: dict[str, int] = {}
    crashed: dict[str, int] = {}
    crashes = refused = modifies = 0
    try:
        while time.monotonic() < deadline:
            machine = machines[rng.randrange(len(machines))]
            roll = rng.random()
            if roll < 0.6:  # one blocking transition
                target = NEXT[machine.current_state]
                crash = rng.random() < crash_rate
                try:
                    machine.transition(target, {"crash": True} if crash else None)
                    acked[machine.name] = acked.get(machine.name, 0) + 1
                except ActorCrashed as exc:
                    if not isinstance(exc.cause, InjectedCrash):
                        raise
                    crashes += 1
                    crashed[machine.name] = crashed.get(machine.name, 0) + 1
            elif roll < 0.9:  # a pipelined chain of three
                state = machine.current_state
                replies = []
                for _ in range(3):
                    state = NEXT[state]
                    crash = rng.random() < crash_rate
                    replies.append(
                        machine.request_transition(state, {"crash": True} if crash else None)
                    )
                for reply in replies:
                    try:
                        reply.result()
                        acked[machine.name] = acked.get(machine.name, 0) + 1
                    except ActorCrashed as exc:
                        if not isinstance(exc.cause, InjectedCrash):
                            raise
                        crashes += 1
                        crashed[machine.name] = crashed.get(machine.name, 0) + 1
                    except InvalidTransition:
                        refused += 1  # an earlier link of the chain crashed
            else:  # an atomic read-modify-write
                totals.modify(lambda s: s.update(modifies=s.modifies + 1))
                modifies += 1
    except Exception as exc:  # reported as a failed check, never only logged
        with ledger.lock:
            ledger.errors.append(f"client {index}: {exc!r}")
    with ledger.lock:
        for name, count in acked.items():
            ledger.acked[name] = ledger.acked.get(name, 0) + count
        for name, count in crashed.items():
            ledger.crashed[name] = ledger.crashed.get(name, 0) + count
        ledger.crashes += crashes
        ledger.refused += refused
        ledger.modifies += modifies


def _check_history(machine: StateMachine) -> str | None:
    history = machine.history
    if not history:
        return None if machine.version == 0 else "no history kept"
    if history[-1].version != machine.version or history[-1].to_state != machine.current_state:
        return (
            f"history ends at v{history[-1].version} {history[-1].to_state!r}, machine is "
            f"v{machine.version} {machine.current_state!r}"
        )
    for earlier, later in itertools.pairwise(history):
        if later.version != earlier.version + 1 or later.from_state != earlier.to_state:
            return f"history breaks between v{earlier.version} and v{later.version}"
        if later.to_state not in ORDER_MOVES[later.from_state]:
            return f"v{later.version} moved {later.from_state!r} -> {later.to_state!r}"
    return None


def run_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    folder = None
    if args.store:
        path = Path(args.store)
    else:
        folder = tempfile.mkdtemp(prefix="stateward-demo-")
        path = Path(folder) / "demo.db"
    progress = Progress(err if args.json else out, 1.0)
    spec = order_spec()
    ledger = _Ledger()

    def say(text: str) -> None:
        if not args.json:
            print(text, file=out, flush=True)

    say(
        f"stateward demo: {args.machines} order machines, {args.clients} clients, "
        f"{args.seconds:g} s, crash rate {args.crash_rate:g}, store {path} ({args.durability})"
    )

    started = time.monotonic()
    with Runtime("demo", store=SQLiteStore(path, durability=args.durability)) as runtime:
        orders = Supervisor(
            "orders", runtime=runtime, strategy="one_for_one", max_restarts=1_000_000, within=1.0
        )
        machines = [
            StateMachine(
                spec, name=f"order-{i:04d}", runtime=runtime, supervisor=orders, on_error="restart"
            )
            for i in range(args.machines)
        ]
        totals = StateManager({"modifies": 0}, name="totals", runtime=runtime, supervisor=orders)
        base = {m.name: m.version for m in machines}
        base_modifies = totals.get_state().modifies
        deadline = time.monotonic() + args.seconds
        share = [machines[i :: args.clients] for i in range(args.clients)]
        clients = [
            threading.Thread(
                target=_client,
                name=f"demo-client-{i}",
                args=(i, share[i], totals, ledger, deadline, args.seed, args.crash_rate),
            )
            for i in range(args.clients)
            if share[i]
        ]
        for thread in clients:
            thread.start()
        driving = time.monotonic()  # the rate counts the clients' time only
        last_total, last_time = 0, driving
        while any(t.is_alive() for t in clients):
            for thread in clients:
                thread.join(progress.interval / max(1, len(clients)))
            now = time.monotonic()
            if now - last_time >= progress.interval or not any(t.is_alive() for t in clients):
                total = sum(m.version for m in machines) - sum(base.values())
                stats = runtime.stats()
                depth = sum(s.queue_depth for s in stats.values())
                progress.show(
                    f"{now - started:5.1f} s  {total:8,d} transitions  "
                    f"{(total - last_total) / (now - last_time):8,.0f}/s  "
                    f"restarts {stats.events['restarted']:4d}  queued {depth:3d}"
                )
                last_total, last_time = total, now
        progress.done()
        elapsed = time.monotonic() - driving
        restarts = {m.name: m.restarts for m in machines}
    say(
        f"clients ran {elapsed:.1f} s ({time.monotonic() - started:.1f} s with start-up "
        "and shutdown); reopening the store to verify"
    )

    checks: dict[str, dict[str, Any]] = {}
    transitions = sum(ledger.acked.values())
    with Runtime("verify", store=SQLiteStore(path, durability=args.durability)) as runtime:
        reopened = [
            StateMachine(spec, name=f"order-{i:04d}", runtime=runtime) for i in range(args.machines)
        ]
        totals = StateManager({"modifies": 0}, name="totals", runtime=runtime)
        missing = [
            f"{m.name}: v{m.version}, expected v{base[m.name] + ledger.acked.get(m.name, 0)}"
            for m in reopened
            if m.version != base[m.name] + ledger.acked.get(m.name, 0)
        ]
        checks["every acknowledged transition is stored"] = {
            "ok": not missing and not ledger.errors,
            "detail": "; ".join((ledger.errors + missing)[:5])
            or f"{transitions} transitions on {len(reopened)} machines",
        }
        lost = totals.get_state().modifies - base_modifies - ledger.modifies
        checks["no update was lost"] = {
            "ok": lost == 0,
            "detail": f"{ledger.modifies} modifies acknowledged, "
            f"{totals.get_state().modifies - base_modifies} stored",
        }
        broken = [
            f"{m.name}: {problem}" for m in reopened if (problem := _check_history(m)) is not None
        ]
        checks["each history is consistent with its state"] = {
            "ok": not broken,
            "detail": "; ".join(broken[:5]) or "all consistent",
        }
        mismatched = [
            f"{name}: {count} restarts for {ledger.crashed.get(name, 0)} crashes"
            for name, count in restarts.items()
            if count != ledger.crashed.get(name, 0)
        ]
        checks["restarts match the crashes injected"] = {
            "ok": not mismatched,
            "detail": "; ".join(mismatched[:5])
            or f"{ledger.crashes} crashes injected, {sum(restarts.values())} restarts, "
            "machine by machine",
        }
    ok = all(c["ok"] for c in checks.values())
    report = {
        "ok": ok,
        "store": str(path),
        "durability": args.durability,
        "machines": args.machines,
        "clients": args.clients,
        "seconds": round(elapsed, 2),
        "transitions": transitions,
        "transitions_per_s": round(transitions / elapsed, 1),
        "modifies": ledger.modifies,
        "crashes_injected": ledger.crashes,
        "restarts": sum(restarts.values()),
        "refused_after_crash": ledger.refused,
        "checks": checks,
    }
    if args.json:
        print(json.dumps(report, indent=2), file=out)
    else:
        say(
            f"{transitions:,} transitions ({transitions / elapsed:,.0f}/s), "
            f"{ledger.modifies:,} modifies, {ledger.crashes} crashes injected, "
            f"{sum(restarts.values())} restarts"
        )
        for name, check in checks.items():
            say(f"  [{'ok' if check['ok'] else 'FAILED'}] {name}: {check['detail']}")
        say("all checks passed" if ok else "SOME CHECKS FAILED")
    if folder is not None and ok:
        for leftover in Path(folder).iterdir():
            leftover.unlink()
        os.rmdir(folder)
    return 0 if ok else 1
