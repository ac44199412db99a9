"""A daemon runs until SIGTERM or SIGINT, then stops gracefully within a budget
(`Runtime.run_until_signal`, `Runtime.arun_until_signal`).

The end-to-end tests run tests/actors/stop_daemon.py in a child process under
load, signal it, and reopen its store; the others run in the test process,
whose main thread is the test's.
"""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stateward.actors import (
    ActorCrashed,
    ActorStopped,
    NotInMainThread,
    Runtime,
    SQLiteStore,
    StateManager,
)
from stateward.core import InvalidArgument

DAEMON = Path(__file__).with_name("stop_daemon.py")
#: Generous: the machine is shared, and a child process starts in seconds there.
START_S = 60.0


# -- end to end: a daemon in a child process ---------------------------------------------------


class Daemon:
    """tests/actors/stop_daemon.py in a child process, its stdout read line by line."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.store = tmp_path / "daemon.db"
        self.acks = tmp_path / "acks.txt"
        self.process = subprocess.Popen(
            [sys.executable, str(DAEMON), str(self.store), str(self.acks), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, name="daemon-stdout")
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, wanted: str) -> None:
        deadline = time.monotonic() + START_S
        while True:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            assert line is not None, f"the daemon ended before {wanted!r}: {self.finish(5)}"
            if line == wanted:
                return

    def signal_and_wait(self, signum: int, within: float) -> tuple[int, float, str]:
        """Send ``signum``; the exit code, the seconds until the exit, and stderr."""
        sent = time.monotonic()
        self.process.send_signal(signum)
        code = self.process.wait(within)
        return code, time.monotonic() - sent, self.finish(within)

    def finish(self, timeout: float) -> str:
        if self.process.poll() is None:
            self.process.kill()
        _, stderr = self.process.communicate(timeout=timeout)
        self.reader.join(timeout)
        return stderr

    def acknowledged(self) -> tuple[dict[int, list[int]], dict[int, str]]:
        """Each client's acknowledged values, in order, and how it was refused."""
        acked: dict[int, list[int]] = {}
        refused: dict[int, str] = {}
        for line in self.acks.read_text(encoding="utf-8").splitlines():
            if line.startswith("refused "):
                _, client, message = line.split(" ", 2)
                refused[int(client)] = message
            else:
                client, n = line.split()
                acked.setdefault(int(client), []).append(int(n))
        return acked, refused


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:  # one that a failed assertion left running
        daemon.finish(10)


def stored(path: Path, names: list[str]) -> dict[str, int]:
    """The counters' values as a new runtime recovers them from the store."""
    with Runtime("reopened", store=SQLiteStore(path)) as runtime:
        return {
            name: StateManager({"n": 0}, name=name, runtime=runtime).get_state().n for name in names
        }


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("mode", ["threads", "asyncio"])
def test_a_signal_mid_load_drains_stores_every_acknowledged_update_and_exits_0(
    tmp_path: Path, daemons: list[Daemon], signum: signal.Signals, mode: str
) -> None:
    budget = 10.0
    args = ["--clients", "4", "--budget", str(budget)]
    daemon = Daemon(tmp_path, *args, *(["--asyncio"] if mode == "asyncio" else []))
    daemons.append(daemon)
    daemon.wait_for("loaded")  # every client has had 20 updates acknowledged, and goes on

    code, seconds, stderr = daemon.signal_and_wait(signum, within=budget + 20)

    assert code == 0, stderr
    assert seconds < budget, f"took {seconds:.1f} s to exit, over the {budget} s budget"
    acked, refused = daemon.acknowledged()
    assert sorted(acked) == [0, 1, 2, 3]
    for client, values in acked.items():
        assert values == list(range(1, len(values) + 1)), f"client {client}: {values}"
        assert len(values) >= 20
    # Every client went on until the runtime refused it, saying why.
    assert sorted(refused) == [0, 1, 2, 3]
    for message in refused.values():
        assert message.startswith("ActorStopped: ")
        assert f"runtime 'stop-daemon' is stopping on {signum.name}" in message
        assert "takes no new requests" in message
    # Every acknowledged update is in the store, and nothing else: a request
    # was either handled and answered, or refused.
    names = [f"counter-{i}" for i in range(4)]
    assert stored(daemon.store, names) == {f"counter-{i}": acked[i][-1] for i in range(4)}


