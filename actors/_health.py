"""`Runtime.health`: whether a runtime can do its work, for a readiness probe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Health", "health_of"]


@dataclass(frozen=True, slots=True)
class Health:
    """What `Runtime.health` returns.

    Attributes:
        ok: True when nothing below is wrong: the runtime is running, had no
            fatal failure, no supervisor of it has given up, its store answers,
            and no actor's mailbox is at its limit.
        reasons: what is wrong, one sentence each (empty when ``ok``).
        runtime: the runtime's name.
    """

    ok: bool
    reasons: tuple[str, ...]
    runtime: str

    def __bool__(self) -> bool:
        return self.ok

    def describe(self) -> str:
        """One line per reason, or ``ok``: what a probe endpoint answers."""
        if self.ok:
            return f"runtime {self.runtime!r}: ok"
        return "\n".join(f"runtime {self.runtime!r}: {reason}" for reason in self.reasons)


def health_of(runtime: Any) -> Health:
    """Look at ``runtime`` now (see `Runtime.health`)."""
    reasons: list[str] = []
    if runtime.closed:
        reasons.append("it has shut down (or is shutting down): it takes no new actors")
    fatal = runtime.fatal
    if fatal is not None:
        reasons.append(f"fatal failure: the root supervisor gave up on {fatal!r}")
    for name in runtime._gave_up_supervisors():
        reasons.append(f"supervisor {name!r} gave up: its actors are stopped")
    ping = getattr(runtime.store, "ping", None)  # a memory store is always there
    try:
        if ping is not None:
            ping()
    except Exception as exc:
        reasons.append(f"its store does not answer: {exc!r}")
    full = []
    for handle in runtime:
        cell = handle._cell
        limit = cell.room_limit()
        if limit is not None and cell.mailbox.qsize() >= limit:
            full.append(cell.name)
    if full:
        shown = ", ".join(repr(name) for name in full[:5])
        more = f" and {len(full) - 5} more" if len(full) > 5 else ""
        reasons.append(
            f"{len(full)} mailbox{'es' if len(full) > 1 else ''} at the limit: {shown}{more} "
            "(requests to them are refused or wait)"
        )
    return Health(not reasons, tuple(reasons), runtime.name)
