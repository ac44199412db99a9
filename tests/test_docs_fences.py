"""Python in docs/ is fenced as Python, so the site highlights it: ```python when it runs alone
(tests/test_docs.py runs it), ```py when it cannot (a Django model, a fragment, a peer library
the suite does not install, an included example); never ```text."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

#: A fenced block: its indent, its language, its text.
FENCE = re.compile(r"^( *)```(\S*)[^\n]*\n(.*?)^\1```", flags=re.MULTILINE | re.DOTALL)
#: A snippet included from a file (pymdownx.snippets).
SNIPPET = re.compile(r'^--8<-- "([^"]+)"$', flags=re.MULTILINE)


def _fenced(language: str) -> list[tuple[str, str]]:
    return [
        (f"{page.relative_to(DOCS)}:{text[: m.start()].count(chr(10)) + 1}", _dedent(m))
        for page in sorted(DOCS.rglob("*.md"))
        for text in [page.read_text()]
        for m in FENCE.finditer(text)
        if m.group(2) == language
    ]


def _dedent(match: re.Match[str]) -> str:
    indent = len(match.group(1))
    code = "\n".join(line[indent:] for line in match.group(3).splitlines())
    return SNIPPET.sub(lambda m: (ROOT / m.group(1)).read_text(), code)


def _is_python(code: str) -> bool:
    """Whether a block is Python: it parses, and imports, defines or assigns something (a
    command line or a program's output does not)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False
    statements = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign)
    return any(isinstance(node, statements) for node in ast.walk(tree))


def test_no_python_is_fenced_as_text() -> None:
    # Fenced as Python it is highlighted as Python. Python that runs alone is fenced
    # ```python, and tests/test_docs.py runs it; Python that cannot run alone (a Django
    # model, a fragment, a peer library the suite does not install) is fenced ```py.
    as_text = [where for where, code in _fenced("text") if _is_python(code)]
    assert not as_text, f"Python fenced as text (fence it python, or py): {as_text}"


def test_every_py_block_is_python() -> None:
    blocks = _fenced("py")
    assert blocks
    not_python = [where for where, code in blocks if not _is_python(code)]
    assert not not_python, not_python
