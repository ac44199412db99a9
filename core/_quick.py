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
from typing import Any, TypeVar

__all__ = ["quick_init"]

C = TypeVar("C", bound=type)


def quick_init(cls: C) -> C:
    """Replace the ``__init__`` of a frozen, slotted dataclass; see the module."""
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    if not (params.frozen and "__slots__" in cls.__dict__) or hasattr(cls, "__post_init__"):
        raise TypeError(
            f"{cls.__qualname__} must be a frozen dataclass with slots=True and no __post_init__"
        )
    names: dict[str, Any] = {}
    signature: list[str] = []
    body: list[str] = []
    for f in dataclasses.fields(cls):
        setter = f"_set_{f.name}"
        names[setter] = cls.__dict__[f.name].__set__
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
    init.__doc__ = cls.__init__.__doc__
    init.__annotations__ = dict(cls.__init__.__annotations__)
    cls.__init__ = init
    return cls
