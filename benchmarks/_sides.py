"""The two sides of ``run.py --against``: the old checkout and the worker processes.

The old version is written out of git into a temporary folder (``git
archive``). Each side runs in its own worker process (benchmarks/_worker.py)
that imports stateward from its own checkout; `Side` sends it one request at a
time over a pipe and waits, bounded, for the answer. `workers` starts a fresh
pair and always stops it, killing both on an error or an interruption.
"""

from __future__ import annotations

import io
import json
import os
import queue
import signal
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "_worker.py"
#: How long one request to a worker may take, in seconds (a spawn_machines
#: round with its shutdown is the longest, well under a minute).
REQUEST_TIMEOUT = 900.0


class CompareError(Exception):
    """The comparison cannot run (a bad ref, a worker that died)."""


# -- the old checkout ----------------------------------------------------------------------


def _git(*args: str, data: bool = False) -> Any:
    done = subprocess.run(
        ["git", "-C", str(ROOT), *args],
        capture_output=True,
        check=False,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise CompareError(f"git {' '.join(args)} failed: {done.stderr.decode().strip()}")
    return done.stdout if data else done.stdout.decode().strip()


def resolve(ref: str) -> str:
    """The full commit hash ``ref`` names in this repository."""
    try:
        return str(_git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"))
    except CompareError:
        raise CompareError(
            f"{ref!r} names no commit in {ROOT}: give a branch, tag or commit hash "
            "(git log --oneline lists them)"
        ) from None


def export(commit: str, into: Path) -> Path:
    """Write the tree of ``commit`` into the folder ``into`` (git archive)."""
    tar = _git("archive", "--format=tar", commit, data=True)
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(into, filter="data")
    return into


def this_checkout() -> dict[str, Any]:
    """The commit of this checkout, and whether its files differ from it."""
    commit = str(_git("rev-parse", "HEAD"))
    changed = bool(str(_git("status", "--porcelain", "--untracked-files=no")))
    return {"commit": commit, "uncommitted_changes": changed}


# -- the workers ---------------------------------------------------------------------------


@dataclass
class Side:
    """One worker process: ``name`` is new or old."""

    name: str
    process: subprocess.Popen[str]
    answers: queue.Queue[str | None]
    pump: threading.Thread
    hello: dict[str, Any]

    def ask(self, **request: Any) -> dict[str, Any]:
        if self.process.stdin is None:
            raise CompareError(f"the {self.name} side's worker has no stdin")
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise CompareError(
                f"the {self.name} side's worker has exited ({self.process.poll()})"
            ) from None
        return self._read(request)

    def greeted(self) -> dict[str, Any]:
        """The worker's first line: where it imported stateward from."""
        if not self.hello:
            self.hello = self._read(None)
        return self.hello

    def _read(self, request: dict[str, Any] | None) -> dict[str, Any]:
        try:
            line = self.answers.get(timeout=REQUEST_TIMEOUT)
        except queue.Empty:
            raise CompareError(
                f"the {self.name} side's worker did not answer {request} "
                f"within {REQUEST_TIMEOUT:g} s"
            ) from None
        if line is None:
            raise CompareError(
                f"the {self.name} side's worker exited ({self.process.poll()}) "
                f"before answering {request}; its stderr is above"
            )
        answer: dict[str, Any] = json.loads(line)
        return answer


def _pump(stream: IO[str], answers: queue.Queue[str | None]) -> None:
    """Hand the worker's answer lines over; None once it has closed them."""
    with stream:
        for line in stream:
            answers.put(line)
    answers.put(None)


def start_side(
    name: str, root: Path, quick: bool, scratch: Path, pin: list[int] | None = None
) -> Side:
    """A worker that measures the stateward of ``root`` (on the CPUs ``pin``, if given).

    It starts in the background: `Side.greeted` waits for its first line.
    """
    env = dict(os.environ, PYTHONHASHSEED="0")  # the same hashing on both sides
    pinned = [",".join(map(str, pin))] if pin else []
    process = subprocess.Popen(
        [
            sys.executable,
            str(WORKER),
            str(root),
            "quick" if quick else "full",
            str(scratch),
            *pinned,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=scratch,
    )
    answers: queue.Queue[str | None] = queue.Queue()
    assert process.stdout is not None
    pump = threading.Thread(
        target=_pump, args=(process.stdout, answers), name=f"bench-{name}", daemon=True
    )
    pump.start()
    return Side(name, process, answers, pump, {})


def stop_side(side: Side) -> None:
    """Close the worker's stdin and wait for it; kill it if it does not end."""
    try:
        if side.process.stdin is not None:
            side.process.stdin.close()
    except BrokenPipeError:
        pass
    try:
        side.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        side.process.kill()
        side.process.wait(timeout=60)
    side.pump.join(timeout=60)  # it closes the worker's stdout at its end


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the temporary checkout is removed."""

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _imported_under(side: Side, root: Path) -> None:
    """Check that the worker's stateward really is the one in ``root``."""
    for module, where in side.hello.get("imported_from", {}).items():
        if where is None or not Path(where).resolve().is_relative_to(root.resolve()):
            raise CompareError(f"the {side.name} side imported {module} from {where}, not {root}")


@dataclass(frozen=True)
class Setup:
    """How a comparison starts its workers."""

    roots: dict[str, Path]  # "new" and "old"
    quick: bool
    scratch: Path
    pin: list[int] | None = None


@contextmanager
def workers(setup: Setup) -> Iterator[dict[str, Side]]:
    """A fresh worker for each side, stopped at the end (killed on an error)."""
    sides: dict[str, Side] = {}
    try:
        for name, root in setup.roots.items():  # both start at once
            sides[name] = start_side(name, root, setup.quick, setup.scratch, setup.pin)
        for name, root in setup.roots.items():
            hello = sides[name].greeted()
            if hello.get("ready"):
                _imported_under(sides[name], root)
            elif name == "new":
                raise CompareError(f"this checkout cannot run the cases:\n{hello['error']}")
        yield sides
    except BaseException:  # interrupted or failed: no measurement to wait for
        for side in sides.values():
            side.process.kill()
        raise
    finally:
        for side in sides.values():
            stop_side(side)
