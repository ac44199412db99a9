"""How a definition and a store travel to a shard: by import path and by
recipe, never by value (a spec holds functions; a store holds connections).

A PostgreSQL store's password travels in its recipe, `Sealed`: the recipe is
an argument of the shard's Ray actor, which Ray keeps inside its control store
(GCS) to create the actor, and shows nowhere (not in the actor or task tables
its state API lists, nor in their names or runtime environments); a sealed
secret prints as ``***`` wherever a recipe is printed. To keep the password
out of the cluster altogether, give the store a URL without one and let each
node's libpq find it (a ``~/.pgpass`` file, or ``PGPASSWORD`` in the
environment of ``ray start`` on that node; not in a Ray ``runtime_env``, which
Ray lists). See docs/cluster.md."""

from __future__ import annotations

import importlib
import pickle
import sys
import zlib
from typing import Any, NamedTuple

from stateward.core import MachineBuilder, MachineSpec

from .._handles._definitions import read_definition
from ..stores import MemoryStore, PostgresStore, SQLiteStore, Store
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


def unpickled(data: bytes, where: str) -> Any:
    """A request (or an ``on_start``) unpickled here, on a shard's worker.

    Raises:
        SpecNotImportable: it does not unpickle here: most often a function
            it carries was pickled by reference to a module this worker cannot
            import (a module only the client has, or the client's main script).
    """
    try:
        return pickle.loads(data)
    except Exception as exc:
        raise SpecNotImportable(
            f"{where}: the request cannot be unpickled on the Ray worker "
            f"({type(exc).__name__}: {exc}). A module-level function travels by reference "
            "to its module, which must import on every node: install or ship that module "
            "(a package, or Ray's runtime_env with py_modules), or pass a lambda, which "
            "travels by value. A function of the client's main script (__main__) never "
            "imports on a worker. Nothing of the request ran"
        ) from None


class Sealed:
    """A store's password on its way to a shard: it pickles (the shard must
    connect) but shows itself as ``***`` in every repr, str and format, so that
    no error or log line that prints a recipe prints the password."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself: only to hand it to the store that connects."""
        return self._value

    def __repr__(self) -> str:
        return "Sealed('***')"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Any, ...]:
        return (Sealed, (self._value,))


class StoreRecipe(NamedTuple):
    """What a shard needs to open the shared store itself.

    Attributes:
        kind: ``"sqlite"`` or ``"postgres"``.
        where: the store's identity, never with a password: a SQLite file's
            absolute path, or a PostgreSQL URL without its password and the
            schema. The shards' Ray actor names are derived from it.
        durability: the store's durability mode.
        lease_seconds: how long a shard's lease lasts unless renewed.
        snapshot_every: journal entries between snapshots.
        keep_snapshots: snapshots kept per actor.
        secret: PostgreSQL: the URL to connect with (its password, if it has
            one, included), `Sealed`.
        schema: PostgreSQL: the store's schema.
    """

    kind: str
    where: str
    durability: str
    lease_seconds: float
    snapshot_every: int
    keep_snapshots: int
    secret: Sealed | None = None
    schema: str = ""


def store_recipe(store: Store) -> StoreRecipe:
    """What a shard needs to open ``store`` itself (`StoreRecipe`).

    Raises:
        TypeError: a store no other process can open (a `MemoryStore`), or a
            kind of store the shards cannot open.
    """
    if isinstance(store, SQLiteStore):
        return StoreRecipe(
            "sqlite",
            str(store.path.resolve()),
            store.durability,
            store.lease_seconds,
            store.snapshot_every,
            store.keep_snapshots,
        )
    if isinstance(store, PostgresStore):
        return StoreRecipe(
            "postgres",
            f"{store.url} schema {store.schema}",
            store.durability,
            store.lease_seconds,
            store.snapshot_every,
            store.keep_snapshots,
            Sealed(store.target.url_to_connect()),
            store.schema,
        )
    if isinstance(store, MemoryStore):
        raise TypeError(
            "RayRuntime needs a store its shards share: a MemoryStore lives in one process. "
            "Pass a PostgresStore, or a SQLiteStore on a path every shard can reach (one node)"
        )
    raise TypeError(
        f"RayRuntime cannot open a {type(store).__name__} on its shards; pass a PostgresStore "
        "or a SQLiteStore"
    )


def open_store(recipe: StoreRecipe) -> Store:
    """The store of ``recipe``, opened in this process (a shard's)."""
    if recipe.kind == "sqlite":
        return SQLiteStore(
            recipe.where,
            durability=recipe.durability,
            lease_seconds=recipe.lease_seconds,
            snapshot_every=recipe.snapshot_every,
            keep_snapshots=recipe.keep_snapshots,
        )
    if recipe.kind == "postgres" and recipe.secret is not None:
        return PostgresStore(
            recipe.secret.reveal(),
            schema=recipe.schema,
            durability=recipe.durability,
            lease_seconds=recipe.lease_seconds,
            snapshot_every=recipe.snapshot_every,
            keep_snapshots=recipe.keep_snapshots,
        )
    raise TypeError(f"unknown store kind {recipe.kind!r}")
