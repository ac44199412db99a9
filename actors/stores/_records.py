"""Records: the snapshots and journal entries a database store writes, and recovery from them.

A record is ``encode_checked((name, kind, version, RECORD_SCHEMA, body))``:
the body is a snapshot's document or a commit's delta, and the record names
the actor and version it belongs to, so one found in the wrong place (a
misplaced row, a damaged index) is refused instead of loaded. Records written
by older code are upgraded on the way back (`RecordUpgrades`).

Recovery is the same for every database: the newest snapshot that reads back
whole, then every journal entry after it, in order, with no gap. Nothing here
knows a database; each store reads the rows and hands them over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from stateward.core import DecodeError, SchemaVersionError
from stateward.core._codec import decode_record, encode_checked
from stateward.core._persist import RECORD_SCHEMA, DefinitionMismatch, KindCodec, RecordUpgrades

from .._errors import RecoveryError
from ._group_commit import Pending
from ._protocol import RecoveryReport
from ._timer_index import mark

logger = logging.getLogger("stateward.actors")

#: Stored rows of one actor, as ``(version, payload)``.
Rows = Sequence[tuple[int, bytes]]


def encode_record(name: str, kind: str, version: int, body: Any) -> bytes:
    """The record of ``body`` (a document or a delta) for version ``version`` of ``name``."""
    return encode_checked((name, kind, version, RECORD_SCHEMA, body))


def journal_entry(
    name: str,
    codec: KindCodec,
    old: Any,
    new: Any,
    snapshot_every: int,
    request_id: str | None = None,
) -> Pending:
    """One commit's records: its journal entry (the delta from ``old`` to ``new``),
    and the snapshot of ``new`` if one is due at its version; ``request_id``
    (if given) is written with them, in the same transaction."""
    version = codec.version(new)
    payload = encode_record(name, codec.kind, version, codec.delta(old, new))
    snapshot = None
    if version % snapshot_every == 0:
        snapshot = encode_record(name, codec.kind, version, codec.document(new))
    entry = Pending(name, version, payload, snapshot)
    entry.request_id = request_id
    mark(entry, codec.kind, old, new)
    return entry


def read_record(
    upgrades: RecordUpgrades, name: str, kind: str, version: int, what: str, payload: bytes
) -> Any:
    """Decode a record and check it belongs where it was found; upgrade it."""
    record = decode_record(payload)
    if type(record) is not tuple or len(record) != 5:
        raise DecodeError(f"the {what} record is not a stateward record")
    r_name, r_kind, r_version, schema, body = record
    if (r_name, r_kind, r_version) != (name, kind, version):
        raise DecodeError(
            f"the {what} record belongs to {r_kind} {r_name!r} version "
            f"{r_version}, not {kind} {name!r} version {version}"
        )
    return upgrades.upgrade(kind, what, schema, body)


def recover_records(
    name: str,
    codec: KindCodec,
    upgrades: RecordUpgrades,
    snapshots: Rows,
    journal_after: Callable[[int], Rows],
) -> tuple[Any, RecoveryReport]:
    """The newest valid snapshot of ``name`` plus the journal after it.

    Args:
        snapshots: every stored snapshot of ``name``, newest first.
        journal_after: reads the journal entries of ``name`` after a version,
            oldest first.

    A snapshot that fails its checksum (or does not belong where it is) is
    skipped for an older one, and the skip is reported (the `RecoveryReport`
    returned, and the log). A damaged or missing journal entry after the
    chosen snapshot is a `RecoveryError`: it held an acknowledged commit.
    """
    skipped: list[tuple[int, str]] = []
    base = None
    base_version = -1
    for version, payload in snapshots:
        try:
            document = read_record(upgrades, name, codec.kind, version, "document", payload)
            base = codec.from_document(name, document)
            base_version = version
            break
        except SchemaVersionError as exc:
            raise RecoveryError(name, f"snapshot {version}: {exc}") from exc
        except LookupError as exc:
            raise RecoveryError(name, f"snapshot {version}: {exc}") from exc
        except DecodeError as exc:
            skipped.append((version, exc.reason))
    if base is None:
        problem = (
            "no snapshot is stored for it (every actor has at least one: the store is "
            "damaged, or its records were removed)"
            if not snapshots
            else "every stored snapshot is damaged: "
            + "; ".join(f"version {v}: {r}" for v, r in skipped)
        )
        raise RecoveryError(name, problem)
    entries = journal_after(base_version)
    snapshot = base
    expected = base_version + 1
    for version, payload in entries:
        if version != expected:
            raise RecoveryError(
                name, f"journal entry {expected} is missing (the next one is {version})"
            )
        try:
            delta = read_record(upgrades, name, codec.kind, version, "delta", payload)
        except (SchemaVersionError, LookupError) as exc:
            raise RecoveryError(name, f"journal entry {version}: {exc}") from exc
        except DecodeError as exc:
            raise RecoveryError(name, f"journal entry {version} is damaged: {exc.reason}") from exc
        try:
            snapshot = codec.apply(snapshot, delta)
        except DefinitionMismatch as exc:
            raise DefinitionMismatch(name, exc.problem) from None
        expected += 1
    report = RecoveryReport(name, base_version, len(entries), tuple(skipped))
    if skipped:
        logger.warning(
            "actor %r recovered from snapshot %d after skipping damaged snapshots: %s",
            name,
            base_version,
            "; ".join(f"version {v}: {r}" for v, r in skipped),
        )
    return snapshot, report
