"""Stores the system will not let this process write: read them where SQLite
can, and refuse the rest with a `StoreOpenError` that says what is wrong.

The tests run as root here, and root passes every permission check: the
permission cases run in a child process that first drops to the user
``nobody`` (when started as root), in a folder under /tmp that it can reach.
The read-only file system is a real one: a tmpfs remounted read-only in a
user and mount namespace of its own (``unshare -rm``), seen by one child
process alone. Where the machine allows no such namespace, that test is
skipped and says why.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stateward.actors import Runtime, SQLiteStore, StateManager

HERE = Path(__file__).resolve().parent
READ_ONLY_FS_CHILD = HERE / "read_only_fs_child.py"
CHILD_TIMEOUT = 60.0

#: Runs in the child: everything is imported before the privileges go, since
#: the interpreter's own files may be out of reach of the unprivileged user.
OPEN_AS_ANOTHER_USER = """
import os, sys
from stateward.actors import SQLiteStore
from stateward.core._persist import ManagerCodec
uid, gid, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if uid >= 0:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
for readonly in (True, False):
    try:
        store = SQLiteStore(path, readonly=readonly)
        outcome = f"opened n={store.recover('counter', ManagerCodec()).state.n}"
        store.close()
    except BaseException as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    print(readonly, outcome, flush=True)
"""


def open_as_another_user(path: Path) -> dict[bool, str]:
    """Open ``path`` with readonly True and False in a child that file
    permissions apply to; return the outcome of each."""
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        ids = [str(nobody.pw_uid), str(nobody.pw_gid)]
    else:
        ids = ["-1", "-1"]  # permissions apply already
    done = subprocess.run(
        [sys.executable, "-c", OPEN_AS_ANOTHER_USER, *ids, str(path)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcomes = {}
    for line in done.stdout.splitlines():
        readonly, outcome = line.split(" ", 1)
        outcomes[readonly == "True"] = outcome
    return outcomes


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder the unprivileged child can reach (pytest's tmp_path is private)."""
    folder = Path(tempfile.mkdtemp(prefix="stateward-permissions-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for sub in folder.iterdir():
            sub.chmod(0o755)
        shutil.rmtree(folder)


def make_store(path: Path, n: int) -> None:
    with Runtime("maker", store=SQLiteStore(path)) as runtime:
        StateManager({"n": 0}, name="counter", runtime=runtime).update_state({"n": n})


def test_a_store_in_a_folder_this_user_may_not_enter_is_refused_clearly(
    shared_folder: Path,
) -> None:
    locked = shared_folder / "locked"
    locked.mkdir()
    make_store(locked / "s.db", 3)
    locked.chmod(0o600)  # no search (x) permission, for its owner either
    outcomes = open_as_another_user(locked / "s.db")
    said = (
        f"StoreOpenError: cannot open stateward store '{locked}/s.db': this user may not "
        f"enter the folder '{locked}' or one above it (Permission denied); give the user "
        "that runs stateward search (x) permission"
    )
    assert outcomes[True].startswith(said), outcomes[True]
    assert outcomes[False].startswith(said), outcomes[False]


def test_a_store_this_user_may_read_in_a_folder_it_may_not_write_says_what_sqlite_needs(
    shared_folder: Path,
) -> None:
    folder = shared_folder / "theirs"
    folder.mkdir()
    make_store(folder / "s.db", 4)
    (folder / "s.db").chmod(0o644)
    folder.chmod(0o555)
    outcomes = open_as_another_user(folder / "s.db")
    assert outcomes[True] == (
        f"StoreOpenError: cannot open stateward store '{folder}/s.db': SQLite reads it "
        "through a -shm file next to it, which this user may not create in its folder; open "
        "it as a user that may write to the folder, or copy the store to a folder of your own"
    )
    assert outcomes[False] == (
        f"StoreOpenError: cannot open stateward store '{folder}/s.db': it is not writable; "
        "check the file's and folder's permissions"
    )


def test_a_store_on_a_read_only_file_system_is_read_and_refused_for_writing(
    tmp_path: Path,
) -> None:
    probe = subprocess.run(
        ["unshare", "-rm", "mount", "-t", "tmpfs", "none", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a file system in a namespace here: {probe.stderr.strip()}")
    folder = tmp_path / "mnt"
    folder.mkdir()
    done = subprocess.run(
        ["unshare", "-rm", sys.executable, str(READ_ONLY_FS_CHILD), str(folder)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcomes = {}
    for line in done.stdout.splitlines():
        name, readonly, outcome = line.split(" ", 2)
        outcomes[name, readonly == "True"] = outcome
    refused = (
        "StoreOpenError: cannot open stateward store '{}': it is on a read-only file system; "
        "open it with SQLiteStore(path, readonly=True) to read it, or copy it to a writable "
        "place"
    )
    assert outcomes == {
        ("clean", True): "opened n=5",
        ("clean", False): refused.format(folder / "clean.db"),
        ("crashed", True): "opened n=7",
        ("crashed", False): refused.format(folder / "crashed.db"),
        ("wal-only", True): (
            f"StoreOpenError: cannot open stateward store '{folder}/wal-only/crashed.db': its "
            "write-ahead log (the -wal file) holds commits that SQLite can read only through "
            "a -shm file, and none can be created on this read-only file system; copy the "
            "store file with its -wal file to a writable place and open the copy"
        ),
        ("wal-only", False): refused.format(folder / "wal-only" / "crashed.db"),
    }
