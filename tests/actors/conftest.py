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
