"""One side of ``run.py --against``: measures stateward's systems under one checkout.

    python benchmarks/_worker.py CHECKOUT quick|full SCRATCH [CPU,CPU...]

The worker imports stateward from CHECKOUT, whatever the interpreter has
installed: the checkout's pyproject.toml maps the package names onto folders
(``stateward.core`` -> ``core/``), and `CheckoutFinder` serves every
``stateward.*`` module from there and from nowhere else. The case definitions
are the ones next to this file, so both sides run the same code against their
own library.

It reads one JSON request per line on stdin and answers each with one JSON
line on the stdout it was started with (anything else printed goes to
stderr). The first line it writes, unasked, says where stateward came from.
Every timing happens in here, so starting the process is no part of any
measurement. Requests:

- ``{"op": "load", "case": NAME}``: build the case's stateward systems;
  answers ``{"systems": {name: what its verdict goes by}, "rounds": the
  case's own number of rounds}``, or
  ``{"skipped": why}`` when this version cannot build them (an API it does
  not have).
- ``{"op": "measure", "case": NAME, "system": NAME, "round": N}``: one
  measurement; answers ``{"sample": {...}}`` (a `Sample` as a dict), or
  ``{"error": traceback}``.
"""

from __future__ import annotations

import dataclasses
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import tempfile
import tomllib
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import IO, Any

from _harness import measure_once

#: The distribution whose modules the worker maps onto the checkout.
TOP = "stateward"


def package_folders(root: Path) -> dict[str, Path]:
    """The packages of ``root``'s pyproject.toml and the folders they live in.

    ``[tool.setuptools.package-dir]`` maps ``stateward.core`` to ``core`` and
    so on; without it the packages are under ``root/stateward``.
    """
    pyproject = root / "pyproject.toml"
    try:
        config = tomllib.loads(pyproject.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SystemExit(f"cannot read {pyproject}: {exc}") from exc
    mapping = config.get("tool", {}).get("setuptools", {}).get("package-dir", {})
    folders = {
        name: root / folder
        for name, folder in mapping.items()
        if name == TOP or name.startswith(TOP + ".")
    }
    if not folders:
        folders = {TOP: root / TOP}
    missing = [str(folder) for folder in folders.values() if not folder.is_dir()]
    if missing:
        raise SystemExit(f"{root} has no package folder(s) {missing}: is it a stateward checkout?")
    return folders


class CheckoutFinder(importlib.abc.MetaPathFinder):
    """Finds ``stateward`` and its modules in one checkout, and nowhere else.

    It goes first on ``sys.meta_path``, so an installed or editable stateward
    is never imported: a module the checkout lacks is a ModuleNotFoundError,
    not a silent fall-back to another version.
    """

    def __init__(self, root: Path, folders: dict[str, Path]) -> None:
        self.root = root
        self.folders = folders

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != TOP and not fullname.startswith(TOP + "."):
            return None
        folder = self.folders.get(fullname)
        if folder is not None:
            return importlib.util.spec_from_file_location(
                fullname, folder / "__init__.py", submodule_search_locations=[str(folder)]
            )
        if fullname == TOP:  # a namespace package holding the mapped ones
            namespace = importlib.machinery.ModuleSpec(TOP, None, is_package=True)
            namespace.submodule_search_locations = []
            return namespace
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None:
            raise ModuleNotFoundError(f"No module named {fullname!r} in {self.root}", name=fullname)
        return spec


def use_checkout(root: Path) -> None:
    """Import stateward from ``root`` from now on (before anything imports it)."""
    loaded = [name for name in sys.modules if name == TOP or name.startswith(TOP + ".")]
    if loaded:
        raise RuntimeError(f"stateward was imported before the worker mapped it: {loaded}")
    sys.meta_path.insert(0, CheckoutFinder(root, package_folders(root)))


class Worker:
    """The cases of one side, built on request."""

    def __init__(self, quick: bool, scratch: Path) -> None:
        import _cases  # after use_checkout: the cases import stateward
        from _systems import FULL, QUICK, Peers

        self.cases_module = _cases
        self.sizes = QUICK if quick else FULL
        self.peers = Peers(load=False)
        self.scratch = scratch
        self.systems: dict[str, dict[str, Any]] = {}

    def load(self, case: str) -> dict[str, Any]:
        folder = self.scratch / case
        folder.mkdir(exist_ok=True)
        try:
            built = self.cases_module.CASES[case].build(self.sizes, self.peers, folder)
        except Exception as exc:
            return {"skipped": f"this version cannot build the case: {exc!r}"}
        systems = {s.name: s for s in built if s.name.startswith(TOP)}
        self.systems[case] = systems
        rounds = self.cases_module.CASES[case].rounds(self.sizes)
        return {"systems": {s.name: s.judge_by for s in systems.values()}, "rounds": rounds}

    def measure(self, case: str, system: str, round_no: int) -> dict[str, Any]:
        return {"sample": dataclasses.asdict(measure_once(self.systems[case][system], round_no))}

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request["op"]
        try:
            if op == "load":
                return self.load(request["case"])
            if op == "measure":
                return self.measure(request["case"], request["system"], request["round"])
        except Exception:
            return {"error": traceback.format_exc()}
        return {"error": f"unknown request {op!r}"}


def serve(channel: IO[str], quick: bool, scratch: Path) -> None:
    """Say where stateward came from, then answer requests until stdin closes."""

    def send(message: dict[str, Any]) -> None:
        channel.write(json.dumps(message) + "\n")
        channel.flush()

    try:
        worker = Worker(quick, scratch)
    except Exception:
        # Even the shared helpers cannot import this version: every case is skipped.
        send({"ready": False, "error": traceback.format_exc()})
        worker = None
    else:
        core, actors = sys.modules.get(f"{TOP}.core"), sys.modules.get(f"{TOP}.actors")
        send(
            {
                "ready": True,
                "imported_from": {
                    name: getattr(module, "__file__", None)
                    for name, module in ((f"{TOP}.core", core), (f"{TOP}.actors", actors))
                },
            }
        )
    for line in sys.stdin:
        request = json.loads(line)
        if worker is None:
            send({"skipped": "this version cannot run benchmarks/_cases.py at all"})
        else:
            send(worker.answer(request))


def main(argv: list[str]) -> int:
    root, mode, scratch_parent = Path(argv[0]).resolve(), argv[1], Path(argv[2])
    if len(argv) > 3:  # pinned: this process and every thread it starts
        os.sched_setaffinity(0, {int(cpu) for cpu in argv[3].split(",")})
    # The answers go to the stdout this process was started with; anything
    # else that prints (a library, a warning) goes to stderr instead.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    use_checkout(root)
    try:
        with tempfile.TemporaryDirectory(prefix="worker-", dir=scratch_parent) as scratch:
            serve(channel, mode == "quick", Path(scratch))
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
