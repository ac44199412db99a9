"""A child process that commits until its writes fail, and reports every reply.

Run as ``python tests/stores/failed_commits_child.py PATH MODE SEED ROOM [SENDING]``. It
opens ``SQLiteStore(PATH, durability=MODE)``, creates its actors, then limits
the size of every file it writes (``RLIMIT_FSIZE``) to the size of the store's
files plus ``ROOM`` bytes, with ``SIGXFSZ`` ignored so that a write past the
limit fails with ``EFBIG`` instead of killing the process. Its threads then
send requests until each has sent its share, and it prints one line per
request: ``<actor> <key> <outcome>``, where outcome is

- ``ack``: the request succeeded: its key must be in the recovered state;
- ``failed``: the request failed with a `StoreWriteError` (inside
  `ActorCrashed`): its key must not be there, not even after recovery;
- ``refused``: the request failed before it ran (the actor was stopped or
  restarting failed): its key must not be there either;
- ``other <repr>``: anything else, which the test reports.

Every request sets a key of its own to a string of seeded random length, so
some entries fit in the room left and some do not, and snapshots (taken every
``SNAPSHOT_EVERY`` commits, holding every key) are larger still: a snapshot
due with a journal entry that fits is the case where they must not be split.

SENDING is ``blocking`` (the default: each request waits for its reply, so
most run inline, on the sender's thread) or ``pipelined`` (each thread sends
``WINDOW`` requests, then waits for their replies: the pool's workers run them,
and write the commits of the turns they run in a row together, across actors).

The test (``test_failed_commits.py``) reopens the store without a limit and
checks each line against the recovered actors.
"""

from __future__ import annotations

import os
import random
import resource
import signal
import sys
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from stateward.actors import (
    ActorCrashed,
    Runtime,
    SQLiteStore,
    StateManager,
    StoreWriteError,
    Supervisor,
)
from stateward.core import StatewardError

ACTORS = 40
THREADS = 6
REQUESTS_PER_THREAD = 50
SNAPSHOT_EVERY = 2
#: Seconds one request may take; the test's own timeout is longer.
REQUEST_TIMEOUT = 20.0
#: Bytes of room given back after each failed request, as a disk that others
#: free space on: the writes go on hitting the limit at different points.
DRIP = int(os.environ.get("DRIP", "8192"))
#: Requests a pipelined sender has in flight at once.
WINDOW = 8


def actor_name(index: int) -> str:
    return f"a{index:02d}"


def outcome_of(wait: Callable[[], Any]) -> str:
    """``ack``, ``failed``, ``refused`` or ``other <repr>`` (see the docstring)."""
    try:
        wait()
    except ActorCrashed as exc:
        return "failed" if isinstance(exc.cause, StoreWriteError) else f"other {exc!r}"
    except StatewardError as exc:
        return "refused" if not isinstance(exc, TimeoutError) else f"other {exc!r}"
    return "ack"


def main(path: str, mode: str, seed: int, room: int, sending: str) -> None:
    store = SQLiteStore(path, durability=mode, snapshot_every=SNAPSHOT_EVERY)
    workers = os.environ.get("STATEWARD_CHILD_WORKERS")  # see tests/stores/conftest.py
    runtime = Runtime(
        "failing",
        store=store,
        default_timeout=REQUEST_TIMEOUT,
        workers=None if workers is None else int(workers),
    )
    # Restarts without limit: a failed write crashes its actor, and the test
    # wants every actor to go on taking requests after that.
    sup = Supervisor("actors", runtime=runtime, max_restarts=1_000_000, within=1.0)
    actors = [
        StateManager({}, name=actor_name(i), runtime=runtime, supervisor=sup) for i in range(ACTORS)
    ]
    lock = threading.Lock()
    used = max(os.stat(f).st_size for f in (path, path + "-wal") if os.path.exists(f))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (used + room, resource.RLIM_INFINITY))

    limit = [used + room]

    def grow(more: int) -> None:
        with lock:
            limit[0] += more
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit[0], resource.RLIM_INFINITY))

    lines: list[str] = []

    def send(thread: int) -> None:
        rng = random.Random(seed * 100 + thread)
        window = WINDOW if sending == "pipelined" else 1
        for start in range(0, REQUESTS_PER_THREAD, window):
            sent = []
            for request in range(start, min(start + window, REQUESTS_PER_THREAD)):
                actor = rng.choice(actors)
                key = f"t{thread}r{request}"
                value = "x" * (
                    rng.randrange(10, 500) if rng.random() < 0.8 else rng.randrange(10_000, 30_000)
                )
                if sending == "blocking":  # waits here: most run inline, on this thread
                    sent.append((actor, key, outcome_of(partial(actor.update_state, {key: value}))))
                else:
                    sent.append((actor, key, actor.request_update({key: value})))
            for actor, key, reply in sent:
                outcome = reply if isinstance(reply, str) else outcome_of(reply.result)
                if outcome == "failed":
                    grow(DRIP)
                with lock:
                    lines.append(f"{actor.name} {key} {outcome}")

    threads = [threading.Thread(target=send, args=(t,), name=f"sender-{t}") for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(REQUEST_TIMEOUT * REQUESTS_PER_THREAD)
    stuck = [t.name for t in threads if t.is_alive()]
    sys.stdout.write("".join(line + "\n" for line in lines))
    sys.stdout.write(f"END {len(stuck)}\n")
    sys.stdout.flush()
    # Exit the way a crash would: what the store holds now is what counts.
    os._exit(0)


if __name__ == "__main__":
    main(
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]),
        int(sys.argv[4]),
        sys.argv[5] if len(sys.argv) > 5 else "blocking",
    )
