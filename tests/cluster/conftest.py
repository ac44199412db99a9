"""Fixtures shared by the Ray test modules: one cluster and one client per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ray_cluster import local_cluster

from stateward.actors.stores import SQLiteStore


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's shared SQLite file."""
    return tmp_path_factory.mktemp("store") / "shared.db"


@pytest.fixture(scope="module")
def ray_client(tmp_path_factory: pytest.TempPathFactory, store_path: Path) -> Iterator[Any]:
    """A local cluster for the module and a `RayRuntime` with 2 shards over
    ``store_path``; its shards are stopped at the module's end."""
    pytest.importorskip("ray")
    from stateward.actors.ray import RayRuntime

    with local_cluster(tmp_path_factory.mktemp("ray")):
        runtime = RayRuntime(SQLiteStore(store_path), shards=2)
        try:
            yield runtime
        finally:
            runtime.shutdown(stop_shards=True)
