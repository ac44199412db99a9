"""``stateward demo --ray``: the demo's machines on a local Ray cluster that
the command starts and stops itself.

The cluster keeps every file in a temporary folder (removed at the end) and,
with ``RAY_AUTH_MODE=disabled``, writes nothing into the home directory. The
machines live on ``--shards`` shards of a `RayRuntime` over the demo's
SQLite store; the clients, the checks and the report are the plain demo's
(`_demo.run_demo`). What differs on Ray: a shard's actors run with
``on_error="fail"`` (a hook's exception fails its own request and the machine
keeps its state, so an injected crash restarts nothing), and the memory per
machine is the client process's.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stateward.actors import ShutdownReport, SQLiteStore, StateMachine, StateManager
from stateward.actors.ray import RayRuntime
from stateward.core import StatewardError

from ._demo_orders import ORDER

#: What the Ray workers must see in their environment: no token file in ~/.ray.
RAY_ENV = {"RAY_AUTH_MODE": "disabled"}


class RayMissing(StatewardError, ImportError):
    """``stateward demo --ray`` was asked for and Ray is not installed."""

    def __init__(self) -> None:
        super().__init__(
            "--ray runs the demo on a local Ray cluster, and Ray is not installed: "
            "pip install 'stateward[ray]' (or leave --ray out)"
        )


class RayHost:
    """The demo's machines on a `RayRuntime` over a local cluster started here.

    ``shutdown`` stops the shards (they drain and close the store), then the
    cluster, and removes the cluster's folder.
    """

    crash_restarts = False

    def __init__(self, args: argparse.Namespace, path: Path) -> None:
        try:
            import ray
        except ImportError:
            raise RayMissing() from None
        if ray.is_initialized():
            raise StatewardError(
                "this process is already connected to Ray; --ray starts a cluster of its own"
            )
        self.args, self.path = args, path
        self.spec = ORDER
        self.workers = 2 if args.workers is None else args.workers
        self.label = f"{args.shards} Ray shards, {self.workers} workers each"

    def start(self, say: Callable[[str], None]) -> None:
        """Start the cluster, and the shards over the store."""
        import ray

        args = self.args
        self.folder = tempfile.mkdtemp(prefix="stateward-demo-ray-")
        self._saved = {name: os.environ.get(name) for name in RAY_ENV}
        os.environ.update(RAY_ENV)
        started = time.monotonic()
        say(f"starting a local Ray cluster (files in {self.folder})")
        try:
            ray.init(
                include_dashboard=False,
                _temp_dir=self.folder,
                runtime_env={"env_vars": dict(RAY_ENV)},
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
            self.runtime: Any = RayRuntime(
                SQLiteStore(self.path, durability=args.durability),
                shards=args.shards,
                workers=self.workers,
            )
        except BaseException:
            self._stop_cluster()
            raise
        say(f"Ray cluster up with {args.shards} shards in {time.monotonic() - started:.1f} s")

    def restarts(self) -> int:
        return 0

    def machine(self, name: str) -> StateMachine:
        return StateMachine(self.spec, name=name, runtime=self.runtime)

    def totals(self) -> StateManager:
        return StateManager({"modifies": 0}, name="totals", runtime=self.runtime)

    def running(self) -> int:
        return len(self.runtime.names())

    def shutdown(self, timeout: float) -> ShutdownReport:
        """Stop the shards and the client, then the cluster (whatever happens)."""
        try:
            report: ShutdownReport = self.runtime.shutdown(timeout, stop_shards=True)
        finally:
            self._stop_cluster()
        return report

    def _stop_cluster(self) -> None:
        import ray

        try:
            ray.shutdown()
        finally:
            for name, value in self._saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            shutil.rmtree(self.folder, ignore_errors=True)
