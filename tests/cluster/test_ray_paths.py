"""How names, definitions and stores travel to Ray shards: checked without a
cluster (nothing here imports Ray)."""

from __future__ import annotations

import pickle
import subprocess
import sys
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray_specs
from pg_support import drop_pg_schema, pg_url

from stateward.actors.ray import SpecNotImportable
from stateward.actors.ray._paths import (
    import_spec,
    open_store,
    shard_of,
    spec_path,
    store_recipe,
)
from stateward.actors.stores import MemoryStore, PostgresStore, SQLiteStore
from stateward.core import MachineSpec


def test_a_name_goes_to_the_same_shard_in_every_process() -> None:
    names = [f"order-{i}" for i in range(20)]
    here = [shard_of(name, 4) for name in names]
    code = (
        "from stateward.actors.ray._paths import shard_of;"
        f"print([shard_of(n, 4) for n in {names!r}])"
    )
    # Another interpreter, with another string hash seed: the same shards.
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={"PYTHONHASHSEED": "12345"},
    )
    assert other.stdout.strip() == str(here)
    assert set(here) == {0, 1, 2, 3}  # and the names spread over every shard


def test_a_module_level_spec_and_builder_are_found_by_import_path() -> None:
    assert spec_path(ray_specs.ORDER) == ("ray_specs", "ORDER")
    built = ray_specs.PAYMENTS.build()
    assert import_spec("ray_specs", "ORDER") is ray_specs.ORDER
    with pytest.raises(SpecNotImportable, match="no module-level name"):
        spec_path(built)  # built by hand: another spec object than the builder's shared one


def test_a_spec_made_in_a_function_is_refused() -> None:
    with pytest.raises(SpecNotImportable, match="module level"):
        spec_path(MachineSpec("a", {"a": []}))


def test_a_worker_missing_the_module_or_the_name_says_so() -> None:
    with pytest.raises(SpecNotImportable, match="cannot be imported on the Ray worker"):
        import_spec("no_such_module_anywhere", "SPEC")
    with pytest.raises(SpecNotImportable, match="has no 'MISSING'"):
        import_spec("ray_specs", "MISSING")


def url_with_password(url: str, password: str) -> str:
    """``url`` with its password replaced by ``password`` (the test server
    trusts local logins, so any password connects)."""
    parts = urllib.parse.urlsplit(url.replace("postgresql+psycopg://", "postgresql://", 1))
    user = parts.username or "postgres"
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}{port}"))


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, str]]:
    """``(url, schema)``: a fresh schema on the test server, dropped afterwards."""
    url = pg_url()
    schema = f"sw_recipe_{uuid.uuid4().hex[:12]}"
    try:
        yield url, schema
    finally:
        drop_pg_schema(url, schema)


def test_only_a_store_other_processes_can_open_is_shared(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="MemoryStore lives in one process"):
        store_recipe(MemoryStore())
    store = SQLiteStore(tmp_path / "s.db", durability="batched", lease_seconds=7)
    try:
        recipe = store_recipe(store)
        assert (recipe.kind, recipe.where, recipe.durability, recipe.lease_seconds) == (
            "sqlite",
            str((tmp_path / "s.db").resolve()),
            "batched",
            7.0,
        )
        reopened = open_store(pickle.loads(pickle.dumps(recipe)))
        try:
            assert isinstance(reopened, SQLiteStore)
            assert (reopened.path, reopened.durability, reopened.lease_seconds) == (
                (tmp_path / "s.db").resolve(),
                "batched",
                7.0,
            )
        finally:
            reopened.close()
    finally:
        store.close()


def test_a_postgres_stores_recipe_carries_its_password_sealed(
    pg_schema: tuple[str, str],
) -> None:
    """The recipe of a `PostgresStore` whose URL has a password opens the same
    store on a shard; the password shows in no repr, str or name of it."""
    url, schema = pg_schema
    secret = "Recipe-Secret-7q"
    with_password = url_with_password(url, secret)
    store = PostgresStore(with_password, durability="batched", schema=schema, lease_seconds=9)
    try:
        recipe = store_recipe(store)
        assert (recipe.kind, recipe.durability, recipe.lease_seconds, recipe.schema) == (
            "postgres",
            "batched",
            9.0,
            schema,
        )
        for shown in (repr(recipe), str(recipe), f"{recipe}", recipe.where):
            assert secret not in shown
        assert "***" in repr(recipe)
        travelled = pickle.loads(pickle.dumps(recipe))
        reopened = open_store(travelled)
        try:
            assert isinstance(reopened, PostgresStore)
            assert (reopened.schema, reopened.durability, reopened.lease_seconds) == (
                schema,
                "batched",
                9.0,
            )
            assert travelled.secret is not None and secret in travelled.secret.reveal()
            assert secret not in repr(reopened)
        finally:
            reopened.close()
    finally:
        store.close()


def test_a_spec_of_the_main_module_is_refused_under_any_alias_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ray (through multiprocessing) registers the main module a second time
    as ``__mp_main__``: a spec found there has no import path on a worker."""
    import types

    main = types.ModuleType("__main__")
    spec = MachineSpec("a", {"a": ["b"], "b": []})
    main.SCRIPT_SPEC = spec  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setitem(sys.modules, "__mp_main__", main)
    with pytest.raises(SpecNotImportable, match="module level"):
        spec_path(spec)
