"""Named timezones (``zoneinfo.ZoneInfo``), without importing `zoneinfo` up front.

On Python 3.13 importing `zoneinfo` imports `sysconfig`, which imports
`threading`; core must not pull in threads (its purity test blocks them). No
value can hold a `ZoneInfo` before `zoneinfo` is imported, so a check reads the
module only if something already imported it, and only decoding a stored zone
name imports it.
"""

from __future__ import annotations

import datetime as _dt
import sys
from typing import TYPE_CHECKING, TypeGuard

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

__all__ = ["is_zone", "zone"]


def is_zone(tz: _dt.tzinfo | None) -> TypeGuard[ZoneInfo]:
    """Whether ``tz`` is a `zoneinfo.ZoneInfo` (imports nothing)."""
    module = sys.modules.get("zoneinfo")
    return module is not None and type(tz) is module.ZoneInfo


def zone(key: str) -> _dt.tzinfo:
    """The `zoneinfo.ZoneInfo` named ``key`` (imports `zoneinfo` on first use)."""
    import zoneinfo  # here: see the module's docstring

    return zoneinfo.ZoneInfo(key)
