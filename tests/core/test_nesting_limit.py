"""One nesting limit, MAX_DEPTH, kept the same way by ImmutableState, encode and decode.

A value may nest at most MAX_DEPTH containers (dict, list, tuple, set, frozenset,
ImmutableState; the outermost state counts). A deeper value is refused when it is
built or updated, naming its key path; a deeper payload is refused by decode before
msgpack unpacks it. Everything accepted round-trips exactly.

Decoding a deep payload once crashed the interpreter (SIGSEGV: every ext level was
unpacked by a nested call keeping ~40 KB on the C stack), so those cases run in a
subprocess: a crash there is a failed test, not a dead test run.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import assert_identical

from stateward.core import (
    MAX_DEPTH,
    SCHEMA_VERSION,
    DecodeError,
    FrozenDict,
    FrozenList,
    ImmutableState,
    UnencodableValueError,
    decode,
    encode,
    freeze,
)

# -- building deep values -----------------------------------------------------------------

#: One container level around a value, for each kind that counts as a level.
WRAPS: dict[str, Callable[[Any], Any]] = {
    "dict": lambda inner: {"a": inner},
    "list": lambda inner: [inner],
    "tuple": lambda inner: (inner,),
    "set": lambda inner: {inner},
    "frozenset": lambda inner: frozenset([inner]),
    "state": lambda inner: ImmutableState(a=inner),
}


def nested(kind: str, levels: int, leaf: Any = 1) -> Any:
    """``levels`` containers of ``kind``, one inside the other, around ``leaf``.

    Sets can only hold hashable items, so their inner levels are tuples.
    """
    value = leaf
    for level in range(levels):
        wrap = WRAPS[kind]
        if kind in ("set", "frozenset") and level < levels - 1:
            wrap = WRAPS["tuple"]
        value = wrap(value)
    return value


def key_path(kind: str, levels: int) -> str:
    step = ".a" if kind in ("dict", "state") else "[0]"
    return "x" + step * levels


# -- crafting payloads ----------------------------------------------------------------------


def payload(body: bytes) -> bytes:
    """A well-formed payload around ``body``: magic, version and a valid CRC-32."""
    version = SCHEMA_VERSION
    checksum = zlib.crc32(body, zlib.crc32(bytes((version,))))
    return struct.pack(">2sBI", b"SW", version, checksum) + body


def ext(code: int, data: bytes) -> bytes:
    """A msgpack ext object (ext 8/16/32, whichever fits)."""
    if len(data) < 0x100:
        return bytes((0xC7, len(data), code)) + data
    if len(data) < 0x10000:
        return b"\xc8" + struct.pack(">H", len(data)) + bytes((code,)) + data
    return b"\xc9" + struct.pack(">I", len(data)) + bytes((code,)) + data


EXT_TUPLE, EXT_STATE = 1, 5


def tuples_body(levels: int) -> bytes:
    """msgpack for ``levels`` tuples one inside the other (ext 1 around [inner])."""
    body = b"\x01"
    for _ in range(levels):
        body = ext(EXT_TUPLE, b"\x91" + body)
    return body


def states_body(levels: int) -> bytes:
    """msgpack for ``levels`` states one inside the other (ext 5 around {"a": inner})."""
    body = b"\x01"
    for _ in range(levels):
        body = ext(EXT_STATE, b"\x81\xa1a" + body)
    return body


def arrays_body(levels: int) -> bytes:
    """msgpack for ``levels`` plain arrays one inside the other."""
    return b"\x91" * levels + b"\x01"


def run_isolated(
    code: str, data: bytes, *, stack_kb: int | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``code`` in a fresh interpreter, ``data`` on its stdin (in a thread with
    a small stack if asked)."""
    body = textwrap.dedent(code)
    if stack_kb is not None:
        body = (
            "import threading\n"
            f"threading.stack_size({stack_kb} * 1024)\n"
            "errors = []\n"
            "def main():\n"
            "    try:\n" + textwrap.indent(body, " " * 8) + "\n"
            "    except BaseException as exc:\n"
            "        errors.append(exc)\n"
            "thread = threading.Thread(target=main)\n"
            "thread.start()\n"
            "thread.join(60)\n"
            "assert not thread.is_alive(), 'the decode did not finish'\n"
            "if errors:\n"
            "    raise errors[0]\n"
        )
    return subprocess.run(
        [sys.executable, "-c", body], input=data, capture_output=True, timeout=60, check=False
    )


def decode_in_subprocess(data: bytes, *, stack_kb: int | None = None) -> str:
    """decode(data) in another interpreter; returns what it printed (the outcome).

    A crash (a negative return code: the signal) fails the calling test.
    """
    result = run_isolated(
        """
        import sys
        from stateward.core import DecodeError, decode
        try:
            value = decode(sys.stdin.buffer.read())
        except DecodeError as exc:
            print("DecodeError:", exc)
        else:
            print("decoded", type(value).__name__)
        """,
        data,
        stack_kb=stack_kb,
    )
    assert result.returncode == 0, (
        f"decode died (return code {result.returncode}): {result.stderr[-2000:]!r}"
    )
    return result.stdout.decode().strip()


