"""What the Ray cases run on the cluster's workers, imported there by path
(the case puts benchmarks/ on the workers' ``PYTHONPATH``): the machine both
sides toggle, and the raw Ray actor that stateward is measured against.

`RawShard` is what a user would write without stateward: a sync Ray actor
that holds machines, applies a transition with `stateward.core` (the same
pure function a stateward shard runs) and writes the same journal record to
the same store (`SQLiteStore.commit`, the record a shard's runtime writes),
one Ray call per request.
"""

from __future__ import annotations

import time
from typing import Any

from stateward.actors.stores import SQLiteStore
from stateward.core import MachineCodec, MachineSpec, apply_creation, apply_transition

#: Two states, ``a`` and ``b``; every machine toggles between them.
TOGGLE_SPEC = MachineSpec("a", {"a": ["b"], "b": ["a"]})


class RawShard:
    """A raw Ray actor: machines by name, one transition and one store write per call."""

    def __init__(self, path: str, owner: str) -> None:
        self.store = SQLiteStore(path, durability="batched")
        self.codec = MachineCodec(TOGGLE_SPEC)
        self.owner = owner
        self.machines: dict[str, Any] = {}
        self.renew_at = time.monotonic() + self.store.lease_seconds / 3

    def create(self, names: list[str]) -> int:
        """Claim and record ``names`` (new machines in ``a``), as a runtime does."""
        for name in names:
            stored = self.store.claim(name, self.codec, self.owner)
            if stored is None:
                stored = apply_creation(TOGGLE_SPEC, machine=name).snapshot
                self.store.create(name, self.codec, stored)
            self.machines[name] = stored
        return len(self.machines)

    def step(self, name: str, target: str) -> int:
        """Move ``name`` to ``target``, commit it durably, return its new version."""
        old = self.machines[name]
        new = apply_transition(TOGGLE_SPEC, old, target, machine=name).snapshot
        self.store.commit(name, self.codec, old, new)
        self.machines[name] = new
        if time.monotonic() >= self.renew_at:  # keep the store's lease, as a runtime does
            self.store.renew_lease(self.owner)
            self.renew_at = time.monotonic() + self.store.lease_seconds / 3
        return int(new.version)

    def close(self) -> None:
        self.store.end_lease(self.owner)
        self.store.close()
