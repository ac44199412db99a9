"""Hosting the same machines on a Ray cluster: `RayRuntime` (the ``ray`` extra).

Importing this package does not import Ray; creating a `RayRuntime` does.
See docs/cluster.md for which semantics hold on Ray, and how.
"""

from ._carry import propagate_context
from ._errors import NotOnRay, NotPicklable, NotPropagable, ShardUnavailable, SpecNotImportable
from ._runtime import RayRuntime

__all__ = [
    "NotOnRay",
    "NotPicklable",
    "NotPropagable",
    "RayRuntime",
    "ShardUnavailable",
    "SpecNotImportable",
    "propagate_context",
]
