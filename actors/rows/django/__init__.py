"""stateward.actors.rows.django: machines bound to Django models (Django 5.2 and later).

Install with ``pip install 'stateward[django]'``; add
``"stateward.actors.rows.django"`` to ``INSTALLED_APPS`` and run ``migrate``
for the audit table. `ModelMachine` declares a machine on a model (protected
state field, a method per event, signals); `DjangoBinding` and `DjangoAdapter`
bind one for `RowMachines` directly:

```python
rows = RowMachines(spec, DjangoBinding(Order, state="status"), "default")
```
"""

try:
    import django
except ModuleNotFoundError as _missing:
    if _missing.name != "django":
        raise  # Django is there, something it needs is not: its own error says what
    raise ModuleNotFoundError(
        "stateward.actors.rows.django needs Django 5.2 or newer, which is not installed: "
        "pip install 'stateward[django]'",
        name="django",
    ) from None
if django.VERSION < (5, 2):
    raise ImportError(
        f"stateward.actors.rows.django needs Django 5.2 or newer, found {django.__version__}: "
        "pip install 'stateward[django]' (or pip install --upgrade 'django>=5.2')",
        name="django",
    )

from ._adapter import DjangoAdapter
from ._binding import DjangoBinding
from ._errors import BindingError, StateFieldProtected, UnsavedInstance
from ._model import (
    AvailableTransition,
    BoundMachine,
    ModelMachine,
    post_transition,
    pre_transition,
)

__all__ = [
    "AvailableTransition",
    "BindingError",
    "BoundMachine",
    "DjangoAdapter",
    "DjangoBinding",
    "ModelMachine",
    "StateFieldProtected",
    "UnsavedInstance",
    "post_transition",
    "pre_transition",
]