# -- construction and update ------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(WRAPS))
def test_a_value_at_the_limit_is_accepted_and_round_trips(kind: str) -> None:
    # The state counts as one level, so its field may nest MAX_DEPTH - 1.
    state = ImmutableState(x=nested(kind, MAX_DEPTH - 1))
    assert_identical(decode(encode(state)), state)
    assert decode(encode(state.to_dict())) == state.to_dict()
    assert hash(state) == hash(decode(encode(state)))


@pytest.mark.parametrize("kind", sorted(WRAPS))
def test_one_level_past_the_limit_is_refused_naming_the_key_path(kind: str) -> None:
    too_deep = nested(kind, MAX_DEPTH)
    with pytest.raises(UnencodableValueError) as built:
        ImmutableState(x=too_deep)
    with pytest.raises(UnencodableValueError) as updated:
        ImmutableState(x=1).update(x=too_deep)
    for error in (built.value, updated.value):
        assert isinstance(error, TypeError)
        assert error.path.startswith("x")
        assert f"at most {MAX_DEPTH} containers" in str(error)
    if kind not in ("set", "frozenset", "state"):
        # The error names the container that does not fit: the innermost one.
        assert built.value.path == key_path(kind, MAX_DEPTH - 1)


def test_every_kind_of_container_counts_as_a_level() -> None:
    mixed: Any = 1
    kinds = ["dict", "list", "tuple", "state"]
    for level in range(MAX_DEPTH - 1):
        mixed = WRAPS[kinds[level % len(kinds)]](mixed)
    state = ImmutableState(x=mixed)
    assert_identical(decode(encode(state)), state)
    with pytest.raises(UnencodableValueError):
        ImmutableState(x=[mixed])
    with pytest.raises(UnencodableValueError):
        ImmutableState(x=frozenset([(freeze(mixed),)]))


def test_frozen_values_nested_into_each_other_count_their_own_levels() -> None:
    inner = ImmutableState(x=nested("list", MAX_DEPTH - 2))  # MAX_DEPTH - 1 levels
    outer = ImmutableState(inner=inner)  # exactly MAX_DEPTH
    assert_identical(decode(encode(outer)), outer)
    with pytest.raises(UnencodableValueError) as caught:
        ImmutableState(wrapper=ImmutableState(inner=inner))
    assert caught.value.path == "wrapper"
    with pytest.raises(UnencodableValueError):
        outer.update(more=[outer])
    with pytest.raises(UnencodableValueError):
        FrozenDict(a=outer)
    with pytest.raises(UnencodableValueError):
        FrozenList([outer])
    with pytest.raises(UnencodableValueError):
        FrozenList([1]) + [outer]  # noqa: RUF005 - FrozenList.__add__ is what is tested
    with pytest.raises(UnencodableValueError):
        freeze({"a": outer})
    assert freeze(outer) is outer


def test_a_list_grown_one_item_at_a_time_keeps_to_the_limit() -> None:
    state = ImmutableState(items=[])
    for i in range(5):
        state = state.update(items=state["items"] + [nested("list", i)])
    assert_identical(decode(encode(state)), state)
    deepest = nested("list", MAX_DEPTH - 3)  # items: MAX_DEPTH - 2 levels with the list
    state = state.update(items=state["items"] + [deepest])
    assert_identical(decode(encode(state)), state)
    one_more = [[deepest]]  # MAX_DEPTH - 1 levels: MAX_DEPTH + 1 in the state
    with pytest.raises(UnencodableValueError):
        state.update(items=state["items"] + [one_more])


def test_ten_thousand_levels_are_refused_without_a_recursion_error() -> None:
    for kind in ("dict", "list", "tuple"):
        too_deep = nested(kind, 10_000)
        with pytest.raises(UnencodableValueError):
            ImmutableState(x=too_deep)
        with pytest.raises(UnencodableValueError):
            encode(too_deep)
        with pytest.raises(UnencodableValueError):
            freeze(too_deep)

    def states_one_inside_the_other() -> ImmutableState:
        state = ImmutableState(a=1)
        for _ in range(10_000):
            state = ImmutableState(a=state)
        return state

    # Built a state at a time, the first one past the limit is refused.
    with pytest.raises(UnencodableValueError):
        states_one_inside_the_other()


def test_encode_keeps_to_the_same_limit_for_plain_values() -> None:
    at_limit = nested("dict", MAX_DEPTH)
    assert decode(encode(at_limit)) == at_limit
    with pytest.raises(UnencodableValueError) as caught:
        encode({"x": at_limit})
    assert caught.value.path.startswith("x.a")


