"""What the demo measures as it runs: progress, threads and memory."""

from __future__ import annotations

import os
import sys
import threading
import time
import tracemalloc
from typing import TextIO

#: Seconds between progress updates: a rewritten line on a terminal is cheap
#: to watch; plain lines (a log, a pipe) come every few seconds.
TERMINAL_INTERVAL = 0.5
PLAIN_INTERVAL = 5.0
#: How often a long loop looks at the clock (and samples the thread count).
SAMPLE_EVERY = 64


class Progress:
    """Live progress: one rewritten line on a terminal, plain lines otherwise.

    `due` says whether the next update is due (every ``interval`` seconds);
    `show` writes it.
    """

    def __init__(self, stream: TextIO, interval: float | None) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        if interval is None:
            interval = TERMINAL_INTERVAL if self.tty else PLAIN_INTERVAL
        self.interval = interval
        self._last = time.monotonic()
        self._shown = False

    def restart(self) -> None:
        """Start counting the interval afresh (a new phase begins)."""
        self._last = time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.interval

    def show(self, text: str) -> None:
        self._last = time.monotonic()
        if self.tty:
            self.stream.write("\r\x1b[K" + text)
            self._shown = True
        else:
            self.stream.write("progress: " + text + "\n")
        self.stream.flush()

    def done(self) -> None:
        """End the phase: on a terminal, clear the progress line for what follows."""
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False


class Threads:
    """The process's thread count: where it started, and its peak as sampled."""

    def __init__(self) -> None:
        self.before = set(threading.enumerate())
        self.start = len(self.before)
        self.peak = self.start

    def sample(self) -> int:
        count = threading.active_count()
        self.peak = max(self.peak, count)
        return count

    def wait_back(self, timeout: float) -> int:
        """Wait, up to ``timeout`` seconds in all, for the threads started since
        this object was made to end; return the thread count then."""
        deadline = time.monotonic() + timeout
        for thread in threading.enumerate():
            if thread not in self.before and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        return threading.active_count()


def rss_bytes() -> int | None:
    """This process's resident set size now (Linux ``/proc``), or None elsewhere."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """This process's peak resident set size (``getrusage``: KiB on Linux, bytes
    on macOS), or 0 where there is no ``getrusage`` (Windows)."""
    try:
        import resource  # Unix only
    except ImportError:
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class Memory:
    """Measures the memory that creating the machines took.

    ``rss``: the growth of the resident set size (``/proc/self/statm``, or the
    peak RSS from ``getrusage`` where there is no ``/proc``): everything the
    process holds, SQLite's page cache included. ``tracemalloc``: the Python
    allocations still live afterwards (it slows creation down about twice).
    """

    def __init__(self, method: str) -> None:
        self.method = method
        self.bytes = 0
        self._before = 0

    @property
    def label(self) -> str:
        if self.method == "tracemalloc":
            return "tracemalloc, Python allocations still live after creating them"
        if rss_bytes() is None:
            return "peak RSS growth while creating them"
        return "RSS growth while creating them"

    def begin(self) -> None:
        if self.method == "tracemalloc":
            tracemalloc.start()
            self._before = tracemalloc.get_traced_memory()[0]
        else:
            now = rss_bytes()
            self._before = now if now is not None else peak_rss_bytes()

    def end(self) -> None:
        if self.method == "tracemalloc":
            self.bytes = tracemalloc.get_traced_memory()[0] - self._before
            tracemalloc.stop()
        else:
            now = rss_bytes()
            self.bytes = (now if now is not None else peak_rss_bytes()) - self._before


def size(count: float) -> str:
    """``count`` bytes for people: ``812 B``, ``7.9 KiB``, ``1.2 GiB``."""
    for unit in ("B", "KiB", "MiB"):
        if abs(count) < 1024:
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1024
    return f"{count:,.1f} GiB"
