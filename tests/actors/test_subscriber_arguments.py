"""A supervisor event subscriber that cannot be called is refused when it is given.

``Supervisor.subscribe`` and ``Runtime.subscribe`` took anything, and the
mistake only showed later as an error logged for every supervisor event.
They refuse it at once with `ArgumentTypeError` (a TypeError), as
``add_observer`` and every handle method do.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stateward.actors import Runtime, Supervisor
from stateward.core import ArgumentTypeError


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    rt = Runtime("subscribers")
    yield rt
    assert rt.shutdown(5).clean


@pytest.mark.parametrize("fn", [None, 5, "print"], ids=repr)
def test_a_subscriber_that_cannot_be_called_is_refused(runtime: Runtime, fn: Any) -> None:
    supervisor = Supervisor("s", runtime=runtime)
    with pytest.raises(ArgumentTypeError, match="subscribe"):
        supervisor.subscribe(fn)
    with pytest.raises(ArgumentTypeError, match="subscribe"):
        runtime.subscribe(fn)
    events: list[Any] = []
    supervisor.subscribe(events.append)  # a callable one is taken as before
    supervisor.stop(5)
    assert events, "the callable subscriber heard nothing"
