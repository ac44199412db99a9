"""Row keys, read as the key column's type: one spelling per row, on every database.

ORM-neutral: a binding says what Python type its key column holds and, for
integers, how many bits it has on the database in use; this module does the rest.

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

from ._errors import InvalidRowKey


def normalize_key(
    kind: type | None, bits: int, where: tuple[str, str], key: Any, dialect: str, call: str
) -> Any:
    """``key`` as a value of a key column, or `InvalidRowKey`.

    Args:
        kind: the column's Python type (None when its type does not say).
        bits: integer columns: the column's width on this database.
        where: the table and the column, for the error.

    - integer columns: an ``int`` within the column's range on this database;
      a float or Decimal with an integral value is that int (``1.0`` -> ``1``);
      ``1.5``, text (``"1"``) and bools are refused.
    - text columns: a ``str`` (a subclass is read as its text) of UTF-8 text
      without NUL; nothing else.
    - UUID columns: a ``uuid.UUID``, or its text form.
    - other typed columns: an instance of the column's Python type.
    - columns whose type does not say: the key as given.
    """
    if kind is None:
        if key is None:
            raise InvalidRowKey(call, *where, "a key, not None", key)
        return key
    if key is None or isinstance(key, bool):
        raise InvalidRowKey(call, *where, _expected(kind), key)
    if kind is int:
        return _int_key(where, bits, key, dialect, call)
    if kind is str:
        if isinstance(key, str):
            return _text_key(where, str.__str__(key), call)
        raise InvalidRowKey(call, *where, "a str", key)
    if kind is uuid.UUID and isinstance(key, str):
        try:
            return uuid.UUID(key)
        except ValueError:
            raise InvalidRowKey(call, *where, "a UUID, or its text form", key) from None
    if isinstance(key, kind):
        return key
    raise InvalidRowKey(call, *where, _expected(kind), key)


def _text_key(where: tuple[str, str], key: str, call: str) -> str:
    """``key`` if every database can hold it: UTF-8 text (no lone surrogate)
    without NUL, which PostgreSQL's text cannot hold."""
    if "\x00" in key or not (key.isascii() or _is_utf8(key)):
        raise InvalidRowKey(call, *where, "a str of UTF-8 text without NUL characters", key)
    return key


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _expected(kind: type) -> str:
    return "an int" if kind is int else f"a {kind.__qualname__}"


def _int_key(where: tuple[str, str], bits: int, key: Any, dialect: str, call: str) -> int:
    if type(key) is not int:
        exact = isinstance(key, int) or (
            isinstance(key, (float, decimal.Decimal)) and _integral(key)
        )
        if not exact:
            raise InvalidRowKey(
                call,
                *where,
                "an int (a float or Decimal only with an integral value)",
                key,
                "Convert text with int(...) first" if isinstance(key, str) else "",
            )
        key = int(key)
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if not low <= key <= high:
        raise InvalidRowKey(
            call,
            *where,
            f"an int from {low} to {high} ({bits}-bit on {dialect}): no row can have another key",
            key,
        )
    return key  # type: ignore[no-any-return]


def _integral(value: float | decimal.Decimal) -> bool:
    try:
        return bool(value == int(value))
    except (ValueError, OverflowError, ArithmeticError):  # nan, inf
        return False
