"""What the demo measured, and its report: as text, and as JSON (``--json``)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from stateward.actors import ShutdownReport
from stateward.actors._pool_host import DEFAULT_WORKERS

from ._demo_measure import Memory, Threads, size
from ._demo_orders import Ledger


@dataclass
class Phase:
    """How long one phase took and how many things it handled."""

    count: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Run:
    """Everything the demo measured."""

    args: argparse.Namespace
    path: Path
    threads: Threads = field(default_factory=Threads)
    creation: Phase = field(default_factory=Phase)
    driving: Phase = field(default_factory=Phase)
    stopping: Phase = field(default_factory=Phase)
    recovery: Phase = field(default_factory=Phase)
    shutdown: ShutdownReport | None = None
    threads_after: int = 0
    peak_clients: int = 0
    restarts: dict[str, int] = field(default_factory=dict)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: What hosts the machines, as the report shows it ("4 workers", "2 Ray shards, ...").
    host_label: str = ""
    #: Why the shutdown raised, when it did.
    shutdown_error: str = ""
    #: ``--ray``: the folder the local cluster kept its files in (removed at its end).
    cluster_folder: str | None = None


def workers_label(args: argparse.Namespace) -> str:
    workers = DEFAULT_WORKERS if args.workers is None else args.workers
    return "a thread per machine" if workers == 0 else f"{workers} workers"


def build_report(run: Run, ledger: Ledger, memory: Memory, wall: float) -> dict[str, Any]:
    args, shutdown = run.args, run.shutdown
    return {
        "ok": all(c["ok"] for c in run.checks.values()),
        "store": str(run.path),
        "durability": args.durability,
        "machines": args.machines,
        "workers": DEFAULT_WORKERS if args.workers is None else args.workers,
        "ray": {"shards": args.shards, "cluster_folder": run.cluster_folder} if args.ray else None,
        "clients": args.clients,
        "seed": args.seed,
        "threads": {
            "before": run.threads.start,
            "peak": run.threads.peak,
            "clients": run.peak_clients,
            "after_shutdown": run.threads_after,
        },
        "memory_per_machine": {
            "bytes": round(memory.bytes / args.machines),
            "method": args.memory,
            "total_bytes": memory.bytes,
        },
        "creation": {
            "seconds": round(run.creation.seconds, 2),
            "machines_per_s": round(run.creation.rate, 1),
        },
        "seconds": round(run.driving.seconds, 2),
        "transitions": run.driving.count,
        "transitions_per_s": round(run.driving.rate, 1),
        "modifies": ledger.modifies,
        "crashes_injected": ledger.crashes,
        "restarts": sum(run.restarts.values()),
        "refused_after_crash": ledger.refused,
        "shutdown_s": round(run.stopping.seconds, 2),
        "shutdown_clean": shutdown is not None and shutdown.clean,
        "recovery": {
            "seconds": round(run.recovery.seconds, 2),
            "machines_per_s": round(run.recovery.rate, 1),
        },
        "wall_s": round(wall, 2),
        "checks": run.checks,
    }


def print_report(run: Run, report: dict[str, Any], memory: Memory, out: TextIO) -> None:
    """The report as text: the same numbers as ``--json``, unrounded until shown."""
    threads = report["threads"]
    lines = [
        "",
        f"machines            {run.args.machines:,} ({run.host_label or workers_label(run.args)})",
        f"threads             {threads['before']} before, {threads['peak']} at peak "
        f"({threads['clients']} of them clients), {threads['after_shutdown']} after shutdown",
        f"memory per machine  {size(memory.bytes / run.args.machines)} ({memory.label}: "
        f"{size(memory.bytes)} in all)",
        f"creation            {run.creation.rate:,.0f} machines/s ({run.creation.seconds:.1f} s)",
        f"transitions         {run.driving.rate:,.0f}/s ({run.driving.count:,} "
        f"acknowledged in {run.driving.seconds:.1f} s; {report['modifies']:,} modifies, "
        f"{report['crashes_injected']:,} crashes injected, {report['restarts']:,} restarts, "
        f"{report['refused_after_crash']:,} refused after a crash)",
        f"shutdown            {run.stopping.seconds:.1f} s",
        f"recovery            {run.recovery.rate:,.0f} machines/s "
        f"({run.recovery.seconds:.1f} s, reopened to verify)",
        f"wall time           {report['wall_s']:.1f} s",
    ]
    lines += [
        f"  [{'ok' if check['ok'] else 'FAILED'}] {name}: {check['detail']}"
        for name, check in report["checks"].items()
    ]
    lines.append("all checks passed" if report["ok"] else "SOME CHECKS FAILED")
    if not report.get("store_kept", True):
        lines.append(
            f"removed the demo's temporary store {report['store']} (--store PATH keeps one)"
        )
    print("\n".join(lines), file=out, flush=True)
