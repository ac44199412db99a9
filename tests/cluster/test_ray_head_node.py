"""The multi-node path of docs/cluster.md on one machine: a Ray head node
started with ``ray start --head --block`` (as an operator starts it), and
`RayRuntime(store, address=...)` connecting to it from other processes.

The head keeps its files in a temporary folder, runs with
``RAY_AUTH_MODE=disabled`` and a temporary ``HOME`` (nothing lands in the real
one), and is stopped by terminating its ``--block`` process: never with
``ray stop``, which stops every cluster on the machine. Its workers import the
spec module from the ``PYTHONPATH`` the head was started with, as a real
deployment installs the spec modules on every node.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray")

HERE = Path(__file__).resolve().parent
#: Seconds the head may take to start, and to stop once terminated.
HEAD_START_S, HEAD_STOP_S = 60.0, 60.0
#: Seconds one client process may take (connect, start its shards, work, stop).
CLIENT_S = 120.0

#: One client: connect to the head, act on ``order-1``, print what it saw.
CLIENT = """
import json, sys
import ray_specs
from stateward.actors import StateMachine
from stateward.actors.ray import RayRuntime
from stateward.actors.stores import SQLiteStore

address, store, target = sys.argv[1:4]
runtime = RayRuntime(SQLiteStore(store, durability="batched"), shards=2, address=address)
order = StateMachine(ray_specs.ORDER, name="order-1", runtime=runtime)
seen = {"before": [order.current_state, order.version]}
if target:
    order.transition(target)
seen["after"] = [order.current_state, order.version]
import ray
seen["nodes"] = len(ray.nodes())
runtime.shutdown(stop_shards=True)
print(json.dumps(seen))
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A head node in a subprocess (``ray start --head --block``); its address
    and the environment its clients use. Terminated at the module's end."""
    folder = tmp_path_factory.mktemp("head")
    home = folder / "home"
    home.mkdir()
    port = _free_port()
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",
        "HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        sys.executable, "-c", "from ray.scripts.scripts import main; main()",
        "start", "--head", "--block", f"--temp-dir={folder / 'ray'}", f"--port={port}",
        "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats",
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started, lines = threading.Event(), []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "Ray runtime started" in line:
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(HEAD_START_S), "the head did not start:\n" + "".join(lines)
        yield {"address": f"127.0.0.1:{port}", "env": env, "home": home, "folder": folder}
    finally:
        process.terminate()  # the --block process stops its node: this cluster only
        try:
            code = process.wait(HEAD_STOP_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(HEAD_STOP_S)
            raise
        reader.join(HEAD_STOP_S)
        if process.stdout is not None:
            process.stdout.close()
    # `ray start --block` exits with status 1 once it has stopped its node on SIGTERM.
    assert "Local node finished draining; shutting down." in "".join(lines), (code, lines)
    assert _processes_of(folder / "ray") == [], "the head left processes behind"
    assert list(home.iterdir()) == [], "the head node wrote into HOME"


def _processes_of(folder: Path) -> list[str]:
    """The command lines of the running processes that name ``folder`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = entry.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # it ended meanwhile
            continue
        if str(folder) in command:
            found.append(command)
    return found


def _client(head: dict[str, Any], store: Path, target: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", CLIENT, head["address"], str(store), target],
        env=head["env"],
        capture_output=True,
        text=True,
        timeout=CLIENT_S,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    seen: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return seen


def test_clients_in_other_processes_run_machines_on_a_head_node_started_with_ray_start(
    head: dict[str, Any],
) -> None:
    """A client connects by address, its shards run on the head's workers (which
    import the spec by path), and a later client's shards recover the machine
    from the shared store."""
    store = head["folder"] / "shared.db"
    first = _client(head, store, "review")
    assert first == {"before": ["draft", 0], "after": ["review", 1], "nodes": 1}
    second = _client(head, store, "published")
    assert second == {"before": ["review", 1], "after": ["published", 2], "nodes": 1}
