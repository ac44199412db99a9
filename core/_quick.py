"""A faster ``__init__`` for the frozen, slotted dataclasses made on every transition.

A frozen dataclass sets each field with ``object.__setattr__(self, name, value)``,
which looks the slot up by name every time. `quick_init` gives the class an
``__init__`` with the same signature that stores through the slots' own
descriptors instead: about half the cost, which matters for the records a
transition creates (its context, its history entry, the new snapshot). The
class stays a frozen dataclass in every other way: `dataclasses.fields`,
`dataclasses.replace`, equality, hashing, ``repr`` and the error on assignment.

`quick_maker` goes further for the two records made on every transition (the
context and the new snapshot): a function that builds the instance without
calling ``__init__`` at all, so that a field left at its default costs a plain
slot store instead of a descriptor call; a flat machine then pays next to
nothing for the fields only statecharts and timers fill.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["quick_init", "quick_maker"]

C = TypeVar("C", bound=type)
T = TypeVar("T")
_POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD


def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    """The fields of ``cls``, checked as `quick_init` says."""
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
    for f in fields:
        if f.default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__qualname__}.{f.name}: use a default, not a default_factory")
    return fields


def quick_init(cls: C) -> C:
    """Replace the ``__init__`` of a frozen, slotted dataclass; see the module.

    Raises:
        TypeError: ``cls`` is not a frozen dataclass made with ``slots=True``, has
            a ``__post_init__``, or an ``__init__`` that does not take each field
            in order (``init=False``, ``kw_only``, ``InitVar``), which this
            ``__init__`` could not reproduce.
    """
    fields = _fields(cls)
    original = cls.__dict__["__init__"]
    names: dict[str, Any] = {"__name__": cls.__module__}  # the new function's __module__
    signature: list[str] = []
    body: list[str] = []
    for f in fields:
        setter = f"_set_{f.name}"
        names[setter] = getattr(cls, f.name).__set__  # the slot's descriptor
        if f.default is not dataclasses.MISSING:
            names[f"_default_{f.name}"] = f.default
            signature.append(f"{f.name}=_default_{f.name}")
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


def quick_maker(cls: type[T]) -> Callable[..., T]:
    """A function that makes a ``cls`` from its fields by position, with the
    defaults of ``cls(...)`` and an equal result, about twice as fast.

    The instance is built as one of a private mutable twin of ``cls``: a plain
    class with the same ``__slots__``, whose attribute stores the interpreter
    specialises into direct slot writes (a frozen dataclass's own ``__setattr__``
    forbids them). Once every field is set, the instance is given ``cls`` as
    its class: Python allows assigning ``__class__`` between classes whose
    instances have the same layout, which the twin's has by construction. From
    then on it is a ``cls`` like any other: frozen, equal and hashed by value.
    Keywords are not taken: it is for the hot path, which passes positions.

    Raises:
        TypeError: what `quick_init` refuses, and a ``cls`` with a base
            class other than ``object``, whose layout the twin would not share.
    """
    fields = _fields(cls)
    if cls.__bases__ != (object,):
        raise TypeError(f"{cls.__qualname__} must have no base class but object")
    twin = type(f"_{cls.__name__}Twin", (), {"__slots__": cls.__dict__["__slots__"]})
    names: dict[str, Any] = {"__name__": cls.__module__, "_new": object.__new__}
    names["_twin"], names["_cls"] = twin, cls
    signature: list[str] = []
    body = ["    self = _new(_twin)"]
    for f in fields:
        if f.default is not dataclasses.MISSING:
            names[f"_default_{f.name}"] = f.default
            signature.append(f"{f.name}=_default_{f.name}")
        else:
            signature.append(f.name)
        body.append(f"    self.{f.name} = {f.name}")
    body += ["    self.__class__ = _cls", "    return self"]
    source = f"def make({', '.join(signature)}, /):\n" + "\n".join(body) + "\n"
    exec(source, names)  # as `quick_init` does
    make: Callable[..., T] = names["make"]
    make.__qualname__ = f"quick_maker({cls.__qualname__})"
    return make
