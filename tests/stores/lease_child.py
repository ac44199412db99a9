"""A child process that holds an actor under a lease, for the SIGSTOP zombie test.

Run as ``python tests/stores/lease_child.py PATH CLOCK``. It opens
``SQLiteStore(PATH, lease_seconds=30)`` (for a ``PATH`` of ``pg:SCHEMA``, a
`PostgresStore` on that schema of the server at ``STATEWARD_PG_URL``) whose
lease clock reads the number of seconds written in the file ``CLOCK`` (the
test moves it: both processes agree on it), creates ``counter`` with
``n = 1`` and prints ``READY``. Then for each line ``commit N`` on its stdin
it sets ``n = N`` and prints ``OK``, or ``ERR <error type> <held epoch>
<current epoch>`` if the commit failed (the error type is the cause of the
actor's crash). It shuts down at the end of its stdin. Its runtime's timer is
a `ManualClock`: it renews nothing by itself.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from stateward.actors import (
    ActorCrashed,
    ManualClock,
    PostgresStore,
    Runtime,
    SQLiteStore,
    StateManager,
)


def main(path: str, clock_file: str) -> None:
    def clock() -> float:
        return float(Path(clock_file).read_text())

    store: SQLiteStore | PostgresStore
    if path.startswith("pg:"):
        url = os.environ["STATEWARD_PG_URL"]
        store = PostgresStore(url, schema=path[3:], lease_seconds=30.0, lease_clock=clock)
    else:
        store = SQLiteStore(path, lease_seconds=30.0, lease_clock=clock)
    with Runtime("child", store=store, timer=ManualClock()) as runtime:
        counter = StateManager({"n": 0}, name="counter", runtime=runtime)
        counter.update_state({"n": 1})
        print("READY", flush=True)
        for line in sys.stdin:
            n = int(line.split()[1])
            try:
                counter.update_state({"n": n})
            except Exception as exc:
                cause = exc.__cause__ if isinstance(exc, ActorCrashed) else exc
                held = getattr(cause, "held", None)
                current = getattr(cause, "current", None)
                print(f"ERR {type(cause).__name__} {held} {current}", flush=True)
            else:
                print("OK", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
