"""A local Ray cluster for one test module (importable as ``ray_cluster``).

Ray keeps its files in the given folder and writes nothing to the home
directory (``RAY_AUTH_MODE=disabled``); the workers find this folder's
modules (the definitions the tests create actors from) on their PYTHONPATH.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

HERE = Path(__file__).resolve().parent


def _home_ray_files() -> set[Path]:
    folder = Path.home() / ".ray"
    return set(folder.rglob("*")) if folder.exists() else set()


@contextlib.contextmanager
def local_cluster(
    folder: Path, env_vars: dict[str, str] | None = None, setup_hook: str | None = None
) -> Iterator[Path]:
    """``ray.init`` with 2 CPUs and no dashboard, its files in ``folder``;
    shut down at the end, and checked to have left ``~/.ray`` alone.
    ``env_vars``: more environment for the workers; ``setup_hook``: the
    import path of a function each worker process runs when it starts."""
    import ray

    home_before = _home_ray_files()
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    runtime_env: dict[str, object] = {
        "env_vars": {"PYTHONPATH": path, "RAY_AUTH_MODE": "disabled", **(env_vars or {})}
    }
    if setup_hook is not None:
        runtime_env["worker_process_setup_hook"] = setup_hook
    with mock.patch.dict(os.environ, {"RAY_AUTH_MODE": "disabled"}):
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            _temp_dir=str(folder),
            runtime_env=runtime_env,
            log_to_driver=False,
        )
        try:
            yield folder
        finally:
            ray.shutdown()
    assert _home_ray_files() == home_before, "the test cluster wrote into ~/.ray"
