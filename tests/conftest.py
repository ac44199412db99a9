"""Suite-wide fixtures: every test must leave no thread behind."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from support import Workers, switching_threads_often

#: How long a test may take to stop the threads it started.
THREAD_GRACE_S = 5.0


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves threads running after it ends."""
    before = set(threading.enumerate())
    yield
    leaked: list[threading.Thread] = []
    for thread in set(threading.enumerate()) - before:
        thread.join(THREAD_GRACE_S)
        if thread.is_alive():
            leaked.append(thread)
    assert not leaked, f"test left threads running: {[t.name for t in leaked]}"


@pytest.fixture
def workers() -> Iterator[Workers]:
    """Threads for a test; joined (and their errors re-raised) at the end."""
    pool = Workers()
    yield pool
    pool.join()


@pytest.fixture
def tiny_switch_interval() -> Iterator[None]:
    """Switch threads as often as the interpreter can: more interleavings."""
    with switching_threads_often():
        yield
