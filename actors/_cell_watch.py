"""A cell's deadline watchdog (``deadline=`` on a handle).

While a watched request runs, a timer is due at its deadline. If the request
is still running then, the watchdog *fences* the incarnation running it: the
cell's generation moves on (so that incarnation can commit nothing more), the
hung incarnation is retired and counts as crashed, its caller is answered
`DeadlineExceeded`, and the mailbox gets a new turn so that the next
incarnation need not wait for the hung run. A request that a fenced run takes
afterwards is answered when it ends (`unwatch`): it can no longer
commit.

`_cell.Cell` calls `watch` and `unwatch` around each watched request; the
state (``inflight``, ``watchdog``) is the cell's.
"""

from __future__ import annotations

from typing import Any

from ._errors import DeadlineExceeded
from ._reply import Reply


def watch(cell: Any, message: Reply[Any], generation: int) -> None:
    """Start watching ``message``, which ``cell`` runs now, until its deadline."""
    cell.inflight = message
    deadline = cell.deadline
    assert deadline is not None
    cell.watchdog = cell.runtime.timer.call_later(
        deadline, lambda: _deadline_passed(cell, message, generation, deadline)
    )


def unwatch(cell: Any, message: Reply[Any], generation: int) -> bool:
    """End the watch; False if this incarnation was fenced meanwhile.

    A fence (the watchdog, or an abandon) answers the request it finds in
    flight. One that this run took after the fence was found by nobody:
    it can no longer commit, and is answered here.
    """
    with cell.commit_lock:
        fenced = cell.generation != generation
        unanswered = fenced and cell.inflight is message
        if not fenced or unanswered:
            cell.inflight = None
    if fenced:
        # Its watchdog, if still due, finds it no longer in flight; the
        # one there now may be a newer incarnation's, which stays.
        if unanswered:
            cell._answer_fenced(message)
        return False
    watchdog = cell.watchdog
    if watchdog is not None:
        watchdog.cancel()
    return True


def _deadline_passed(cell: Any, message: Reply[Any], generation: int, deadline: float) -> None:
    """The timer of ``message``'s deadline: fence its incarnation if it still runs."""
    with cell.commit_lock:
        if cell.inflight is not message or cell.generation != generation:
            return  # it finished in time
        cell.generation += 1  # fence: the hung incarnation can no longer commit
        cell.inflight = None
        hung = cell.running
        if hung is not None:
            # Retired before anyone can see the fence (the hung run sees it
            # through `_unwatch`, under this lock): a turn given back now must
            # not go to it, or it would take queued requests it can never commit.
            hung.retire()
        cell.mailbox.fence_turn()  # the hung run's token gives back nothing now
        awaiting = cell.awaiting
    if awaiting is not None:
        awaiting.cancel()  # an async hook: cancel it, so its thread is freed
    cause = DeadlineExceeded(cell.name, message.describe(), deadline)
    cell.failures += 1
    cell.last_error = cause
    try:
        if hung is not None:
            hung.crashed(cause, message)
        else:  # pragma: no cover - a watched request always has a running incarnation
            cell.answer_crash(message, cause)
    finally:
        # The new turn is free: whatever waits (a next incarnation's start,
        # queued requests) must not wait for the hung run to give up the old one.
        cell.mailbox.kick()
