"""The binding of a machine to a Django model: which fields hold what.

`DjangoBinding` names the model's state field, its key (the primary key by
default), an optional integer version field and the audit model. The state
field may hold the state's name (a CharField), or any value the machine's
states map to: ``states=`` a mapping, a ``TextChoices``/``IntegerChoices``
class (member name -> value), or, for a field with ``choices``, their labels.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models

from .._adapter import ColumnMapping
from .._errors import UnmappedColumn
from .._keys import normalize_key
from ._adapter import DjangoAdapter
from ._errors import BindingError

#: Integer fields by internal type, and their width where columns have one.
INT_BITS = {
    "SmallAutoField": 16,
    "SmallIntegerField": 16,
    "PositiveSmallIntegerField": 16,
    "AutoField": 32,
    "IntegerField": 32,
    "PositiveIntegerField": 32,
    "BigAutoField": 64,
    "BigIntegerField": 64,
    "PositiveBigIntegerField": 64,
}
TEXT_FIELDS = ("CharField", "TextField", "SlugField", "EmailField")


def _choices_mapping(states: Any) -> dict[str, Any] | None:
    """``states=`` as {state name: stored value}."""
    if states is None:
        return None
    if isinstance(states, type) and issubclass(states, models.Choices):
        members: Any = states
        return {member.name: member.value for member in members}
    if isinstance(states, Mapping):
        return dict(states)
    raise BindingError(
        f"states= must be a mapping {{state: stored value}} or a TextChoices/IntegerChoices "
        f"class, got {states!r}"
    )


@dataclass(frozen=True)
class DjangoBinding(ColumnMapping):
    """Which fields of a Django model a machine uses.

    Args:
        model: a concrete model class.
        state: the field that holds the state.
        key: the field that identifies a row (the primary key by default).
        version: an optional integer field, increased by one per transition;
            optimistic mode compares it.
        states: machine state -> stored value, when the field does not hold
            the state's name: a mapping, or a ``TextChoices``/``IntegerChoices``
            class (its members' names are the states). Left out for a field
            with ``choices`` whose values are not names (an IntegerField), the
            choices' labels are the states.
        columns: the fields hooks see as ``ctx.data`` and may change; by
            default every other concrete field.
        audit_model: the audit model (by default ``AuditEntry`` of the app
            ``stateward.actors.rows.django``).

    Fields are named by attribute name (``customer_id`` for a foreign key
    ``customer``; ``customer`` is read as ``customer_id``).

    Raises:
        UnmappedColumn: a named field does not exist.
        BindingError: the state field's values do not map to states, or the
            version field is not an integer field.
    """

    model: Any
    state: str = "status"
    key: str | None = None
    version: str | None = None
    states: Any = None
    columns: Sequence[str] | None = None
    audit_model: Any = None

    def __post_init__(self) -> None:
        meta: Any = getattr(self.model, "_meta", None)
        if not (isinstance(self.model, type) and issubclass(self.model, models.Model)):
            raise BindingError(f"DjangoBinding needs a Django model class, got {self.model!r}")
        if meta.abstract or meta.proxy:
            raise BindingError(
                f"DjangoBinding needs a concrete model: {self.model.__name__} is "
                f"{'abstract' if meta.abstract else 'a proxy'}; bind the model that owns the table"
            )
        if self.key is None:
            object.__setattr__(self, "key", meta.pk.attname)
        for role in ("state", "key", "version"):
            name = getattr(self, role)
            if name is not None:
                object.__setattr__(self, role, self._field(name, f"DjangoBinding {role}=").attname)
        if self.columns is not None:
            object.__setattr__(
                self,
                "columns",
                tuple(self._field(n, "DjangoBinding columns=").attname for n in self.columns),
            )
        if self.version is not None:
            kind = self._field(self.version, "").get_internal_type()
            if kind not in INT_BITS:
                raise BindingError(
                    f"DjangoBinding version=: {self.name}.{self.version} is a {kind}; the "
                    "version field must be an integer field (models.IntegerField(default=0))"
                )
        object.__setattr__(self, "states", self._states())

    def _field(self, name: str, where: str) -> Any:
        try:
            field = self.model._meta.get_field(name)
        except FieldDoesNotExist:
            field = None
        if field is None or not getattr(field, "concrete", False) or field.many_to_many:
            raise UnmappedColumn(self.name, name, self.column_names, where)
        return field

    def _states(self) -> dict[str, Any] | None:
        field = self._field(self.state, "DjangoBinding state=")
        mapping = _choices_mapping(self.states)
        choices = [value for value, _label in field.flatchoices] if field.choices else None
        if mapping is None and field.get_internal_type() not in TEXT_FIELDS:
            if not choices:
                raise BindingError(
                    f"DjangoBinding state=: {self.name}.{field.attname} is a "
                    f"{field.get_internal_type()} without choices: say which value stands "
                    "for which state, with states={'draft': 0, ...} or states=<an "
                    "IntegerChoices class>"
                )
            mapping = {str(label): value for value, label in field.flatchoices}
        if mapping is not None and choices is not None:
            stray = [value for value in mapping.values() if value not in choices]
            if stray:
                raise BindingError(
                    f"DjangoBinding states=: {', '.join(map(repr, stray))} not among the "
                    f"choices of {self.name}.{field.attname} ({', '.join(map(repr, choices))})"
                )
        return mapping

    @property
    def name(self) -> str:
        return str(self.model._meta.db_table)

    @property
    def column_names(self) -> list[str]:
        return [f.attname for f in self.model._meta.concrete_fields]

    @property
    def field_names(self) -> dict[str, str]:
        """attname -> field name, for every concrete field."""
        return {f.attname: f.name for f in self.model._meta.concrete_fields}

    def normalize_key(self, key: Any, dialect: str, call: str) -> Any:
        """``key`` as a value of the key field (see `RowMachines.key_of`)."""
        field = self._field(str(self.key), call)
        kind_name = field.get_internal_type()
        kind: type | None = None
        if kind_name in INT_BITS:
            kind = int
        elif kind_name in TEXT_FIELDS:
            kind = str
        elif kind_name == "UUIDField":
            kind = uuid.UUID
        bits = 64 if dialect == "sqlite" else INT_BITS.get(kind_name, 64)
        return normalize_key(kind, bits, (self.name, field.attname), key, dialect, call)

    def adapter_for(self, engine: Any) -> DjangoAdapter:
        """The `DjangoAdapter` of a database alias (None: ``"default"``)."""
        if engine is not None and not isinstance(engine, str):
            raise TypeError(
                f"a DjangoBinding works on a database alias (a str such as 'default', or "
                f"None), or an ORMAdapter; got {engine!r}"
            )
        return DjangoAdapter(engine or "default", audit_model=self.audit_model)
