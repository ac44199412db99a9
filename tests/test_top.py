"""``stateward top URL``: driven against a runtime the test starts with
``serve_metrics(0)``: one view with --once, a redrawn view on a terminal until
Ctrl-C, plain lines otherwise, and clear errors for a URL that does not answer
or answers with something that is not Prometheus text."""

from __future__ import annotations

import http.server
import io
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import TOGGLE

from stateward.actors import Runtime, StateMachine
from stateward.actors.cli import main

INTERVAL = "0.05"


def run(*argv: str, out: io.StringIO | None = None) -> tuple[int, str, str]:
    out = out if out is not None else io.StringIO()
    err = io.StringIO()
    try:
        code = main(list(argv), out=out, err=err)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def daemon() -> Iterator[tuple[Runtime, str]]:
    with Runtime("shop", per_actor_metrics=True) as rt:
        endpoint = rt.serve_metrics(0)
        for name, count in (("door", 6), ("gate", 2)):
            machine = StateMachine("a", TOGGLE, name=name, runtime=rt)
            for i in range(count):
                machine.transition("b" if i % 2 == 0 else "a")
        yield rt, endpoint.url


def test_once_prints_one_view_of_the_daemon(daemon: tuple[Runtime, str]) -> None:
    _rt, url = daemon
    code, out, err = run("top", url, "--once", "--interval", INTERVAL)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith(f"stateward top  {url}  over ")
    assert lines[1] == "runtime shop: 2 actors (2 active, 0 passivated); workers 0/4 busy; 0 errors"
    header, row = lines[3].split(), lines[4].split()
    assert header == [
        "runtime", "kind", "supervisor", "msgs/s", "fail/s", "refused/s", "restarts", "queued",
        "full",
    ]  # fmt: skip
    assert row == ["shop", "machine", "root", "0.0", "0.0", "0.0", "0", "0", "0"]
    assert lines[6] == "latency: no requests since the last scrape"
    assert lines[8] == "busiest actors:"
    assert [line.split()[1] for line in lines[10:12]] == ["door", "gate"]  # ties: by name


class Interrupting(io.StringIO):
    """A terminal that presses Ctrl-C once it has shown ``frames`` views."""

    def __init__(self, frames: int) -> None:
        super().__init__()
        self.frames = frames
        self.shown = 0

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        written = super().write(text)
        if text.startswith("\x1b[H\x1b[2J"):
            self.shown += 1
            if self.shown == self.frames:
                raise KeyboardInterrupt
        return written


def test_on_a_terminal_it_redraws_in_place_until_ctrl_c(daemon: tuple[Runtime, str]) -> None:
    _rt, url = daemon
    terminal = Interrupting(frames=3)
    code, out, err = run("top", url, "--interval", INTERVAL, out=terminal)
    assert (code, err) == (0, "")
    frames = out.split("\x1b[H\x1b[2J")
    assert frames[0] == "" and len(frames) == 4
    assert all(frame.startswith("stateward top") for frame in frames[1:])


def test_the_rates_are_the_change_between_two_scrapes(daemon: tuple[Runtime, str]) -> None:
    rt, url = daemon
    busy = rt.get("door")

    class Between(io.StringIO):
        """Plain output; runs 40 transitions between the first two views."""

        def write(self, text: str) -> int:
            first = not self.getvalue()
            written = super().write(text)
            if text.startswith("stateward top") and first:
                for i in range(40):
                    busy.transition("b" if i % 2 == 0 else "a")
            elif text.startswith("stateward top"):
                raise KeyboardInterrupt
            return written

    code, out, _ = run("top", url, "--interval", INTERVAL, out=Between())
    assert code == 0
    second = out.split("stateward top")[2].splitlines()
    row = next(line.split() for line in second if line.startswith("shop "))  # the kinds' table
    assert float(row[3].replace(",", "")) > 0  # msgs/s
    assert any(line.startswith("latency of 40 requests: p50 <= ") for line in second)
    busiest = second[second.index("busiest actors:") + 2].split()
    assert busiest[1] == "door"


def test_an_unreachable_url_is_a_clear_error() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    code, out, err = run("top", f"http://127.0.0.1:{port}/metrics", "--once")
    assert code == 1 and out == ""
    assert err.startswith(f"stateward top: error: cannot read http://127.0.0.1:{port}/metrics")
    assert "serve_metrics" in err


class _Html(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html><body>not metrics</body></html>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_body_that_is_not_prometheus_text_is_a_clear_error() -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Html)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        code, _, err = run("top", url, "--once")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert code == 1
    assert "did not answer with Prometheus text" in err and "/metrics" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("top", "localhost:9464"), "URL must be an http:// address"),
        (("top", "http://127.0.0.1:1/metrics", "--interval", "0"), "must be more than 0"),
        (("top", "http://127.0.0.1:1/metrics", "--interval", "abc"), "--interval"),
    ],
)
def test_bad_arguments_are_usage_errors(
    argv: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(*argv)  # argparse writes its own errors to sys.stderr
    assert code == 2 and message in err + capsys.readouterr().err


def _shape(text: str) -> list[str]:
    """The transcript with its numbers, port and time taken out."""
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
    text = re.sub(r"\d[\d,]*(\.\d+)?", "N", text)
    return [re.sub(r" +", " ", line).strip() for line in text.strip().splitlines()]


def test_the_operations_page_transcript_is_what_top_prints() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs/howto/operations.md").read_text()
    before, after = page.split("<!-- top transcript -->")
    demo = re.findall(r"```python\n(.*?)```", before, flags=re.DOTALL)[-1]
    transcript = re.search(r"```text\n(.*?)```", after, flags=re.DOTALL)
    assert transcript is not None and 'main(["top"' in demo
    result = subprocess.run(
        [sys.executable, "-c", demo], capture_output=True, text=True, timeout=60, check=True
    )
    assert _shape(result.stdout) == _shape(transcript.group(1))
