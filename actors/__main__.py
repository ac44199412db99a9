"""``python -m stateward.actors``: the ``stateward`` command (see `stateward.actors.cli`).

Only ever run as a script, never imported, so it may reach up to the command line.
"""

from .cli._main import entry_point

entry_point()
