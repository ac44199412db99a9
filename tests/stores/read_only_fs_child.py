"""Opens stores on a read-only file system, in a mount namespace of its own.

Run as ``unshare -rm python tests/stores/read_only_fs_child.py FOLDER``: it
mounts a tmpfs on FOLDER (seen by this process alone), makes three stores
there, remounts the tmpfs read-only, then opens each with ``readonly=True`` and
``readonly=False`` and prints one line per attempt, ``<store> <readonly>
<outcome>``, where outcome is ``opened n=<counter's n>`` or the error:

- ``clean``: closed normally, so only the database file is left;
- ``crashed``: its process ended without closing it, leaving its -wal and
  -shm files (the counter's last commits are in the -wal);
- ``wal-only``: the crashed store's database and -wal files without the -shm.

The test (``test_sqlite.py``) checks the lines.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from stateward.actors import Runtime, SQLiteStore, StateManager
from stateward.core._persist import ManagerCodec

CRASH = """
import os, sys
from stateward.actors import Runtime, SQLiteStore, StateManager
runtime = Runtime("crash", store=SQLiteStore(sys.argv[1]))
counter = StateManager({"n": 0}, name="counter", runtime=runtime)
counter.update_state({"n": 7})
os._exit(0)
"""


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)


def main(folder: str) -> None:
    mount("-t", "tmpfs", "-o", "size=16m", "none", folder)
    clean = os.path.join(folder, "clean.db")
    with Runtime("clean", store=SQLiteStore(clean)) as runtime:
        StateManager({"n": 0}, name="counter", runtime=runtime).update_state({"n": 5})
    crashed = os.path.join(folder, "crashed.db")
    subprocess.run([sys.executable, "-c", CRASH, crashed], check=True, timeout=60)
    os.mkdir(os.path.join(folder, "wal-only"))
    wal_only = os.path.join(folder, "wal-only", "crashed.db")
    for suffix in ("", "-wal"):
        shutil.copyfile(crashed + suffix, wal_only + suffix)
    mount("-o", "remount,ro", folder)
    for name, path in (("clean", clean), ("crashed", crashed), ("wal-only", wal_only)):
        for readonly in (True, False):
            try:
                store = SQLiteStore(path, readonly=readonly)
                try:
                    outcome = f"opened n={store.recover('counter', ManagerCodec()).state.n}"
                finally:
                    store.close()
            except Exception as exc:  # reported to the test, which checks it
                outcome = f"{type(exc).__name__}: {exc}"
            print(name, readonly, outcome, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