@pytest.mark.parametrize("mode", ["threads", "asyncio"])
def test_a_budget_too_small_for_the_queued_work_exits_1_naming_what_was_abandoned(
    tmp_path: Path, daemons: list[Daemon], mode: str
) -> None:
    budget = 0.5
    args = ["--clients", "2", "--budget", str(budget), "--stuck"]
    daemon = Daemon(tmp_path, *args, *(["--asyncio"] if mode == "asyncio" else []))
    daemons.append(daemon)
    daemon.wait_for("stuck")  # its update blocks for 60 s, two more are queued behind it
    daemon.wait_for("loaded")

    code, seconds, stderr = daemon.signal_and_wait(signal.SIGTERM, within=30)

    assert code == 1, stderr
    assert seconds < 15, f"took {seconds:.1f} s: it waited for the stuck update"
    assert "stateward: runtime 'stop-daemon', stopping on SIGTERM:" in stderr
    assert "abandoned 1 actor(s)" in stderr
    assert "stuck (3 requests given up)" in stderr  # the one running and the two queued
    acked, _ = daemon.acknowledged()
    names = [f"counter-{i}" for i in range(2)]
    assert stored(daemon.store, [*names, "stuck"]) == {
        **{f"counter-{i}": acked[i][-1] for i in range(2)},
        "stuck": 0,  # nothing of what it gave up on was committed
    }


# -- in the test process ------------------------------------------------------------------------


class Sender:
    """A thread that sends a signal to this process: started by ``on_ready``, once
    the runtime's handlers are in. Joined, and what it raised re-raised, by `join`."""

    def __init__(self, signum: int) -> None:
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._send, args=(signum,), name="send-signal")

    def _send(self, signum: int) -> None:
        try:
            os.kill(os.getpid(), signum)  # to the process: any thread may take it
        except BaseException as exc:
            self.errors.append(exc)

    def start(self) -> None:
        self.thread.start()

    def join(self) -> None:
        self.thread.join(10)
        assert not self.thread.is_alive()
        if self.errors:
            raise self.errors[0]


def increment(state: Any) -> Any:
    return state.update(n=state.n + 1)


def test_the_previous_handlers_are_put_back_and_later_requests_are_refused() -> None:
    def mine(signum: int, frame: object) -> None:
        raise AssertionError("the daemon's own handler ran while the runtime had the signal")

    previous_term = signal.signal(signal.SIGTERM, mine)
    previous_int = signal.getsignal(signal.SIGINT)
    seen_in_on_ready: list[Any] = []
    seen_in_before_stop: list[int] = []
    try:
        runtime = Runtime("signalled")
        counter = StateManager({"n": 0}, name="counter", runtime=runtime)
        counter.modify(increment)
        sender = Sender(signal.SIGTERM)

        def on_ready() -> None:  # the handlers are in: a signal now stops it gracefully
            seen_in_on_ready.append(signal.getsignal(signal.SIGTERM))
            sender.start()

        def before_stop() -> None:  # the actors still take requests here
            seen_in_before_stop.append(counter.modify(increment).n)

        code = runtime.run_until_signal(budget=5, on_ready=on_ready, before_stop=before_stop)
        sender.join()

        assert code == 0
        assert len(seen_in_on_ready) == 1 and seen_in_on_ready[0] not in (mine, signal.SIG_DFL)
        assert seen_in_before_stop == [2]
        assert runtime.closed
        with pytest.raises(ActorStopped, match="'signalled' is stopping on SIGTERM") as refused:
            counter.modify(increment)
        assert "takes no new requests" in str(refused.value)
        assert signal.getsignal(signal.SIGTERM) is mine
        assert signal.getsignal(signal.SIGINT) is previous_int
        assert signal.set_wakeup_fd(-1) == -1  # none was set before, none is left
    finally:
        signal.signal(signal.SIGTERM, previous_term)


def test_a_fatal_failure_ends_the_wait_with_exit_code_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fatal: list[BaseException] = []
    runtime = Runtime("failing", max_restarts=0, fatal_handler=fatal.append)
    child = StateManager({"n": 0}, name="child", runtime=runtime, on_error="restart")
    errors: list[BaseException] = []

    def crash() -> None:
        try:
            with pytest.raises(ActorCrashed):
                child.modify(lambda state: 1 / 0)  # no restart allowed: the root gives up
        except BaseException as exc:
            errors.append(exc)

    crasher = threading.Thread(target=crash, name="crash")
    code = runtime.run_until_signal(budget=5, on_ready=crasher.start)
    crasher.join(10)

    assert not errors and code == 1
    assert len(fatal) == 1 and runtime.fatal is fatal[0]  # the application's handler ran too
    assert runtime.fatal_handler == fatal.append  # and is its own again
    err = capsys.readouterr().err
    assert "stateward: runtime 'failing', stopping because its root supervisor gave up" in err


def test_what_before_stop_raises_comes_out_once_the_runtime_has_stopped() -> None:
    runtime = Runtime("raising")
    sender = Sender(signal.SIGINT)

    def before_stop() -> None:
        raise OSError("the listening socket would not close")

    with pytest.raises(OSError, match="would not close"):
        runtime.run_until_signal(budget=5, on_ready=sender.start, before_stop=before_stop)
    sender.join()
    assert runtime.closed
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_what_on_ready_raises_comes_out_with_the_handlers_put_back() -> None:
    def on_ready() -> None:
        raise OSError("port 8080 is taken")

    with Runtime("not-ready") as runtime:
        with pytest.raises(OSError, match="port 8080"):
            runtime.run_until_signal(budget=5, on_ready=on_ready)
        assert not runtime.closed  # its with block stops it
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.set_wakeup_fd(-1) == -1


