"""Every script in examples/ runs, and prints what it says it shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: For each example, lines its output must contain: what the example claims to show.
EXPECTED: dict[str, list[str]] = {
    "quickstart.py": [
        "refused: ImmutableState is immutable",
        "rejected by 'amount_positive': the amount must be positive",
        "order: shipped {'paid': 42} ['paid', 'shipped']",
        "v2: {'log_level': 'INFO', 'timeout': 30}  (too noisy)",
    ],
}


def _scripts() -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob("*.py"))


def test_every_example_has_expectations() -> None:
    assert set(_scripts()) == set(EXPECTED), "add the new example's expected output here"


@pytest.mark.parametrize("script", _scripts())
def test_example_runs(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        capture_output=True, text=True, timeout=90, check=False, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    for line in EXPECTED[script]:
        assert line in result.stdout, f"{script} did not print {line!r}:\n{result.stdout}"
