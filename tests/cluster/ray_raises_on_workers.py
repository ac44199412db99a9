"""A spec module that imports in the test process and raises on a Ray worker
(which never imports pytest): what a module with a missing dependency or a
failing import-time check does on a node."""

from __future__ import annotations

import sys

from stateward.core import MachineSpec

if "pytest" not in sys.modules:
    raise RuntimeError("this module refuses to import outside the tests")

SPEC = MachineSpec("a", {"a": ["b"], "b": []})
