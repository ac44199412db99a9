"""The ``stateward`` command: ``demo``, ``inspect`` and ``graph``.

    stateward demo [--machines 200] [--clients 8] [--seconds 5] [--store PATH] [--json]
    stateward inspect PATH [--history NAME] [--json]
    stateward graph MODULE:ATTR [--format mermaid|dot]

Also runnable as ``python -m stateward.actors``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import itertools
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from stateward.core import (
    InvalidTransition,
    MachineBuilder,
    MachineSpec,
    StatewardError,
    thaw,
)
from stateward.core._persist import ConfigCodec, MachineCodec, ManagerCodec

from ._errors import ActorCrashed, StoreError
from ._handles import StateMachine, StateManager
from ._runtime import Runtime
from ._supervisor import Supervisor
from .stores._sqlite import DURABILITY_MODES, SQLiteStore

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


# -- inspect ------------------------------------------------------------------------------


def _codec_for(store: SQLiteStore, name: str, kind: str) -> Any:
    if kind == "manager":
        return ManagerCodec()
    if kind == "config":
        return ConfigCodec()
    definition = store.definition(name)
    spec = MachineSpec(
        definition["initial"],
        thaw(definition["transitions"]),
        states=list(definition["states"]),
        history_limit=1_000_000,
    )
    return MachineCodec(spec)


def _summary(kind: str, value: Any) -> str:
    if kind == "machine":
        return f"state {value.state!r}"
    if kind == "manager":
        return "keys " + ", ".join(sorted(value.state)) if value.state else "empty"
    return f"config {', '.join(sorted(value.config))}" if value.config else "empty config"


def _when(epoch: float) -> str:
    return _dt.datetime.fromtimestamp(epoch, _dt.UTC).isoformat(timespec="seconds")


def run_inspect(args: argparse.Namespace, out: TextIO) -> int:
    store = SQLiteStore(args.path, readonly=True)
    try:
        listed = store.actors()
        if args.history is not None:
            return _print_history(store, listed, args, out)
        rows = []
        for actor in listed:
            value = store.recover(actor.name, _codec_for(store, actor.name, actor.kind))
            rows.append(
                {
                    "name": actor.name,
                    "kind": actor.kind,
                    "version": actor.version,
                    "current": _summary(actor.kind, value),
                    "last_change": _when(actor.updated_at),
                    "owner": actor.owner,
                }
            )
    finally:
        store.close()
    if args.json:
        print(json.dumps({"store": str(args.path), "actors": rows}, indent=2), file=out)
        return 0
    print(f"{len(rows)} actors in {args.path}", file=out)
    widths = [
        max([len(h)] + [len(str(r[k])) for r in rows])
        for h, k in (
            ("NAME", "name"),
            ("KIND", "kind"),
            ("VERSION", "version"),
            ("CURRENT", "current"),
        )
    ]
    header = ("NAME", "KIND", "VERSION", "CURRENT", "LAST CHANGE")
    print(
        "  ".join(h.ljust(w) for h, w in zip(header, [*widths, 0], strict=True)).rstrip(), file=out
    )
    for r in rows:
        cells = (r["name"], r["kind"], str(r["version"]), r["current"], r["last_change"])
        print(
            "  ".join(str(c).ljust(w) for c, w in zip(cells, [*widths, 0], strict=True)).rstrip(),
            file=out,
        )
    return 0


def _print_history(
    store: SQLiteStore, listed: list[Any], args: argparse.Namespace, out: TextIO
) -> int:
    found = [a for a in listed if a.name == args.history]
    if not found:
        names = ", ".join(a.name for a in listed[:10]) or "none"
        raise _UsageError(f"no actor named {args.history!r} in {args.path} (actors: {names})")
    actor = found[0]
    value = store.recover(actor.name, _codec_for(store, actor.name, actor.kind))
    entries: list[dict[str, Any]] = []
    if actor.kind == "machine":
        entries = [
            {
                "version": r.version,
                "from": r.from_state,
                "to": r.to_state,
                "event": r.event,
                "at": r.at.isoformat() if r.at else None,
                "payload_keys": list(r.payload_keys),
            }
            for r in value.history
        ]
    elif actor.kind == "config":
        entries = [
            {
                "version": e.version,
                "changes": thaw(e.changes),
                "removed": list(e.removed),
                "metadata": thaw(e.metadata),
                "at": e.at.isoformat(),
            }
            for e in value.entries
        ]
    else:
        entries = [{"version": value.version, "state": thaw(value.state)}]
    if args.json:
        print(
            json.dumps(
                {"name": actor.name, "kind": actor.kind, "history": entries}, indent=2, default=str
            ),
            file=out,
        )
        return 0
    print(
        f"{actor.kind} {actor.name!r}, version {actor.version}, {_summary(actor.kind, value)}",
        file=out,
    )
    for entry in entries:
        detail = ", ".join(f"{k}={v}" for k, v in entry.items() if k != "version")
        print(f"  v{entry['version']}: {detail}", file=out)
    return 0


# -- graph ------------------------------------------------------------------------------------


def load_spec(target: str) -> MachineSpec:
    """The machine definition named ``MODULE:ATTR`` (a spec, a builder, a machine,
    or anything with a ``spec``)."""
    module_name, colon, attribute = target.partition(":")
    if not colon or not module_name or not attribute:
        raise _UsageError(
            f"expected MODULE:ATTR, got {target!r} (for example 'myapp.orders:order_flow')"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        value: Any = importlib.import_module(module_name)
    except ImportError as exc:
        hint = ""
        if "/" in module_name or module_name.endswith(".py"):
            hint = (
                "; give a module name, not a file path (for example "
                "'examples.named_events:spec', run from the project folder)"
            )
        raise _UsageError(f"cannot import module {module_name!r}: {exc}{hint}") from exc
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise _UsageError(f"{module_name!r} has no attribute {attribute!r}") from None
    if isinstance(value, MachineBuilder):
        return value.build()
    if isinstance(value, MachineSpec):
        return value
    spec = getattr(value, "spec", None)
    if isinstance(spec, MachineSpec):
        return spec
    raise _UsageError(
        f"{target} is a {type(value).__name__}, not a machine definition "
        "(MachineSpec, MachineBuilder, StateMachine or RowMachines)"
    )


def _edges(spec: MachineSpec) -> list[tuple[str, str, str]]:
    return [
        (source, target, ", ".join(spec.events_between(source, target)))
        for source in spec.states
        for target in spec.transitions[source]
    ]


def to_mermaid(spec: MachineSpec) -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {spec.initial}"]
    for source, target, label in _edges(spec):
        lines.append(f"    {source} --> {target}" + (f" : {label}" if label else ""))
    lines += [f"    {state} --> [*]" for state in spec.terminal_states]
    return "\n".join(lines) + "\n"


def to_dot(spec: MachineSpec, name: str | None = None) -> str:
    name = name or spec.name or "machine"
    lines = [
        f"digraph {json.dumps(name)} {{",
        "    rankdir=LR;",
        "    node [shape=circle];",
        '    "__start__" [shape=point, label=""];',
        f'    "__start__" -> {json.dumps(spec.initial)};',
    ]
    lines += [f"    {json.dumps(state)} [shape=doublecircle];" for state in spec.terminal_states]
    for source, target, label in _edges(spec):
        attrs = f" [label={json.dumps(label)}]" if label else ""
        lines.append(f"    {json.dumps(source)} -> {json.dumps(target)}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def run_graph(args: argparse.Namespace, out: TextIO) -> int:
    spec = load_spec(args.target)
    name = args.target.partition(":")[2]
    out.write(to_mermaid(spec) if args.format == "mermaid" else to_dot(spec, name))
    return 0


# -- the command line --------------------------------------------------------------------------


class _UsageError(Exception):
    """A bad argument: exit code 2, like argparse's own."""


