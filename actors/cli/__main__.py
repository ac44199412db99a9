"""``python -m stateward.actors.cli``: the ``stateward`` command."""

from ._main import entry_point

entry_point()
