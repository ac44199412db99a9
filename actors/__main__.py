"""``python -m stateward.actors``: the ``stateward`` command."""

from ._cli import entry_point

entry_point()
