"""An mkdocs hook that ships mermaid.js inside the built site.

Material draws ```mermaid fences with the page's ``window.mermaid`` when one is
loaded, and fetches it from a CDN otherwise, so that the pictures fail offline.
This hook copies the browser build of mermaid that the ``mermaidx`` package carries
(the docs extra installs it) into the site and loads it on every page.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

#: Where the file lands in the built site, and the script tag that loads it.
SITE_PATH = "javascripts/mermaid.min.js"

#: The last statement of mermaid's browser build (an esbuild IIFE): it defines
#: the ``window.mermaid`` that Material uses instead of fetching its own.
DEFINES_WINDOW_MERMAID = 'globalThis["mermaid"] ='


class MermaidNotFound(RuntimeError):
    """mermaid's browser build is missing, or is not the file we expect."""


def mermaid_js(package: str = "mermaidx") -> Path:
    """The browser build of mermaid inside ``package``, checked to define
    ``window.mermaid``; :class:`MermaidNotFound` says what to install if not."""
    spec = importlib.util.find_spec(package)  # finds it without importing it
    if spec is None or not spec.submodule_search_locations:
        raise MermaidNotFound(
            f"the docs ship mermaid.js from the {package!r} package, which is not "
            "installed: pip install -e '.[docs]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "assets" / "mermaid.js"
    if not path.is_file():
        raise MermaidNotFound(
            f"{path} is missing: this version of {package!r} no longer carries "
            "mermaid.js; pin the version the docs extra names"
        )
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 4096))
        tail = handle.read().decode("utf-8", errors="replace")
    if DEFINES_WINDOW_MERMAID not in tail:
        raise MermaidNotFound(
            f"{path} does not define window.mermaid (not mermaid's browser build?): "
            "Material would fetch mermaid from the network instead"
        )
    return path


def on_config(config: Any) -> Any:
    if SITE_PATH not in [str(script) for script in config.extra_javascript]:
        config.extra_javascript.append(SITE_PATH)
    return config


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.exceptions import PluginError
    from mkdocs.structure.files import File

    try:
        source = mermaid_js()
    except MermaidNotFound as error:
        raise PluginError(str(error)) from error
    files.append(File.generated(config, SITE_PATH, abs_src_path=str(source)))
    return files
