"""The Django settings of the Django binding's tests (and their race workers).

Databases, from the environment (``configure_from_env`` sets them up):

- ``default``: SQLite on a file, ``STATEWARD_DJANGO_SQLITE``;
- ``pg``: the PostgreSQL server at ``STATEWARD_PG_URL``, in the schema
  ``STATEWARD_DJANGO_PG_SCHEMA`` (through ``search_path``), when both are set.

Persistent connections (``CONN_MAX_AGE = None``): a row actor's thread keeps
its connection between transitions.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, urlsplit

SQLITE_ENV = "STATEWARD_DJANGO_SQLITE"
SCHEMA_ENV = "STATEWARD_DJANGO_PG_SCHEMA"
PG_ENV = "STATEWARD_PG_URL"


def postgresql(url: str, schema: str) -> dict[str, Any]:
    """A Django database entry for a ``postgresql[+driver]://`` URL, in ``schema``."""
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/"),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": None,
        "OPTIONS": {"options": f"-c search_path={schema}"},
    }


def databases() -> dict[str, Any]:
    found: dict[str, Any] = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ[SQLITE_ENV],
            "CONN_MAX_AGE": None,
            "OPTIONS": {"timeout": 20},
        }
    }
    if os.environ.get(PG_ENV) and os.environ.get(SCHEMA_ENV):
        found["pg"] = postgresql(os.environ[PG_ENV], os.environ[SCHEMA_ENV])
    return found


def configure_from_env() -> None:
    """Configure Django for this process (once) and load the apps."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DATABASES=databases(),
            INSTALLED_APPS=["stateward.actors.rows.django", "shop"],
            USE_TZ=True,
            TIME_ZONE="UTC",
            DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        )
        django.setup()
