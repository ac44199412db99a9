"""stateward.actors.cli: the ``stateward`` command (``demo``, ``inspect``, ``graph``, ``top``).

This package is the command line and nothing else; its one public name is
`main`, which runs the command in-process. The console script ``stateward``,
``python -m stateward.actors.cli`` and ``python -m stateward.actors`` run the
same program. Drawing a machine as text is `stateward.core.to_mermaid` and
`stateward.core.to_dot`.
"""

from ._main import main

__all__ = ["main"]
