"""The process-wide default runtime, for handles created without ``runtime=``
outside any ``with Runtime(...)`` block, and the shutdown of every runtime
still running at interpreter exit."""

from __future__ import annotations

import atexit
import threading
import time

from ._context import set_default_runtime
from ._runtime import Runtime, live_runtimes

_default: Runtime | None = None
_default_lock = threading.Lock()


def default_runtime() -> Runtime:
    """The process-wide runtime used by handles created without ``runtime=``.

    Created on first use; shut down (mailboxes drained) at interpreter exit. If
    it has been shut down, the next call creates a new one.
    """
    global _default
    runtime = _default
    if runtime is None or runtime.closed:
        with _default_lock:
            if _default is None or _default.closed:
                _default = Runtime("default")
            runtime = _default
    return runtime


set_default_runtime(default_runtime)

#: How long the runtimes still running at interpreter exit get, in all.
EXIT_SHUTDOWN_TIMEOUT = 5.0


@atexit.register
def _shutdown_at_exit() -> None:
    deadline = time.monotonic() + EXIT_SHUTDOWN_TIMEOUT
    for runtime in list(live_runtimes):
        if not runtime.closed:
            runtime.shutdown(timeout=max(0.0, deadline - time.monotonic()))