# -- decode ----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [tuples_body, states_body, arrays_body])
def test_decode_takes_a_payload_at_the_limit_and_refuses_one_past_it(
    make: Callable[[int], bytes],
) -> None:
    at_limit = payload(make(MAX_DEPTH))
    decoded = decode(at_limit)
    assert decode(encode(decoded)) == decoded  # and it encodes again
    with pytest.raises(DecodeError, match=f"deeper than {MAX_DEPTH} levels"):
        decode(payload(make(MAX_DEPTH + 1)))


def test_a_crafted_deep_payload_with_a_valid_checksum_is_refused_not_a_crash() -> None:
    # About 1.5 KB: 220 states one inside the other, which crashed the interpreter.
    crafted = payload(states_body(220))
    assert len(crafted) < 1600
    assert decode_in_subprocess(crafted).startswith("DecodeError: payload nests deeper")
    ten_thousand = payload(tuples_body(10_000))
    assert decode_in_subprocess(ten_thousand).startswith("DecodeError: payload nests deeper")
    arrays = payload(arrays_body(10_000))
    assert decode_in_subprocess(arrays).startswith("DecodeError: payload nests deeper")


def test_a_value_written_at_the_limit_decodes_in_a_thread_with_a_small_stack() -> None:
    state = ImmutableState(x=nested("state", MAX_DEPTH - 1))
    assert decode_in_subprocess(encode(state), stack_kb=512) == "decoded ImmutableState"
    mixed = payload(states_body(MAX_DEPTH))
    assert decode_in_subprocess(mixed, stack_kb=512) == "decoded ImmutableState"


def test_what_an_ext_type_holds_must_be_exactly_one_value() -> None:
    # A tuple whose ext body holds [1] then a stray byte: never written by encode.
    body = ext(EXT_TUPLE, b"\x91\x01\x02")
    with pytest.raises(DecodeError, match="exactly one value"):
        decode(payload(body))
    with pytest.raises(DecodeError, match="truncated"):
        decode(payload(b"\x92\x01"))
    with pytest.raises(DecodeError, match="after the value"):
        decode(payload(b"\x01\x02"))
    with pytest.raises(DecodeError, match="unknown extension type 99"):
        decode(payload(ext(99, b"\x91\x01")))


def test_a_datetime_counts_no_level_and_its_payload_is_checked() -> None:
    import datetime as dt

    at = dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2), "X"))
    state = ImmutableState(x=nested("list", MAX_DEPTH - 1, leaf=at))
    assert_identical(decode(encode(state)), state)
    # A datetime ext whose fields nest deeper than [fields..., [offset, name]].
    fields = b"\x9a" + b"\x01" * 8 + b"\x01" + b"\x92\x91\x01\xc0"
    with pytest.raises(DecodeError, match="malformed datetime"):
        decode(payload(ext(4, fields)))


# -- a property --------------------------------------------------------------------------------

kinds = st.sampled_from(["dict", "list", "tuple", "state", "frozenset"])


@settings(max_examples=30, deadline=None, database=None)
@given(chain=st.lists(kinds, min_size=MAX_DEPTH - 3, max_size=MAX_DEPTH + 2))
def test_a_chain_of_any_containers_is_accepted_exactly_up_to_the_limit(chain: list[str]) -> None:
    levels = len(chain) + 1  # the state around it counts too
    if levels > MAX_DEPTH:
        with pytest.raises(UnencodableValueError):
            # A state in the chain past the limit is refused as it is built.
            ImmutableState(x=build_chain(chain))
        return
    state = ImmutableState(x=build_chain(chain))
    assert_identical(decode(encode(state)), state)


def build_chain(chain: list[str]) -> Any:
    value: Any = 1
    hashable = True  # a frozenset can only hold values that hash
    for kind in chain:
        if kind == "frozenset" and not hashable:
            kind = "state"  # frozen, so it hashes; the level counts all the same
        value = WRAPS[kind](value)
        hashable = kind in ("frozenset", "state") or (kind == "tuple" and hashable)
    return value


def test_a_store_record_may_nest_a_few_levels_more_and_no_further() -> None:
    # A store wraps a value in its record (a tuple, a document, a list of config
    # entries), so records get RECORD_DEPTH; what one writes, it reads back.
    from stateward.core._codec import RECORD_DEPTH, decode_record, encode_checked

    assert RECORD_DEPTH > MAX_DEPTH
    record = decode_record(payload(states_body(RECORD_DEPTH)))
    assert_identical(decode_record(encode_checked(record)), record)
    with pytest.raises(DecodeError, match=f"deeper than {MAX_DEPTH} levels"):
        decode(payload(states_body(RECORD_DEPTH)))
    with pytest.raises(DecodeError, match=f"deeper than {RECORD_DEPTH} levels"):
        decode_record(payload(states_body(RECORD_DEPTH + 1)))
    with pytest.raises(UnencodableValueError):
        encode_checked((record,))  # one level more than a record may have
    with pytest.raises(UnencodableValueError):
        encode(record)  # and encode keeps to MAX_DEPTH
