"""The stores sit low in the layers: they know errors and core, and nothing of actors."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

PACKAGE = "stateward.actors.stores"
#: What a store module may import from stateward, besides its own package.
ALLOWED = ("stateward.core", "stateward.actors._errors")


def _imports(source: Path, package: str) -> set[str]:
    """Every module ``source`` imports, anywhere in it (inside functions and
    ``if TYPE_CHECKING`` too), relative imports resolved against ``package``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
    return found


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_store_modules_import_only_core_errors_and_each_other() -> None:
    folder = Path(importlib.import_module(PACKAGE).__file__).parent
    sources = sorted(folder.glob("*.py"))
    assert len(sources) > 1, f"no store modules found in {folder}"
    wrong = {
        f"{source.name} imports {module}"
        for source in sources
        for module in _imports(source, PACKAGE)
        if _within(module, ("stateward", "pykka")) and not _within(module, (PACKAGE, *ALLOWED))
    }
    assert not wrong, sorted(wrong)


def test_the_import_reader_resolves_relative_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import os\nfrom .. import _cell\nfrom .._runtime import Runtime\n"
        "from ._memory import MemoryStore\n"
        "def f():\n    from stateward.actors._handles import StateMachine\n"
    )
    assert _imports(source, PACKAGE) == {
        "os",
        "stateward.actors",
        "stateward.actors._runtime",
        "stateward.actors.stores._memory",
        "stateward.actors._handles",
    }
