"""stateward.actors.rows imports without SQLAlchemy; its SQLAlchemy binding, used
without SQLAlchemy 2.x, says which extra to install.

Each case runs in a fresh interpreter whose import system is rigged: a finder on
``sys.meta_path`` either refuses a module as if it were not installed, or serves
a stand-in ``sqlalchemy`` of an old version.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

RIGGED = textwrap.dedent(
    """
    import importlib.machinery, sys, types

    MISSING = {missing!r}
    FAKE_VERSION = {fake_version!r}

    class Rigged:
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in MISSING:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            if FAKE_VERSION and name == "sqlalchemy":
                return importlib.machinery.ModuleSpec(name, self)
            return None

        def create_module(self, spec):
            module = types.ModuleType(spec.name)
            module.__version__ = FAKE_VERSION
            return module

        def exec_module(self, module):
            pass

    sys.meta_path.insert(0, Rigged())
    import stateward.actors.rows as rows
    from stateward.actors.rows import RetryPolicy, RowMachines, RowResult, ORMAdapter

    print("imported", "sqlalchemy" in sys.modules)
    try:
        {use}
    except ImportError as exc:
        print(type(exc).__name__, exc.name, "|", exc)
    else:
        print("used")
    """
)


def run_rigged(missing: tuple[str, ...] = (), fake_version: str = "", use: str = "pass") -> str:
    script = RIGGED.format(missing=missing, fake_version=fake_version, use=use)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_package_imports_without_sqlalchemy() -> None:
    assert run_rigged(missing=("sqlalchemy",)) == "imported False\nused"


def test_the_package_does_not_import_sqlalchemy_until_its_binding_is_used() -> None:
    assert run_rigged() == "imported False\nused"
    said = run_rigged(use="from stateward.actors.rows import RowBinding; RowBinding")
    assert said == "imported False\nused"


@pytest.mark.parametrize(
    "use",
    [
        "from stateward.actors.rows import RowBinding",
        "rows.SQLAlchemyAdapter",
        "rows.AUDIT_TABLE",
    ],
)
def test_without_sqlalchemy_its_binding_names_the_extra_to_install(use: str) -> None:
    said = run_rigged(missing=("sqlalchemy",), use=use)
    first, second = said.split("\n")
    assert first == "imported False"
    assert second.startswith("ModuleNotFoundError sqlalchemy | "), said
    assert "needs SQLAlchemy 2.0 or newer, which is not installed" in second
    assert "pip install 'stateward[sqlalchemy]'" in second


def test_with_sqlalchemy_1_x_its_binding_names_the_version_and_the_extra() -> None:
    said = run_rigged(fake_version="1.4.52", use="rows.RowBinding")
    assert said.split("\n")[1].startswith("ImportError sqlalchemy | "), said
    assert "needs SQLAlchemy 2.0 or newer, found 1.4.52" in said
    assert "pip install 'stateward[sqlalchemy]'" in said


def test_a_module_missing_inside_sqlalchemy_is_reported_as_it_is() -> None:
    pytest.importorskip("typing_extensions")  # SQLAlchemy 2.x imports it
    said = run_rigged(missing=("typing_extensions",), use="rows.RowBinding")
    assert said.split("\n")[1].startswith("ModuleNotFoundError typing_extensions | "), said
    assert "stateward[sqlalchemy]" not in said  # SQLAlchemy is there; something it needs is not


def test_an_unknown_name_is_an_attribute_error() -> None:
    import stateward.actors.rows as rows

    with pytest.raises(AttributeError, match="has no attribute 'RowBindng'"):
        rows.RowBindng  # noqa: B018
