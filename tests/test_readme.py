"""Every Python block in the README runs as written and prints what its
``# -> text`` comments say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_starts_with_the_two_setup_commands() -> None:
    first_block = README.read_text().split("```bash\n", 1)[1].split("```", 1)[0]
    commands = first_block.strip().splitlines()
    assert len(commands) == 2
    assert commands[0].startswith("python -m pip install -e . && ")
    assert commands[1] == "python -m pip install -e '.[test]' && python -m pytest"
    ci = (README.parent / ".ci" / "run").read_text()
    assert commands[1] in ci, ".ci/run must run the README's test command"


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index: int) -> None:
    result = subprocess.run(
        [sys.executable, "-c", BLOCKS[index]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    for expected in re.findall(r"# -> (.*)$", BLOCKS[index], flags=re.MULTILINE):
        assert expected in result.stdout, (expected, result.stdout)
