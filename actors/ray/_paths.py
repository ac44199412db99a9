"""How a definition and a store travel to a shard: by import path and by
recipe, never by value (a spec holds functions; a store holds connections)."""

from __future__ import annotations

import importlib
import sys
import zlib
from typing import Any

from stateward.core import MachineBuilder, MachineSpec

from .._handles._definitions import read_definition
from ..stores import MemoryStore, SQLiteStore, Store
from ._errors import SpecNotImportable

#: Import paths found, by spec identity (the spec is kept alive with its path,
#: so its id is not reused).
_found: dict[int, tuple[MachineSpec, str, str]] = {}


def shard_of(name: str, shards: int) -> int:
    """The logical shard of ``name``: a stable hash (CRC-32 of its UTF-8 bytes),
    the same in every process and every run, unlike ``hash``."""
    return zlib.crc32(name.encode("utf-8", "surrogatepass")) % shards


def spec_path(spec: MachineSpec) -> tuple[str, str]:
    """``(module, name)`` of a module-level `MachineSpec` or `MachineBuilder`
    that defines ``spec``, found once by looking through the imported modules.

    Raises:
        SpecNotImportable: no imported module has it at module level.
    """
    known = _found.get(id(spec))
    if known is not None and known[0] is spec:
        return known[1], known[2]
    builders: list[tuple[str, str, MachineBuilder]] = []
    main = sys.modules.get("__main__")
    for module_name, module in list(sys.modules.items()):
        # The main module imports on no worker, under any name: Ray (through
        # multiprocessing) registers it a second time as ``__mp_main__``.
        if module is None or module is main:
            continue
        try:
            names = list(vars(module).items())
        except TypeError:  # a module-like object with no __dict__
            continue
        for attr, value in names:
            if value is spec:
                _found[id(spec)] = (spec, module_name, attr)
                return module_name, attr
            if type(value) is MachineBuilder:
                builders.append((module_name, attr, value))
    for module_name, attr, builder in builders:  # a builder defines its spec by content
        if _defines(builder, spec):
            _found[id(spec)] = (spec, module_name, attr)
            return module_name, attr
    raise SpecNotImportable(
        "a machine on a RayRuntime is created on a Ray worker from its definition's import "
        "path, and this definition is no module-level name of an imported module (a spec "
        "made inside a function, in __main__, or a plain {state: [targets]} mapping). "
        "Define the MachineSpec or MachineBuilder at module level in an importable module "
        "and pass that object"
    )


def _defines(value: MachineBuilder, spec: MachineSpec) -> bool:
    try:
        definition = read_definition(value, None, None, None)
    except Exception:
        return False
    return getattr(definition, "spec", definition) is spec


def import_spec(module_name: str, attr: str) -> Any:
    """The definition at ``module_name.attr``, imported here (on a shard's worker).

    Raises:
        SpecNotImportable: the module does not import here, or has no such name.
    """
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise SpecNotImportable(
            f"the machine definition {module_name}.{attr} cannot be imported on the Ray "
            f"worker: {type(exc).__name__}: {exc}. Install or ship that module to every "
            "node (a package, or Ray's runtime_env with py_modules or PYTHONPATH)"
        ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise SpecNotImportable(
            f"the module {module_name!r} on the Ray worker has no {attr!r}: the worker runs "
            "another version of it than the client; deploy the same code to every node"
        ) from None


def store_recipe(store: Store) -> tuple[str, str, str]:
    """What a shard needs to open ``store`` itself: ``(kind, where, durability)``.

    Raises:
        TypeError: a store no other process can open (a `MemoryStore`), or a
            kind of store the shards cannot open yet.
    """
    if isinstance(store, SQLiteStore):
        return ("sqlite", str(store.path.resolve()), store.durability)
    if isinstance(store, MemoryStore):
        raise TypeError(
            "RayRuntime needs a store its shards share: a MemoryStore lives in one process. "
            "Pass a SQLiteStore on a path every shard can reach (one node)"
        )
    raise TypeError(
        f"RayRuntime cannot open a {type(store).__name__} on its shards yet; pass a SQLiteStore"
    )


def open_store(recipe: tuple[str, str, str], lease_seconds: float = 15.0) -> Store:
    """The store of ``recipe``, opened in this process (a shard's), with the
    client's store's ``lease_seconds``."""
    kind, where, durability = recipe
    if kind != "sqlite":
        raise TypeError(f"unknown store kind {kind!r}")
    return SQLiteStore(where, durability=durability, lease_seconds=lease_seconds)
