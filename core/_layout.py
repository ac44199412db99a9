"""How a payload body is laid out in msgpack, and the depth scan that checks a
body before it is unpacked.

The extension type codes are the part of the layout that the codec writes and
the scan reads. The scan walks the msgpack bytes with a loop and a list, never
recursing, so a hostile or damaged payload is refused before any unpacking.
"""

from __future__ import annotations

from ._errors import DecodeError
from ._storable import MAX_DEPTH

__all__: list[str] = []

# Extension type codes. Never renumber: stored payloads depend on them.
_EXT_TUPLE = 1
_EXT_SET = 2
_EXT_FROZENSET = 3
_EXT_DATETIME = 4
_EXT_STATE = 5
_EXT_FROZENDICT = 6
_EXT_FROZENLIST = 7
_EXT_BIGINT = 8


#: The ext-wrapped containers and what each one counts as.
_EXT_CONTAINERS = frozenset(
    {_EXT_TUPLE, _EXT_SET, _EXT_FROZENSET, _EXT_STATE, _EXT_FROZENDICT, _EXT_FROZENLIST}
)


# -- the depth scan ----------------------------------------------------------------------
#
# msgpack's C unpacker is not recursive (past 1024 levels it refuses), but every
# ext type's body is unpacked by a nested call through the ext hook, so ext levels
# recurse on the C stack; and what a payload decodes to must fit MAX_DEPTH as a
# value does. `_scan` walks the msgpack bytes with a loop and a list, never
# recursing, and counts levels as `freeze` does: an array or a map is one; an ext
# container (tuple, set, frozenset, state, FrozenDict, FrozenList) is one with the
# array or map that is its body; a datetime or big int counts nothing.


def _format_tables() -> tuple[list[int], list[int], list[int]]:
    """What the first byte of a msgpack object says, as three tables of 256.

    ``skip``: the whole object's size, for one whose size that byte gives
    (ints, floats, nil, booleans, short strs), else 0. ``kind``: for the rest,
    a sized str/bin, an array, a map, a fixext, an ext, or the unused byte.
    ``size``: how many bytes after the first hold its length (0: the first byte
    holds it), or for a fixext how many bytes of data it has.
    """
    skip, kind, size = [1] * 256, [_BAD] * 256, [0] * 256
    for first in range(0x80, 0xA0):  # fixmap, fixarray
        skip[first], kind[first] = 0, _MAP if first < 0x90 else _ARRAY
    for first in range(0xA0, 0xC0):  # fixstr
        skip[first] = 1 + (first & 0x1F)
    for first, extra in {0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}.items():
        skip[first] = 1 + extra  # float32/64, uint8..64
    for first, extra in {0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}.items():
        skip[first] = 1 + extra  # int8..64
    layout = {
        0xC1: (_BAD, 0),
        **{first: (_SIZED, n) for first, n in ((0xC4, 1), (0xC5, 2), (0xC6, 4))},  # bin
        **{first: (_EXT, n) for first, n in ((0xC7, 1), (0xC8, 2), (0xC9, 4))},
        **{0xD4 + i: (_FIXEXT, 1 << i) for i in range(5)},
        **{first: (_SIZED, n) for first, n in ((0xD9, 1), (0xDA, 2), (0xDB, 4))},  # str
        0xDC: (_ARRAY, 2),
        0xDD: (_ARRAY, 4),
        0xDE: (_MAP, 2),
        0xDF: (_MAP, 4),
    }
    for first, (what, n) in layout.items():
        skip[first], kind[first], size[first] = 0, what, n
    return skip, kind, size


_SIZED, _ARRAY, _MAP, _FIXEXT, _EXT, _BAD = range(6)
_SKIP, _KIND, _SIZE = _format_tables()

# What an open frame is: a container that counts a level (a map is told apart:
# its keys must be str, as encode writes them), an ext container (its body's
# array or map adds nothing), a datetime ext, or an array inside one.
_LEVEL, _IN_EXT, _DATETIME, _IN_DATETIME, _MAP_LEVEL = range(5)


