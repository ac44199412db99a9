"""Importing stateward.actors.rows without SQLAlchemy 2.x says which extra to install.

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
    import stateward.actors  # the rest of stateward needs no SQLAlchemy

    try:
        import stateward.actors.rows
    except ImportError as exc:
        print(type(exc).__name__, exc.name, "|", exc)
    else:
        print("imported")
    """
)


def import_rows(missing: tuple[str, ...] = (), fake_version: str = "") -> str:
    script = RIGGED.format(missing=missing, fake_version=fake_version)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_without_sqlalchemy_the_import_error_names_the_extra_to_install() -> None:
    said = import_rows(missing=("sqlalchemy",))
    assert said.startswith("ModuleNotFoundError sqlalchemy | "), said
    assert "needs SQLAlchemy 2.0 or newer, which is not installed" in said
    assert "pip install 'stateward[sqlalchemy]'" in said


def test_with_sqlalchemy_1_x_the_import_error_names_the_version_and_the_extra() -> None:
    said = import_rows(fake_version="1.4.52")
    assert said.startswith("ImportError sqlalchemy | "), said
    assert "needs SQLAlchemy 2.0 or newer, found 1.4.52" in said
    assert "pip install 'stateward[sqlalchemy]'" in said


def test_a_module_missing_inside_sqlalchemy_is_reported_as_it_is() -> None:
    pytest.importorskip("typing_extensions")  # SQLAlchemy 2.x imports it
    said = import_rows(missing=("typing_extensions",))
    assert said.startswith("ModuleNotFoundError typing_extensions | "), said
    assert "stateward[sqlalchemy]" not in said  # SQLAlchemy is there; something it needs is not


def test_with_sqlalchemy_2_the_package_imports() -> None:
    assert import_rows() == "imported"
