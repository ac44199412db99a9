"""The store protocol: what the runtime needs from a store, and what stores report.

Every store implements `Store`, checked by one conformance test suite:

- `claim` an actor name for one runtime (a second live owner is refused) and
  return what is stored under it, recovered;
- `commit` one transaction (old snapshot -> new snapshot), durably per the
  store's mode, before the actor publishes and replies. A store may also
  offer ``stage_entry`` (`SQLiteStore` does): a pooled worker then stages the
  commits of the turns it runs in a row and writes them together with
  ``write_staged``, before publishing and replying (`actors._commit_batch`);
- `recover` the last durable snapshot (what a supervisor restart starts from);
- `release` the name when the actor stops for good.

A store with leases (`SQLiteStore`: see `_leases`) also offers
``renew_lease(runtime_id)``, which the runtime calls every third of the
store's ``lease_seconds``, and ``end_lease(runtime_id)``, called when the
runtime shuts down. A store that wraps one must pass both on (and
``lease_seconds``), or its runtime's lease expires while it runs.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, Protocol

from stateward.core._persist import KindCodec


@dataclass(frozen=True, slots=True)
class StoredActor:
    """One actor as `SQLiteStore.actors` lists it."""

    name: str
    kind: str
    version: int
    updated_at: float
    owner: str | None


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What recovering one actor found.

    Attributes:
        actor: its name.
        snapshot_version: the version of the snapshot it started from.
        replayed: how many journal entries it applied after that snapshot.
        skipped: snapshots that were not usable, as ``(version, reason)``.
    """

    actor: str
    snapshot_version: int
    replayed: int
    skipped: tuple[tuple[int, str], ...] = ()


class Store(Protocol):
    """What the runtime needs from a store."""

    durability: str

    def claim(self, name: str, codec: KindCodec, runtime_id: str) -> Any | None:
        """Take ``name`` for ``runtime_id``; return its recovered snapshot, or None if new."""

    def create(self, name: str, codec: KindCodec, snapshot: Any) -> None:
        """Record a new actor and its initial snapshot."""

    def commit(self, name: str, codec: KindCodec, old: Any, new: Any) -> None:
        """Make one commit durable (per the mode) before returning; raise
        `StoreWriteError` if it cannot be."""

    def recover(self, name: str, codec: KindCodec) -> Any:
        """The last durable snapshot of ``name``."""

    def release(self, name: str, runtime_id: str) -> None:
        """Give ``name`` up (the actor stopped for good)."""

    def due_timers(self, before: datetime.datetime) -> list[tuple[str, datetime.datetime]]:
        """The machines with a pending timer due at or before ``before`` (a
        UTC datetime), as ``(name, earliest due time)``, soonest first.

        Read from an index of each machine's earliest due time that the store
        writes in the same transaction as the commit that changes it, so a
        runtime finds the machines to wake (after a reboot, or passivated)
        without reading their snapshots."""

    def close(self) -> None:
        """Flush what is pending and let go of files and threads."""
