"""A request reported as failed was not applied, not even after recovery.

A child process (``failed_commits_child.py``) runs 40 actors and 6 threads
against a store whose files it may grow only a little (``RLIMIT_FSIZE``), and
a little more after each failure, so its writes keep failing at different
points: within a journal entry, within a snapshot written with it, within a
batch of several actors. It prints each request's outcome. The test reopens
the store without a limit and checks every reply against what recovery
finds: each acknowledged update is there, each failed one is not.

The seeds are fixed; ``STATEWARD_FAILED_COMMIT_SEEDS`` (a count) runs more.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from stateward.actors import Runtime, SQLiteStore, StateManager

HERE = Path(__file__).resolve().parent
CHILD = HERE / "failed_commits_child.py"
SEEDS = list(range(1, 1 + int(os.environ.get("STATEWARD_FAILED_COMMIT_SEEDS", "1"))))
#: Bytes the child's files may grow past their size once its actors exist.
ROOM = 100_000
#: Seconds the child may take (it takes about one).
CHILD_TIMEOUT = 60.0


def run_child(path: Path, mode: str, seed: int, sending: str) -> list[tuple[str, str, str]]:
    """Run the child; return its ``(actor, key, outcome)`` lines."""
    done = subprocess.run(
        [sys.executable, str(CHILD), str(path), mode, str(seed), str(ROOM), sending],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"child failed ({done.returncode}): {done.stderr[-3000:]}"
    lines = done.stdout.splitlines()
    assert lines and lines[-1] == "END 0", f"child did not finish its requests: {lines[-1:]}"
    return [tuple(line.split(" ", 2)) for line in lines[:-1]]  # type: ignore[misc]


@pytest.mark.usefixtures("child_host")
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("sending", ["blocking", "pipelined"])
@pytest.mark.parametrize("mode", ["strict", "batched"])
def test_replies_agree_with_recovery_when_writes_fail(
    tmp_path: Path, mode: str, sending: str, seed: int
) -> None:
    """``blocking``: each sender waits for each reply (inline calls, group
    commit across threads); ``pipelined``: each keeps several requests in
    flight, so pooled workers write the turns of several actors together."""
    path = tmp_path / "full.db"
    replies = run_child(path, mode, seed, sending)
    outcomes = Counter(outcome for _, _, outcome in replies)
    others = [r for r in replies if r[2] not in ("ack", "failed", "refused")]
    assert not others, f"unexpected outcomes: {others[:5]}"
    # The run means something only if both kinds of reply came up often.
    assert outcomes["ack"] >= 20 and outcomes["failed"] >= 20, outcomes
    with Runtime("check", store=SQLiteStore(path, durability=mode)) as runtime:
        recovered = {
            name: StateManager({}, name=name, runtime=runtime).get_state()
            for name in sorted({name for name, _, _ in replies})
        }
    lost = [(n, k) for n, k, o in replies if o == "ack" and k not in recovered[n]]
    applied = [(n, k, o) for n, k, o in replies if o != "ack" and k in recovered[n]]
    assert not lost, f"{len(lost)} acknowledged updates are missing: {lost[:5]}"
    assert not applied, (
        f"{len(applied)} of {outcomes['failed'] + outcomes['refused']} requests reported "
        f"as failed were applied: {applied[:5]} ({dict(outcomes)})"
    )
