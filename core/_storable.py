"""What a state may hold: the scalar types, the checks on text, dict keys and
datetimes, and the nesting limit with its error.

The checks here look at one value each and know nothing of the frozen
containers; `freeze` (in ``_frozen``) walks a value and calls them.
"""

from __future__ import annotations

import datetime as _dt

from ._errors import UnencodableValueError
from ._zones import is_zone

__all__ = ["MAX_DEPTH"]

MAX_DEPTH = 100
"""The deepest a value may nest: at most this many containers, one inside the other,
counting every dict, list, tuple, set, frozenset and ImmutableState (a FrozenDict or
FrozenList too), the outermost included. An ImmutableState counts itself, so its
fields may nest ``MAX_DEPTH - 1`` levels. Scalars (a datetime too) count nothing.
`ImmutableState`, `freeze`, `encode` and `decode` all keep to it: a deeper value is
refused with `UnencodableValueError`, a deeper payload with `DecodeError`. It is far
below the depth where Python's recursion limit or msgpack's C stack give out, so
every value that is accepted can be compared, hashed, encoded and decoded, in any
thread.
"""


#: Types stored as they are: immutable, and encodable by the codec.
_SCALARS: frozenset[type] = frozenset({type(None), bool, int, float, str, bytes, _dt.datetime})


def _key_path(parent: str, key: str) -> str:
    if not parent:
        return key if key.isidentifier() else f"[{key!r}]"
    return f"{parent}.{key}" if key.isidentifier() else f"{parent}[{key!r}]"


def _check_datetime(value: _dt.datetime, path: str) -> _dt.datetime:
    tz = value.tzinfo
    if tz is None or type(tz) is _dt.timezone:
        return value
    if is_zone(tz) and tz.key is not None:
        return value
    raise UnencodableValueError(
        path,
        type(value),
        f"datetime with tzinfo {tz!r} cannot be stored; use datetime.timezone or "
        "zoneinfo.ZoneInfo (by key), or store it in UTC",
    )


def _check_text(value: str, path: str) -> str:
    # msgpack stores str as UTF-8, which cannot carry a lone surrogate ("\ud800").
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise UnencodableValueError(
                path,
                str,
                f"str {value!r} cannot be stored: it is not valid UTF-8 ({exc.reason})",
            ) from None
    return value


def _check_key(key: object, path: str) -> str:
    """Return ``key`` as a plain str, or raise naming where it sits (``path``)."""
    if type(key) is not str:
        if not isinstance(key, str):
            raise UnencodableValueError(
                f"{path}[{key!r}]" if path else f"[{key!r}]",
                type(key),
                f"dict keys must be str, got {type(key).__qualname__} key {key!r}",
            )
        key = str.__str__(key)
    return _check_text(key, f"{path}[{key!r}]" if path else f"[{key!r}]")


#: The plain containers freeze() turns into frozen ones, each a nesting level.
_CONTAINERS: frozenset[type] = frozenset({dict, list, tuple, set, frozenset})


def _too_deep(path: str, kind: type, room: int, depth: int | None = None) -> UnencodableValueError:
    """The error for a container at ``path`` that does not fit in ``room`` more levels."""
    what = (
        f"{kind.__qualname__} nests {depth} levels where {room} fit"
        if depth
        else (f"{kind.__qualname__} is nested too deep")
    )
    return UnencodableValueError(
        path,
        kind,
        f"{what}: a value may nest at most {MAX_DEPTH} containers (dict, list, tuple, set, "
        "frozenset, ImmutableState), counting the outermost state; flatten it (for example "
        "key the inner parts by a path string) or store the deep part as bytes or str",
    )
