"""Hosting the same machines on a Ray cluster: `RayRuntime` (the ``ray`` extra).

Importing this package does not import Ray; creating a `RayRuntime` does.
See docs/cluster.md for what works on Ray today.
"""

from ._errors import NotPicklable, ShardUnavailable, SpecNotImportable
from ._runtime import RayRuntime

__all__ = ["NotPicklable", "RayRuntime", "ShardUnavailable", "SpecNotImportable"]
