"""Row keys, read as the key column's type: one spelling per row, on every database.

A key is normalized before it is used anywhere (the row's actor, the query,
the audit table's ``row_key``, the errors), so ``1.0`` and ``1`` are the same
row of an integer-keyed table and its history is found under either. A key
that cannot be a value of the column is refused with `InvalidRowKey`, the same
way on every database, instead of a driver error on one and `RowNotFound` on
another.
"""

from __future__ import annotations

import decimal
import uuid
from typing import Any

import sqlalchemy as sa

from ._errors import InvalidRowKey

#: Signed integer ranges by column type, on databases whose integer columns
#: have the declared width. SQLite stores every integer in 64 bits.
_BITS = ((sa.SmallInteger, 16), (sa.BigInteger, 64), (sa.Integer, 32))


def _int_bits(column: sa.Column[Any], dialect: str) -> int:
    if dialect == "sqlite":
        return 64
    for kind, bits in _BITS:
        if isinstance(column.type, kind):
            return bits
    return 64


def _python_type(column: sa.Column[Any]) -> type | None:
    try:
        kind = column.type.python_type
    except NotImplementedError:  # a custom type that does not say
        return None
    return None if kind is object else kind


def normalize_key(column: sa.Column[Any], key: Any, dialect: str, call: str) -> Any:
    """``key`` as a value of ``column``'s Python type, or `InvalidRowKey`.

    - integer columns: an ``int`` within the column's range on this database;
      a float or Decimal with an integral value is that int (``1.0`` -> ``1``);
      ``1.5``, text (``"1"``) and bools are refused.
    - text columns: a ``str`` (a subclass is read as its text) of UTF-8 text
      without NUL; nothing else.
    - UUID columns: a ``uuid.UUID``, or its text form.
    - other typed columns: an instance of the column's Python type.
    - columns whose type does not say: the key as given.
    """
    kind = _python_type(column)
    if kind is None:
        if key is None:
            raise InvalidRowKey(call, *_where(column), "a key, not None", key)
        return key
    if key is None or isinstance(key, bool):
        raise InvalidRowKey(call, *_where(column), _expected(kind), key)
    if kind is int:
        return _int_key(column, key, dialect, call)
    if kind is str:
        if isinstance(key, str):
            return _text_key(column, str.__str__(key), call)
        raise InvalidRowKey(call, *_where(column), "a str", key)
    if kind is uuid.UUID and isinstance(key, str):
        try:
            return uuid.UUID(key)
        except ValueError:
            raise InvalidRowKey(call, *_where(column), "a UUID, or its text form", key) from None
    if isinstance(key, kind):
        return key
    raise InvalidRowKey(call, *_where(column), _expected(kind), key)


def _text_key(column: sa.Column[Any], key: str, call: str) -> str:
    """``key`` if every database can hold it: UTF-8 text (no lone surrogate)
    without NUL, which PostgreSQL's text cannot hold."""
    if "\x00" in key or not (key.isascii() or _is_utf8(key)):
        raise InvalidRowKey(
            call, *_where(column), "a str of UTF-8 text without NUL characters", key
        )
    return key


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _where(column: sa.Column[Any]) -> tuple[str, str]:
    return str(column.table.name), str(column.name)


def _expected(kind: type) -> str:
    return "an int" if kind is int else f"a {kind.__qualname__}"


def _int_key(column: sa.Column[Any], key: Any, dialect: str, call: str) -> int:
    if type(key) is not int:
        exact = isinstance(key, int) or (
            isinstance(key, (float, decimal.Decimal)) and _integral(key)
        )
        if not exact:
            raise InvalidRowKey(
                call,
                *_where(column),
                "an int (a float or Decimal only with an integral value)",
                key,
                "Convert text with int(...) first" if isinstance(key, str) else "",
            )
        key = int(key)
    bits = _int_bits(column, dialect)
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if not low <= key <= high:
        raise InvalidRowKey(
            call,
            *_where(column),
            f"an int from {low} to {high} ({bits}-bit on {dialect}): no row can have another key",
            key,
        )
    return key  # type: ignore[no-any-return]


def _integral(value: float | decimal.Decimal) -> bool:
    try:
        return bool(value == int(value))
    except (ValueError, OverflowError, ArithmeticError):  # nan, inf
        return False
