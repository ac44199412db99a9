"""Without Django 5.2 or newer, the Django binding says which extra to install, and
the rest of stateward.actors.rows does not need Django.

Each case runs in a fresh interpreter whose import system is rigged: a finder on
``sys.meta_path`` either refuses ``django`` as if it were not installed, or
serves a stand-in ``django`` of an old version.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

RIGGED = textwrap.dedent(
    """
    import importlib.machinery, sys, types

    OLD = {old!r}

    class Rigged:
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] == "django":
                if not OLD:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                if name == "django":
                    return importlib.machinery.ModuleSpec(name, self)
            return None

        def create_module(self, spec):
            module = types.ModuleType(spec.name)
            module.VERSION, module.__version__ = (4, 2, 0, "final", 0), "4.2"
            return module

        def exec_module(self, module):
            pass

    sys.meta_path.insert(0, Rigged())
    from stateward.actors.rows import RowMachines  # needs no Django

    try:
        import stateward.actors.rows.django
    except ImportError as exc:
        print(type(exc).__name__, exc.name, "|", exc)
    else:
        print("imported")
    """
)


def run_rigged(old: bool) -> str:
    result = subprocess.run(
        [sys.executable, "-c", RIGGED.format(old=old)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_without_django_the_binding_names_the_extra_to_install() -> None:
    said = run_rigged(old=False)
    assert said.startswith("ModuleNotFoundError django | "), said
    assert "needs Django 5.2 or newer, which is not installed" in said
    assert "pip install 'stateward[django]'" in said


def test_with_an_old_django_the_binding_names_the_version_and_the_extra() -> None:
    said = run_rigged(old=True)
    assert said.startswith("ImportError django | "), said
    assert "needs Django 5.2 or newer, found 4.2" in said
    assert "pip install 'stateward[django]'" in said
