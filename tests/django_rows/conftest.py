"""Fixtures of the Django binding's tests: Django configured once, both databases migrated.

Django's settings are process-wide, so this module configures them when the
tests are collected: ``default`` is SQLite on a file in a fresh folder;
``pg`` is the PostgreSQL server at ``STATEWARD_PG_URL`` in a fresh schema
(dropped at the end of the session). Without ``STATEWARD_PG_URL`` the
PostgreSQL runs skip, saying so, except in CI (``CI=true``), where they fail:
CI must never skip them silently. Both databases are migrated
(``manage.py migrate``: the audit table ships as a migration) before the
first test that uses them. Each test starts with empty tables.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import dj_settings
import pytest
from pg_support import PG_ENV, drop_pg_schema, pg_url

_FOLDER = Path(tempfile.mkdtemp(prefix="stateward-django-"))
os.environ[dj_settings.SQLITE_ENV] = str(_FOLDER / "shop.db")
_SCHEMA = f"sw_django_{uuid.uuid4().hex[:12]}"
if os.environ.get(PG_ENV):
    os.environ[dj_settings.SCHEMA_ENV] = _SCHEMA
dj_settings.configure_from_env()

from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402

from stateward.actors import Runtime  # noqa: E402

#: The database alias of each kind of database.
ALIASES = {"sqlite": "default", "postgresql": "pg"}
_migrated: set[str] = set()


def _create_schema(url: str) -> None:
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_SCHEMA}")


def database(kind: str) -> str:
    """The alias of a database of that kind, migrated; skips (or fails in CI)
    PostgreSQL without a server."""
    alias = ALIASES[kind]
    if kind == "postgresql":
        url = pg_url()
        if alias not in _migrated:
            _create_schema(url)
    if alias not in _migrated:
        call_command("migrate", database=alias, verbosity=0)
        _migrated.add(alias)
    return alias


def _empty(alias: str) -> None:
    from shop.models import Light, Order, Ticket

    from stateward.actors.rows.django.models import AuditEntry

    for model in (Order, Ticket, Light, AuditEntry):
        model._base_manager.using(alias).all().delete()


@pytest.fixture(params=["sqlite", "postgresql"])
def alias(request: pytest.FixtureRequest) -> Iterator[str]:
    """The test's database alias (``default``: SQLite; ``pg``: PostgreSQL), emptied."""
    name = database(request.param)
    _empty(name)
    yield name
    connections.close_all()


@pytest.fixture
def sqlite_alias() -> Iterator[str]:
    """SQLite only, for what only SQLite does (immediate transactions, busy timeouts)."""
    name = database("sqlite")
    _empty(name)
    yield name
    connections.close_all()


@pytest.fixture
def pg_alias() -> Iterator[str]:
    """PostgreSQL only, for row locks (FOR UPDATE, NOWAIT, SKIP LOCKED, lock_timeout)."""
    name = database("postgresql")
    _empty(name)
    yield name
    connections.close_all()


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    """A runtime for one test, shut down (its row actors and threads gone) afterwards."""
    rt = Runtime("django-rows-test", default_timeout=30.0)
    yield rt
    rt.shutdown(timeout=10.0)


@pytest.fixture(scope="session", autouse=True)
def _cleanup() -> Iterator[None]:
    """At the end: the SQLite folder and the PostgreSQL schema are dropped."""
    yield
    connections.close_all()
    shutil.rmtree(_FOLDER, ignore_errors=True)
    if "pg" in _migrated:
        drop_pg_schema(os.environ[PG_ENV], _SCHEMA)
