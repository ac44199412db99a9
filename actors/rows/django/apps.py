"""The Django app of stateward's row machines: its audit model and migration.

Add ``"stateward.actors.rows.django"`` to ``INSTALLED_APPS`` and run
``manage.py migrate`` to create the ``stateward_audit`` table.
"""

from __future__ import annotations

from django.apps import AppConfig


class StatewardRowsConfig(AppConfig):
    """The app: label ``stateward_rows``, model `AuditEntry`."""

    name = "stateward.actors.rows.django"
    label = "stateward_rows"
    verbose_name = "stateward row machines"
    default_auto_field = "django.db.models.BigAutoField"