def _scan(body: bytes, limit: int) -> int:
    """Check that ``body`` (one msgpack object) nests at most ``limit`` levels and
    that every ext holds exactly one object; return the deepest ext nesting.

    Raises:
        DecodeError: it nests deeper, or it is malformed.
    """
    skip_of, kind_of, size_of = _SKIP, _KIND, _SIZE
    end = len(body)
    pos = 0
    depth = 0  # levels open
    exts = deepest = 0  # ext containers open, and the most ever open
    left = 1  # objects still to read in the innermost open frame
    frame, frame_end, counted = _LEVEL, end, 0
    stack: list[tuple[int, int, int, int]] = []
    try:
        while True:
            if left:
                left -= 1
                first = body[pos]
                if (
                    frame == _MAP_LEVEL
                    and left & 1
                    and not (0xA0 <= first <= 0xBF or 0xD9 <= first <= 0xDB)
                ):
                    raise DecodeError(f"payload body is not valid: a map key at {pos} is not a str")
                skip = skip_of[first]
                if skip:
                    pos += skip
                    continue
                pos += 1
                kind = kind_of[first]
                size = size_of[first]
                if kind == _SIZED:
                    pos += size + int.from_bytes(body[pos : pos + size], "big")
                    continue
                if kind in (_ARRAY, _MAP):
                    if size:
                        items = int.from_bytes(body[pos : pos + size], "big")
                        pos += size
                    else:
                        items = first & 0x0F
                    if kind == _MAP:
                        items *= 2
                    stack.append((left, frame, frame_end, counted))
                    if frame in (_DATETIME, _IN_DATETIME):
                        # [8 ints, tz kind, tz data]; the tz data at most [int, str].
                        if kind == _MAP or (frame == _IN_DATETIME and stack[-2][1] != _DATETIME):
                            raise DecodeError("payload body is not valid: a malformed datetime")
                        left, frame, counted = items, _IN_DATETIME, 0
                        continue
                    # The array or map that is an ext container's body is the ext's level.
                    counted = 0 if frame == _IN_EXT else 1
                    left, frame = items, _MAP_LEVEL if kind == _MAP else _LEVEL
                    depth += counted
                    if depth > limit:
                        raise _nests_too_deep(limit)
                    continue
                if kind == _BAD:
                    raise DecodeError(f"payload body is not valid: byte {first:#x} at {pos - 1}")
                if kind == _FIXEXT:
                    length = size
                else:
                    length = int.from_bytes(body[pos : pos + size], "big")
                    pos += size
                code = body[pos]
                pos += 1
                if code == _EXT_BIGINT:
                    pos += length
                    continue
                if frame in (_DATETIME, _IN_DATETIME):
                    raise DecodeError("payload body is not valid: a malformed datetime")
                stack.append((left, frame, frame_end, counted))
                if code == _EXT_DATETIME:
                    left, frame, frame_end, counted = 1, _DATETIME, pos + length, 0
                    continue
                if code not in _EXT_CONTAINERS:
                    raise DecodeError(f"payload body is not valid: unknown extension type {code}")
                depth += 1
                if depth > limit:
                    raise _nests_too_deep(limit)
                exts += 1
                deepest = max(deepest, exts)
                left, frame, frame_end, counted = 1, _IN_EXT, pos + length, 1
                continue
            # The innermost frame is complete: close it.
            if frame in (_IN_EXT, _DATETIME):
                if pos != frame_end:
                    raise DecodeError(
                        f"payload body is not valid: an extension type ending at byte "
                        f"{frame_end} does not hold exactly one value"
                    )
                if frame == _IN_EXT:
                    exts -= 1
            if not stack:
                break
            depth -= counted
            left, frame, frame_end, counted = stack.pop()
    except IndexError:
        raise DecodeError("payload body is not valid: truncated") from None
    if pos != end:
        raise DecodeError(
            f"payload body is not valid: {end - pos} bytes after the value"
            if pos < end
            else "payload body is not valid: truncated"
        )
    return deepest


def _nests_too_deep(limit: int) -> DecodeError:
    return DecodeError(
        f"payload nests deeper than {limit} levels, so it was not unpacked: stateward "
        f"never writes one (a value nests at most {MAX_DEPTH} levels); it is damaged or "
        "was not made by stateward"
    )