def test_asyncio_stops_on_a_signal_awaits_before_stop_and_puts_the_handlers_back() -> None:
    previous = signal.getsignal(signal.SIGTERM)

    async def main() -> tuple[int, list[int]]:
        runtime = Runtime("async-daemon")
        counter = StateManager({"n": 0}, name="counter", runtime=runtime)
        seen: list[int] = []

        async def before_stop() -> None:
            seen.append((await counter.amodify(increment)).n)

        sender = Sender(signal.SIGTERM)

        async def on_ready() -> None:
            sender.start()

        try:
            code = await runtime.arun_until_signal(
                budget=5, on_ready=on_ready, before_stop=before_stop
            )
        finally:
            sender.join()
        with pytest.raises(ActorStopped, match="is stopping on SIGTERM"):
            await counter.amodify(increment)
        return code, seen

    code, seen = asyncio.run(main())
    assert (code, seen) == (0, [1])
    assert signal.getsignal(signal.SIGTERM) is previous


def test_asyncio_puts_back_a_handler_the_loop_itself_had_for_the_signal() -> None:
    async def main() -> tuple[int, list[str]]:
        loop = asyncio.get_running_loop()
        ran: list[str] = []
        again = asyncio.Event()

        def applications(name: str) -> None:  # the loop's own handler, from before
            ran.append(name)
            again.set()

        loop.add_signal_handler(signal.SIGTERM, applications, "app")
        try:
            runtime = Runtime("loop-handler")
            sender = Sender(signal.SIGTERM)
            try:
                code = await runtime.arun_until_signal(budget=5, on_ready=sender.start)
            finally:
                sender.join()
            assert ran == []  # the runtime had the signal meanwhile
            later = Sender(signal.SIGTERM)  # the loop's handler is back: it takes this one
            later.start()
            later.join()
            await asyncio.wait_for(again.wait(), 5)
            return code, ran
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert asyncio.run(main()) == (0, ["app"])
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_off_the_main_thread_it_refuses_with_not_in_main_thread() -> None:
    runtime = Runtime("threaded")
    raised: list[BaseException] = []

    def call() -> None:
        try:
            runtime.run_until_signal(budget=1)
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=call, name="not-main")
    thread.start()
    thread.join(10)
    runtime.shutdown(5)
    assert len(raised) == 1 and isinstance(raised[0], NotInMainThread)
    assert isinstance(raised[0], ValueError)  # what signal.signal raises there
    assert "thread 'not-main'" in str(raised[0]) and "main thread" in str(raised[0])
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


@pytest.mark.parametrize(
    ("keywords", "named"),
    [
        ({"budget": -1}, "budget"),
        ({"budget": float("inf")}, "budget"),
        ({"budget": "10"}, "budget"),
        ({"signals": ()}, "signals"),
        ({"signals": (signal.SIGKILL,)}, "signals"),
        ({"signals": ("TERM",)}, "signals"),
        ({"before_stop": "stop"}, "before_stop"),
        ({"on_ready": 1}, "on_ready"),
    ],
)
def test_bad_arguments_are_refused_before_any_handler_is_installed(
    keywords: dict[str, Any], named: str
) -> None:
    runtime = Runtime("checked")
    try:
        with pytest.raises(InvalidArgument, match=named) as refused:
            runtime.run_until_signal(**keywords)
        assert "no signal handler was installed" in str(refused.value)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        assert not runtime.closed
    finally:
        runtime.shutdown(5)


def test_shutdown_reports_how_many_requests_each_abandoned_actor_gave_up() -> None:
    runtime = Runtime("busy")
    stuck = StateManager({"n": 0}, name="stuck", runtime=runtime)
    release = threading.Event()
    blocked = threading.Event()

    def block(state: Any) -> Any:
        blocked.set()
        release.wait(30)  # set once the shutdown has given up
        return increment(state)

    replies = [stuck.request_modify(block), *(stuck.request_modify(increment) for _ in range(4))]
    assert blocked.wait(10)
    try:
        report = runtime.shutdown(0.2)
    finally:
        release.set()
    assert report.abandoned == ("stuck",)
    assert report.dropped == (("stuck", 5),) and report.requests_dropped == 5
    assert "stuck (5 requests given up)" in report.describe()
    for reply in replies:
        with pytest.raises(ActorStopped):
            reply.result(timeout=10)


def test_shutdown_refuses_a_reason_that_is_not_a_str_and_stops_nothing() -> None:
    with Runtime("reasoned") as runtime:
        counter = StateManager({"n": 0}, name="counter", runtime=runtime)
        with pytest.raises(InvalidArgument, match="reason") as refused:
            runtime.shutdown(5, reason=42)  # type: ignore[arg-type]
        assert "nothing was shut down" in str(refused.value)
        assert not runtime.closed and counter.modify(increment).n == 1