_SUBPARSERS: dict[str, argparse.ArgumentParser] = {}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {value}")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stateward",
        description="Actor-based concurrent state: state machines, stores and versioned "
        "config that many threads and coroutines change at once.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _SUBPARSERS.clear()

    demo = commands.add_parser(
        "demo",
        help="run a supervised order-processing daemon, then verify what it stored",
        description="Start order machines under a supervisor on a SQLite store, drive them "
        "from client threads with blocking and pipelined transitions and modify "
        "calls while crashing a seeded fraction of them, then shut down, reopen "
        "the store and verify that every acknowledged transition is there, no "
        "update was lost, each history fits its state, and the restarts match "
        "the crashes. Exits 1 if any check fails.",
    )
    demo.add_argument(
        "--machines", type=_positive_int, default=200, help="order machines to start (default 200)"
    )
    demo.add_argument(
        "--clients", type=_positive_int, default=8, help="client threads driving them (default 8)"
    )
    demo.add_argument(
        "--seconds", type=_positive_float, default=5.0, help="how long the clients run (default 5)"
    )
    demo.add_argument(
        "--store",
        metavar="PATH",
        help="the SQLite store (default: a new file in a temporary folder, "
        "removed when every check passed)",
    )
    demo.add_argument(
        "--durability",
        choices=DURABILITY_MODES,
        default="batched",
        help="the store's durability mode (default batched: every reply "
        "waits for its fsync, shared with other commits)",
    )
    demo.add_argument(
        "--crash-rate",
        type=_rate,
        default=0.01,
        help="the fraction of transitions that crash their actor (default 0.01)",
    )
    demo.add_argument("--seed", type=int, default=1, help="seed for the clients (default 1)")
    demo.add_argument(
        "--json", action="store_true", help="print the report as JSON (progress goes to stderr)"
    )

    inspect = commands.add_parser(
        "inspect",
        help="list the actors in a store, or one actor's history",
        description="List every actor in a SQLite store: name, kind, version, current state "
        "(or keys) and last change. Opens the file read-only.",
    )
    inspect.add_argument("path", metavar="PATH", help="the store file")
    inspect.add_argument("--history", metavar="NAME", help="show this actor's history")
    inspect.add_argument("--json", action="store_true", help="print JSON")

    graph = commands.add_parser(
        "graph",
        help="draw a machine definition as Mermaid or Graphviz dot",
        description="Draw the machine named MODULE:ATTR (a MachineSpec, a MachineBuilder, a "
        "StateMachine or a RowMachines) with its initial and terminal states "
        "marked and event names on the edges.",
    )
    graph.add_argument("target", metavar="MODULE:ATTR", help="for example myapp.orders:flow")
    graph.add_argument(
        "--format",
        choices=("mermaid", "dot"),
        default="mermaid",
        help="the output format (default mermaid)",
    )
    _SUBPARSERS.update(demo=demo, inspect=inspect, graph=graph)
    return parser


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the command; return its exit code (0 ok, 1 failed, 2 bad arguments)."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            return run_demo(args, out, err)
        if args.command == "inspect":
            return run_inspect(args, out)
        return run_graph(args, out)
    except _UsageError as exc:
        _SUBPARSERS[args.command].print_usage(err)
        print(f"stateward {args.command}: error: {exc}", file=err)
        return 2
    except (StoreError, StatewardError) as exc:
        print(f"stateward {args.command}: error: {exc}", file=err)
        return 1
    except KeyboardInterrupt:
        print(f"stateward {args.command}: interrupted", file=err)
        return 130


def entry_point() -> None:
    """The console script."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``stateward inspect ... | head``): not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0
    sys.exit(code)
