"""The public API is pinned: changing it is a decision, made by editing public_api.txt."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

PINNED = Path(__file__).with_name("public_api.txt")
PACKAGES = (
    "stateward.core",
    "stateward.actors",
    "stateward.actors.cli",
    "stateward.actors.ray",
    "stateward.actors.rows",
    "stateward.actors.rows.django",
    "stateward.actors.stores",
)


def _pinned() -> dict[str, list[str]]:
    names: dict[str, list[str]] = {package: [] for package in PACKAGES}
    for line in PINNED.read_text().split():
        module, _, name = line.rpartition(".")
        names.setdefault(module, []).append(name)
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_all_matches_the_pinned_list(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(_pinned()[package])
    assert len(set(module.__all__)) == len(module.__all__), "duplicate names in __all__"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_imports_and_is_documented(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__doc__
    for name in module.__all__:
        value = getattr(module, name)  # AttributeError if __all__ lies
        if inspect.isclass(value) or inspect.isroutine(value):
            assert inspect.getdoc(value), f"{package}.{name} has no docstring"
            own = value.__dict__.get("__doc__") if inspect.isclass(value) else value.__doc__
            assert own, f"{package}.{name} only inherits its docstring"


def test_pinned_methods_exist_and_are_documented() -> None:
    """A line ``package.Class.method`` pins a public method of a public class
    (the awaited calls of the handles, ``StateMachine.atransition``...)."""
    methods = {m: names for m, names in _pinned().items() if m not in PACKAGES}
    assert methods
    for owner, names in methods.items():
        package, _, class_name = owner.rpartition(".")
        assert package in PACKAGES, f"{owner}: not a class of a pinned package"
        cls = getattr(importlib.import_module(package), class_name)
        assert class_name in importlib.import_module(package).__all__, owner
        for name in names:
            member = getattr(cls, name)  # AttributeError if the pin lies
            assert inspect.isroutine(member), f"{owner}.{name} is not a method"
            assert member.__doc__, f"{owner}.{name} has no docstring"


def test_core_does_not_import_actors_or_pykka() -> None:
    core = Path(importlib.import_module("stateward.core").__file__).parent
    for source in core.glob("*.py"):
        text = source.read_text()
        assert "import pykka" not in text and "from pykka" not in text, source
        assert "stateward.actors" not in text, source


def test_packages_ship_py_typed() -> None:
    for package in ("stateward.core", "stateward.actors"):  # subpackages share the marker
        folder = Path(importlib.import_module(package).__file__).parent
        assert (folder / "py.typed").is_file(), package
