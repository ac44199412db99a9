"""What a handle's definition and options become on a shard.

A handle on a `RayRuntime` is built on the client; its actor is created on
its shard from what can travel (`placement`, on the client) and made there
with the same options (`create_on_shard`, on the shard):

- ``restart=``, ``on_error=``, ``deadline=`` (a number of seconds) and
  ``dedicated=`` travel as they are: the actor runs with them under its
  shard's root supervisor (restarts, deadline fences and dedicated threads
  happen on the shard);
- ``on_start=`` travels pickled (by reference for a module-level function,
  by value for a lambda over plain values) and runs on the shard at each
  start of the actor (there, at every restart too);
- ``supervisor=`` cannot travel: a `Supervisor` belongs to the runtime of
  this process and its children live in it. It is refused with `NotOnRay`.
"""

from __future__ import annotations

from typing import Any

from .._handles import ConfigManager, StateMachine, StateManager
from ._errors import NotOnRay
from ._link import pickled
from ._paths import import_spec, spec_path, unpickled


def placement(
    handle: Any, cell: Any, supervisor: Any, restart: str, dedicated: bool
) -> tuple[Any, Any, dict[str, Any] | None]:
    """``(definition, initial, options)`` of ``handle``'s actor, as they
    travel to its shard (options: only those not left at their default).

    Raises:
        NotOnRay: ``supervisor=`` was given.
        NotPicklable: ``on_start`` cannot be pickled.
        SpecNotImportable: a machine's definition has no import path.
        TypeError: a kind of actor a shard cannot host.
    """
    if supervisor is not None:
        raise NotOnRay(
            f"{cell.name!r}: supervisor= cannot go to a Ray shard: a Supervisor lives in this "
            "process's runtime, and a RayRuntime's actor lives on its shard, under that "
            "shard's root supervisor. Leave supervisor= out and pass restart= and on_error= "
            "(they travel), or host a supervision tree on a local Runtime"
        )
    kind = cell.kind
    if kind == "machine":
        definition: Any = spec_path(handle._spec)
        initial: Any = dict(cell.snapshot.data) or None
    elif kind == "manager":
        definition = None
        initial = dict(cell.snapshot.state)
    elif kind == "config":
        history = cell.snapshot
        definition = history.limit
        initial = (history.current.config, history.current.metadata)
    else:
        raise TypeError(f"a RayRuntime hosts machines, managers and configs, not a {kind}")
    options: dict[str, Any] = {}
    if restart != "permanent":
        options["restart"] = restart
    if cell.on_error != "fail":
        options["on_error"] = cell.on_error
    if cell.deadline is not None:
        options["deadline"] = float(cell.deadline)
    if dedicated:
        options["dedicated"] = True
    if cell.on_start is not None:
        options["on_start"] = pickled(cell.on_start, f"{cell.name!r}: on_start")
    return definition, initial, options or None


def create_on_shard(
    runtime: Any, name: str, kind: str, definition: Any, initial: Any, options: Any
) -> Any:
    """The handle of a new actor on this shard's ``runtime`` (see `placement`)."""
    keywords: dict[str, Any] = dict(options or {})
    if "on_start" in keywords:
        keywords["on_start"] = unpickled(keywords["on_start"], f"{name!r}: on_start")
    if kind == "machine":
        spec = import_spec(*definition)
        return StateMachine(spec, name=name, runtime=runtime, data=initial, **keywords)
    if kind == "config":
        # None: recovered by a shard that replaces a dead one (the store has it).
        config, metadata = initial if initial is not None else ({}, None)
        return ConfigManager(
            config,
            metadata=metadata,
            history_limit=definition,
            name=name,
            runtime=runtime,
            **keywords,
        )
    return StateManager(initial or {}, name=name, runtime=runtime, **keywords)
