"""Suite-wide fixtures: every test must leave no thread behind."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The docs site, built once for the whole run by ``mkdocs build --strict`` (a
    warning fails it) into a temporary folder. Tests read it and never write to it
    (one that must, copies it). Without the docs extra it skips; with CI=true it
    fails, since CI installs the test extra, which brings the docs extra."""
    try:
        importlib.import_module("mkdocs")
        importlib.import_module("mkdocstrings_handlers.python")
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("the docs extra is missing and CI=true: pip install -e '.[test]'")
        pytest.skip("needs the docs extra: python -m pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert built.returncode == 0, built.stderr[-4000:]
    return out
