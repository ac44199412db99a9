"""The memory store: each actor's last committed snapshot, kept as the value itself."""

from __future__ import annotations

import datetime
import threading
from typing import Any

from stateward.core import ConfigHistory, MachineSnapshot, StoreSnapshot
from stateward.core._persist import DefinitionMismatch, KindCodec

from .._errors import ActorOwned, StoreWriteError
from ._ownership import runtime_is_live
from ._requests import REQUEST_IDS_KEPT
from ._timer_index import due_rows, earliest


class MemoryStore:
    """Keeps each actor's last committed snapshot in memory, as the value itself.

    A supervisor restart starts from it, and a new handle with the name of a
    stopped actor picks up where that one stopped. Nothing survives the process.
    """

    durability = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: Each actor's last committed snapshot; its kind is its type's.
        self._latest: dict[str, Any] = {}
        self._owners: dict[str, str] = {}
        #: The ids of the requests that made each actor's last commits (`_requests`).
        self._requests: dict[str, dict[str, int]] = {}

    def claim(self, name: str, codec: KindCodec, runtime_id: str) -> Any | None:
        with self._lock:
            owner = self._owners.get(name)
            if owner is not None and owner != runtime_id and runtime_is_live(owner):
                raise ActorOwned(name, f"runtime {owner} in this process")
            stored = self._latest.get(name)
            kind = None if stored is None else _KINDS.get(type(stored))
            if kind is not None and kind != codec.kind:
                raise DefinitionMismatch(name, f"it was stored as a {kind}, not a {codec.kind}")
            self._owners[name] = runtime_id
        if stored is None:
            return None
        return codec.from_document(name, codec.document(stored))

    def create(self, name: str, codec: KindCodec, snapshot: Any) -> None:
        with self._lock:
            self._latest[name] = snapshot

    def commit(
        self, name: str, codec: KindCodec, old: Any, new: Any, request_id: str | None = None
    ) -> None:
        if request_id is None:
            self._latest[name] = new
            return
        with self._lock:  # the id with the commit, as one change
            ids = self._requests.setdefault(name, {})
            if request_id in ids:
                raise StoreWriteError(
                    name,
                    f"request {request_id!r} was already applied to it (version "
                    f"{ids[request_id]}): a request is applied at most once",
                )
            self._latest[name] = new
            ids[request_id] = codec.version(new)
            if len(ids) > REQUEST_IDS_KEPT:
                del ids[next(iter(ids))]  # the oldest: dicts keep insertion order

    def due_timers(self, before: datetime.datetime) -> list[tuple[str, datetime.datetime]]:
        """The machines with a timer due at or before ``before`` (a UTC
        datetime), as ``(name, earliest due time)``, soonest first.

        The memory store's index is its snapshots themselves: each holds its
        timers, replaced with the commit. Read by a scan (a query runs every
        so often, a commit all the time: the commits pay nothing for it)."""
        cutoff = before.timestamp()
        with self._lock:
            latest = list(self._latest.items())
        rows = []
        for name, snapshot in latest:
            due = earliest(snapshot)
            if due is not None and due <= cutoff:
                rows.append((name, due))
        return due_rows(rows)

    def applied(self, name: str, request_ids: list[str]) -> dict[str, int]:
        """Which of ``request_ids`` made a commit of ``name``: ``{id: version}``."""
        with self._lock:
            ids = self._requests.get(name, {})
            return {rid: ids[rid] for rid in request_ids if rid in ids}

    def recover(self, name: str, codec: KindCodec) -> Any:
        return self._latest[name]

    def release(self, name: str, runtime_id: str) -> None:
        with self._lock:
            if self._owners.get(name) == runtime_id:
                del self._owners[name]

    def close(self) -> None:
        pass

    def names(self) -> list[str]:
        """The names stored here."""
        with self._lock:
            return sorted(self._latest)


#: The kind of each kind's snapshot type (a memory store keeps the value itself).
_KINDS: dict[type, str] = {
    MachineSnapshot: "machine",
    StoreSnapshot: "manager",
    ConfigHistory: "config",
}
