"""Ownership: who holds an actor's name in a store, and whether that owner is still alive.

A store records the owner of each name it hands out (`Store.claim`), so that
two runtimes never write one actor's records at once: a claim while another
live owner holds the name is refused with `ActorOwned`. An owner is

- a runtime of this process: live from `runtime_started` to `runtime_ended`;
- or, in a store that several processes share, a process on this host: live
  while it runs. Its start time (from ``/proc``) is recorded with its pid, so
  a pid that the system gave to a new process is not taken for the old one.

An owner that is gone (a runtime that ended without releasing, a process
killed with ``kill -9``) holds nothing: the next claim takes the name over.

The memory store and names a SQLite store has reserved but not yet written
use these rules alone. A name written in a SQLite store is held under its
runtime's lease (`_leases`), which uses them only to let a lease go before its
expiry: a runtime of this process that ended, a process of this host that is
gone. A running process, even a paused one, holds only until its lease expires.
"""

from __future__ import annotations

import os
import time
import uuid

#: Runtimes alive in this process, by id: an owner row naming one of them is live.
_live_runtime_ids: set[str] = set()


def new_runtime_id() -> str:
    """A fresh id for a runtime, unique across processes and hosts."""
    return uuid.uuid4().hex


def runtime_started(runtime_id: str) -> None:
    """From now on, names owned by ``runtime_id`` are held by a live owner."""
    _live_runtime_ids.add(runtime_id)


def runtime_ended(runtime_id: str) -> None:
    """From now on, names ``runtime_id`` still owns may be taken over."""
    _live_runtime_ids.discard(runtime_id)


def runtime_is_live(runtime_id: str) -> bool:
    """Whether ``runtime_id`` is a runtime of this process that has not ended."""
    return runtime_id in _live_runtime_ids


def process_start(pid: int) -> str:
    """An id for a process's life: its start time, so a reused pid is not taken for it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()
    except (OSError, IndexError):
        return ""


def process_alive(pid: int, started: str) -> bool:
    """Whether process ``pid``, started at ``started`` (`process_start`), still runs."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not started or process_start(pid) == started


#: This process, as an owner row records it.
MY_PID = os.getpid()
MY_START = process_start(MY_PID)


def owner_is_live(claimant: str, runtime_id: str, pid: int, started: str) -> bool:
    """Whether the owner recorded as runtime ``runtime_id`` of process ``pid``
    (started at ``started``) still holds its name against runtime ``claimant``.

    In this process, only another runtime that has not ended holds it (a
    runtime may claim again what it owns); elsewhere, any running process.
    """
    if pid == MY_PID and started == MY_START:
        return runtime_id in _live_runtime_ids and runtime_id != claimant
    return process_alive(pid, started)


def describe_owner(runtime_id: str, pid: int, since: float) -> str:
    """The owner as `ActorOwned` names it: process, runtime and since when."""
    return (
        f"process {pid} (runtime {runtime_id}) since "
        f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}"
    )
