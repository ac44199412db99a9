"""A faster ``__init__`` for the frozen, slotted dataclasses made on every transition.

A frozen dataclass sets each field with ``object.__setattr__(self, name, value)``,
which looks the slot up by name every time. `quick_init` gives the class an
``__init__`` with the same signature that stores through the slots' own
descriptors instead: about half the cost, which matters for the records a
transition creates (its context, its history entry, the new snapshot). The
class stays a frozen dataclass in every other way: `dataclasses.fields`,
`dataclasses.replace`, equality, hashing, ``repr`` and the error on assignment.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, TypeVar

__all__ = ["quick_init"]

C = TypeVar("C", bound=type)
_POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD


def quick_init(cls: C) -> C:
    """Replace the ``__init__`` of a frozen, slotted dataclass; see the module.

    Raises:
        TypeError: ``cls`` is not a frozen dataclass made with ``slots=True``, has
            a ``__post_init__``, or an ``__init__`` that does not take each field
            in order (``init=False``, ``kw_only``, ``InitVar``), which this
            ``__init__`` could not reproduce.
    """
    params = getattr(cls, "__dataclass_params__", None)
    original = cls.__dict__.get("__init__")
    if (
        params is None
        or original is None
        or not (params.frozen and "__slots__" in cls.__dict__)
        or hasattr(cls, "__post_init__")
    ):
        raise TypeError(
            f"{cls.__qualname__} must be a frozen dataclass with slots=True and no __post_init__"
        )
    fields = dataclasses.fields(cls)
    taken = list(inspect.signature(original).parameters.values())[1:]
    if [(p.name, p.kind) for p in taken] != [(f.name, _POSITIONAL) for f in fields]:
        raise TypeError(
            f"{cls.__qualname__}.__init__ must take every field, in order, by position or "
            "keyword (no init=False, kw_only or InitVar)"
        )
    names: dict[str, Any] = {"__name__": cls.__module__}  # the new function's __module__
    signature: list[str] = []
    body: list[str] = []
    for f in fields:
        setter = f"_set_{f.name}"
        names[setter] = getattr(cls, f.name).__set__  # the slot's descriptor
        if f.default is not dataclasses.MISSING:
            names[f"_default_{f.name}"] = f.default
            signature.append(f"{f.name}=_default_{f.name}")
        elif f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__qualname__}.{f.name}: use a default, not a default_factory")
        else:
            signature.append(f.name)
        body.append(f"    {setter}(self, {f.name})")
    source = f"def __init__(self, {', '.join(signature)}):\n" + "\n".join(body) + "\n"
    exec(source, names)  # the way dataclasses writes its own __init__
    init = names["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = original.__doc__
    init.__annotations__ = dict(original.__annotations__)
    cls.__init__ = init  # type: ignore[misc]
    return cls
