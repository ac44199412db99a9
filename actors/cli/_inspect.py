"""``stateward inspect``: the actors in a SQLite store, or one actor's history.

The store is opened read-only, so this is safe next to a running daemon.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
from typing import Any, TextIO

from stateward.actors import SQLiteStore
from stateward.core import (
    ConfigCodec,
    DefinitionMismatch,
    MachineCodec,
    MachineDefinitionError,
    MachineSpec,
    ManagerCodec,
    thaw,
)

from ._usage import NotFound

#: How many names an unknown name's error lists.
_LISTED = 10


def _codec_for(store: SQLiteStore, name: str, kind: str) -> Any:
    if kind == "manager":
        return ManagerCodec()
    if kind == "config":
        return ConfigCodec()
    definition = thaw(store.definition(name))
    # A statechart's definition also records its tree (older records do not).
    tree = {k: definition[k] for k in ("compound", "parallel", "history") if k in definition}
    if "history" in tree:
        tree["history"] = {h: tuple(where) for h, where in tree["history"].items()}
    try:
        spec = MachineSpec(
            definition["initial"],
            definition["transitions"],
            states=list(definition["states"]),
            history_limit=1_000_000,
            **tree,
        )
    except MachineDefinitionError as exc:
        raise NotFound(_unreadable(name, exc.problem)) from None
    return MachineCodec(spec)


def _unreadable(name: str, problem: str) -> str:
    return (
        f"cannot read machine {name!r}: its stored definition does not fit what it stored "
        f"({problem}); a statechart stored before its definition recorded its compound, "
        "parallel and history states cannot be inspected: open it with its spec in Python "
        "(StateMachine(spec, name=...))"
    )


def _recover(store: SQLiteStore, actor: Any) -> Any:
    """The actor's current value, read with the codec its stored definition makes."""
    try:
        return store.recover(actor.name, _codec_for(store, actor.name, actor.kind))
    except DefinitionMismatch as exc:
        if actor.kind != "machine":
            raise
        raise NotFound(_unreadable(actor.name, exc.problem)) from None


def _current(kind: str, value: Any) -> dict[str, Any]:
    """What ``--json`` says of an actor's current value: a machine's state, the
    keys of a manager's state or of a config, and the summary shown as text."""
    if kind == "machine":
        found = {"state": value.state, "summary": _summary(kind, value)}
        if value.configuration != {value.state}:  # a statechart: every active state
            found["configuration"] = sorted(value.configuration)
        return found
    keys = value.state if kind == "manager" else value.config
    return {"keys": sorted(keys), "summary": _summary(kind, value)}


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _summary(kind: str, value: Any) -> str:
    if kind == "machine":
        if value.configuration != {value.state}:
            return f"state {value.state!r} (active: {', '.join(sorted(value.configuration))})"
        return f"state {value.state!r}"
    if kind == "manager":
        return "keys " + ", ".join(sorted(value.state)) if value.state else "empty"
    return f"config {', '.join(sorted(value.config))}" if value.config else "empty config"


def _when(epoch: float) -> str:
    return _dt.datetime.fromtimestamp(epoch, _dt.UTC).isoformat(timespec="seconds")


