"""Errors of the Django binding."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from stateward.core import StatewardError


class BindingError(StatewardError, ImproperlyConfigured):
    """A Django binding that cannot work as declared: a state field whose values
    do not map to the machine's states, a version field that is not an integer,
    a missing audit table, an unknown database alias. Raised when the model
    class is created or the binding is made, before anything is written."""


class StateFieldProtected(StatewardError, AttributeError):
    """The state field of a model bound with ``protected=True`` was assigned
    directly (or listed in ``save(update_fields=...)``): only transitions change
    it, through the database.

    Attributes:
        model: the model's name.
        field: the state field.
    """

    def __init__(self, model: str, field: str, how: str, fix: str) -> None:
        self.model = model
        self.field = field
        super().__init__(
            f"{model}.{field} is protected: {how}. Only transitions change it, in the "
            f"database; {fix}"
        )


class UnsavedInstance(StatewardError, ValueError):
    """A transition on a model instance that has no row yet; nothing was written.

    Attributes:
        model: the model's name.
    """

    def __init__(self, model: str, what: str) -> None:
        self.model = model
        super().__init__(
            f"{what} on an unsaved {model} instance: it has no row to transition yet, and "
            f"nothing was written. Save it first (instance.save()), or create it with "
            f"{model}.<machine>.create(...)"
        )
