from __future__ import annotations

from collections.abc import Iterator

import pytest

from stateward.actors import Runtime


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    """A runtime for one test, shut down (and its threads gone) afterwards."""
    rt = Runtime("test", default_timeout=10.0)
    yield rt
    rt.shutdown(timeout=10.0)


#: The pool size of the ``pool`` runs of `each_host`.
POOL_WORKERS = 16


@pytest.fixture(params=["thread", "pool"])
def each_host(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once per host: every runtime it makes gives each actor a
    thread of its own (``thread``: ``Runtime(workers=0)``), or runs them on a
    pool of workers (``pool``: ``Runtime(workers=16)`` unless the test says
    otherwise).

    Sixteen, because some tests hold up to eight actors in blocking hooks at
    once and still expect the others to run: a blocking hook holds a pooled
    worker for as long as it blocks (that is what ``dedicated=True`` is for),
    and a pool with as many workers as blocked actors would serve no one else.

    A module opts in with ``pytestmark = pytest.mark.usefixtures("each_host")``.
    """
    defaults = Runtime.__init__.__kwdefaults__
    assert defaults is not None and "workers" in defaults
    monkeypatch.setitem(defaults, "workers", POOL_WORKERS if request.param == "pool" else 0)
    return str(request.param)