def run_inspect(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """List the store's actors (or, with ``--history``, one actor's history).
    An actor it cannot read (a statechart stored before its definition
    recorded its tree) is listed as unreadable, the others as usual; each
    one's problem goes to ``err``, and the exit code is then 1."""
    store = SQLiteStore(args.path, readonly=True)
    try:
        listed = store.actors()
        if args.history is not None:
            return _print_history(store, listed, args, out)
        rows = []
        unreadable: list[str] = []
        for actor in listed:
            try:
                current = _current(actor.kind, _recover(store, actor))
            except NotFound as exc:  # the others are listed all the same
                unreadable.append(str(exc))
                current = {"summary": UNREADABLE, "unreadable": str(exc)}
            rows.append(
                {
                    "name": actor.name,
                    "kind": actor.kind,
                    "version": actor.version,
                    **current,
                    "last_change": _when(actor.updated_at),
                    "owner": actor.owner,
                }
            )
    finally:
        store.close()
    # Exit code 1 (cli conventions: something could not be read), each one
    # named on standard error with what to do, after the listing.
    code = 1 if unreadable else 0
    if args.json:
        print(json.dumps({"store": str(args.path), "actors": rows}, indent=2), file=out)
        _report_unreadable(unreadable, err)
        return code
    print(f"{_plural(len(rows), 'actor')} in {args.path}", file=out)
    widths = [
        max([len(h)] + [len(str(r[k])) for r in rows])
        for h, k in (
            ("NAME", "name"),
            ("KIND", "kind"),
            ("VERSION", "version"),
            ("CURRENT", "summary"),
        )
    ]
    header = ("NAME", "KIND", "VERSION", "CURRENT", "LAST CHANGE")
    print(
        "  ".join(h.ljust(w) for h, w in zip(header, [*widths, 0], strict=True)).rstrip(), file=out
    )
    for r in rows:
        cells = (r["name"], r["kind"], str(r["version"]), r["summary"], r["last_change"])
        print(
            "  ".join(str(c).ljust(w) for c, w in zip(cells, [*widths, 0], strict=True)).rstrip(),
            file=out,
        )
    _report_unreadable(unreadable, err)
    return code


#: What the listing shows as the current value of an actor it cannot read.
UNREADABLE = "unreadable (see the error below)"


def _report_unreadable(problems: list[str], err: TextIO) -> None:
    for problem in problems:
        print(f"stateward inspect: error: {problem}", file=err)


def _print_history(
    store: SQLiteStore, listed: list[Any], args: argparse.Namespace, out: TextIO
) -> int:
    found = [a for a in listed if a.name == args.history]
    if not found:
        names = ", ".join(a.name for a in listed[:_LISTED]) or "none"
        if len(listed) > _LISTED:
            names += f", ... and {len(listed) - _LISTED:,} more"
        raise NotFound(
            f"no actor named {args.history!r} in {args.path} ({_plural(len(listed), 'actor')}: "
            f"{names}); `stateward inspect {args.path}` lists them all"
        )
    actor = found[0]
    value = _recover(store, actor)
    entries: list[dict[str, Any]] = []
    if actor.kind == "machine":
        entries = [
            {
                "version": r.version,
                "from": r.from_state,
                "to": r.to_state,
                "event": r.event,
                "at": r.at.isoformat() if r.at else None,
                "payload_keys": list(r.payload_keys),
                # a statechart's records say every active state before and after
                **(
                    {
                        "configuration_before": sorted(r.configuration_before),
                        "configuration_after": sorted(r.configuration_after),
                    }
                    if r.configuration_before != {r.from_state}
                    or r.configuration_after != {r.to_state}
                    else {}
                ),
            }
            for r in value.history
        ]
    elif actor.kind == "config":
        entries = [
            {
                "version": e.version,
                "changes": thaw(e.changes),
                "removed": list(e.removed),
                "metadata": thaw(e.metadata),
                "at": e.at.isoformat(),
            }
            for e in value.entries
        ]
    else:
        entries = [{"version": value.version, "state": thaw(value.state)}]
    # A machine or config keeps its latest entries only (history_limit).
    oldest = entries[0]["version"] if entries and actor.kind != "manager" else 1
    if args.json:
        document = {"name": actor.name, "kind": actor.kind, "version": actor.version}
        document.update(oldest_kept=oldest, history=entries)
        print(json.dumps(document, indent=2, default=str), file=out)
        return 0
    print(
        f"{actor.kind} {actor.name!r}, version {actor.version}, {_summary(actor.kind, value)}",
        file=out,
    )
    if oldest > 1:
        dropped = "v1" if oldest == 2 else f"v1 to v{oldest - 1}"
        print(
            f"  ({dropped} not kept: the {actor.kind} keeps only its latest entries, "
            "as many as its history_limit)",
            file=out,
        )
    for entry in entries:
        detail = ", ".join(f"{k}={v}" for k, v in entry.items() if k != "version")
        print(f"  v{entry['version']}: {detail}", file=out)
    return 0
