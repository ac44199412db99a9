"""Finding, starting and replacing the Ray actors that host a `RayRuntime`'s shards.

Logical shard ``i`` of a shard set lives in the named Ray actor
``{prefix}-{i}.g{generation}``. A shard that is declared dead (its Ray call
failed because the actor died, or it did not answer within the runtime's
``shard_timeout``) is killed with ``ray.kill`` and replaced by generation + 1:
Ray cannot create a named actor while one of that name exists, so the
replacement needs a name of its own. Every client finds the same actors by
name, with no table of its own: a new client takes the newest living
generation (`ShardSet.current`); a client whose shard died takes a newer
living generation if another client already replaced it, else starts
generation + 1, with ``get_if_exists`` so that two clients replacing the
same shard at once get the same new actor (`ShardSet.replace`).

Generations do not decide who may write: the store's leases do. A replacement
claims each actor's name under its own lease epoch when the first request for
it arrives, and from then on the old shard (a zombie that a kill did not
reach) can commit nothing for it (`LeaseLost`).
"""

from __future__ import annotations

import contextlib
from typing import Any

from stateward.core import ArgumentValueError

from ._errors import ShardUnavailable
from ._shard import Shard

#: The Ray namespace of every shard actor. Named actors are found only within
#: their namespace, and a driver that names none gets an anonymous one of its
#: own: without a fixed namespace, each client process would start shards of
#: its own over the same store.
NAMESPACE = "stateward"

#: How long a shard's Ray actor may take to start (a worker process, imports, the store).
START_TIMEOUT = 120.0


def _named() -> list[str]:
    """The names of the living shard actors of every store (`NAMESPACE`)."""
    import ray

    return [
        entry["name"]
        for entry in ray.util.list_named_actors(all_namespaces=True)
        if entry["namespace"] == NAMESPACE
    ]


def check_shard_count(base: str, shards: int) -> None:
    """Refuse ``shards`` if shards of the same store (Ray names starting with
    ``base``) run under another count: a name goes to shard
    ``crc32(name) % shards``, so two counts would host one name on two shards,
    whose leases would fight over it (each call waiting for the other's lease).

    Raises:
        ArgumentValueError: a living shard of this store has another count.
    """
    head = f"{base}-"
    counts = set()
    for name in _named():
        count = name[len(head) :].split("-", 1)[0] if name.startswith(head) else ""
        if count.isdigit() and int(count) != shards:
            counts.add(int(count))
    if counts:
        other = min(counts)
        raise ArgumentValueError(
            "RayRuntime",
            "shards",
            f"{other} (the count of the shards that serve this store now)",
            shards,
            f"Every client of one store must pass the same shards=: a name goes to shard "
            f"crc32(name) % shards. Pass shards={other}, or stop those shards first "
            "(shutdown(stop_shards=True) in their last client)",
            outcome="no shard was started",
        )


class ShardSet:
    """The Ray actors of one shard set: ``prefix`` names it (store and shard
    count); each new actor is started as ``Shard(index, *args)``."""

    def __init__(self, prefix: str, args: tuple[Any, ...]) -> None:
        import ray

        self.prefix = prefix
        self.args = args
        self.remote = ray.remote(Shard)

    def name(self, index: int, generation: int) -> str:
        return f"{self.prefix}-{index}.g{generation}"

    def _living(self, index: int) -> list[int]:
        """The generations of shard ``index`` that Ray lists by name now."""
        head = f"{self.prefix}-{index}.g"
        return [
            int(name[len(head) :])
            for name in _named()
            if name.startswith(head) and name[len(head) :].isdigit()
        ]

    def current(self, index: int) -> tuple[int, Any]:
        """The newest living generation of shard ``index`` (started if none)."""
        living = self._living(index)
        return self._start(index, max(living, default=0))

    def replace(self, index: int, generation: int, actor: Any) -> tuple[int, Any]:
        """Declare ``actor`` (generation ``generation`` of shard ``index``)
        dead: kill it, and return its replacement, found or started, once it
        has started (its start does not count against the call timeout; one
        that fails to start fails its first call, and is replaced in turn)."""
        self.kill(actor)
        newer = [found for found in self._living(index) if found > generation]
        replacement = self._start(index, max(newer, default=generation + 1))
        with contextlib.suppress(Exception):
            self.ready([replacement[1]])
        return replacement

    def ready(self, actors: list[Any]) -> None:
        """Wait until ``actors`` have started (at most `START_TIMEOUT` seconds).

        An actor that died while starting (its constructor raised: the store
        could not be opened there, say) is killed: Ray keeps a named actor's
        name taken even after it failed to start, and until the kill every
        later client of this store would get that dead actor by name.

        Raises:
            ShardUnavailable: one did not start (its error says why).
        """
        import ray
        from ray.exceptions import RayActorError

        waits = [actor.pid.remote() for actor in actors]
        try:
            ray.get(waits, timeout=START_TIMEOUT)
            return
        except Exception as exc:
            failure: BaseException = exc
        died = []
        for actor, wait in zip(actors, waits, strict=True):
            try:
                ray.get(wait, timeout=0)
            except RayActorError as exc:
                died.append(actor)
                failure = exc
            except Exception:
                pass
        for actor in died:
            self.kill(actor)  # frees its name for the next start
        what = "failed to start" if died else f"did not start within {START_TIMEOUT:g} s"
        raise ShardUnavailable(
            f"a shard of {self.prefix} {what} ({type(failure).__name__}: {failure})"
        ) from None

    def kill(self, actor: Any) -> None:
        """``ray.kill`` the actor (Ray ends its process, within seconds even
        if it is paused); a kill that fails (it is gone already) is no error."""
        import ray

        with contextlib.suppress(Exception):
            ray.kill(actor, no_restart=True)

    def _start(self, index: int, generation: int) -> tuple[int, Any]:
        actor = self.remote.options(
            name=self.name(index, generation),
            namespace=NAMESPACE,
            get_if_exists=True,
            max_concurrency=1,
            max_restarts=0,
            max_task_retries=0,
        ).remote(index, *self.args)
        return generation, actor
