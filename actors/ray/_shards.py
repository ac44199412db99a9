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

from ._errors import ShardUnavailable
from ._shard import Shard

#: How long a shard's Ray actor may take to start (a worker process, imports, the store).
START_TIMEOUT = 120.0


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
        import ray

        head = f"{self.prefix}-{index}.g"
        return [
            int(name[len(head) :])
            for name in ray.util.list_named_actors()
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

        Raises:
            ShardUnavailable: one did not start (its error says why).
        """
        import ray

        try:
            ray.get([actor.pid.remote() for actor in actors], timeout=START_TIMEOUT)
        except Exception as exc:
            raise ShardUnavailable(
                f"a shard of {self.prefix} did not start within {START_TIMEOUT:g} s "
                f"({type(exc).__name__}: {exc})"
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
            get_if_exists=True,
            max_concurrency=1,
            max_restarts=0,
            max_task_retries=0,
        ).remote(index, *self.args)
        return generation, actor
