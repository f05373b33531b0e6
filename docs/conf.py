"""Sphinx configuration for pbglm (build: ``sphinx-build -W docs docs/_build/html``).

myst-nb writes the notebook images next to the output folder, into ``docs/_build/jupyter_execute``.

The tutorials are the notebooks in ``tutorials/`` at the repository root, stored with their outputs; they are
copied into ``docs/notebooks/`` at build time and rendered by myst-nb without being executed.

Intersphinx inventories (anndata, scanpy, numpy, pandas, scipy) are downloaded at build time into
``docs/_build/intersphinx/`` and read from there. A build without network (CI) uses the copies a previous build
left there, or none: the cross-references then render as plain code instead of links, and ``-W`` still passes.
``PBGLM_DOCS_OFFLINE=1`` skips the downloads.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sphinx.util import logging

import pbglm

HERE = Path(__file__).resolve().parent
logger = logging.getLogger(__name__)

project = "pbglm"
author = "pbglm developers"
copyright = "pbglm developers"
release = pbglm.__version__
version = release
extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
]
autosummary_generate = True
autodoc_typehints = "description"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "jupyter_execute", "**.ipynb_checkpoints"]
suppress_warnings = ["myst.header"]

# notebooks: rendered with the outputs stored in them, never executed by the docs build
nb_execution_mode = "off"
nb_merge_streams = True

html_theme = "sphinx_book_theme"
html_title = "pbglm"
html_static_path = ["_static"]
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
}


def _copy_notebooks() -> None:
    """Copy ``tutorials/*.ipynb`` into ``docs/notebooks/`` (Sphinx reads only files under ``docs/``)."""
    src, dst = HERE.parent / "tutorials", HERE / "notebooks"
    dst.mkdir(exist_ok=True)
    wanted = {p.name for p in src.glob("*.ipynb")}
    for old in dst.glob("*.ipynb"):
        if old.name not in wanted:
            old.unlink()
    for name in wanted:
        if not (dst / name).exists() or (dst / name).read_bytes() != (src / name).read_bytes():
            shutil.copyfile(src / name, dst / name)


_copy_notebooks()

# ---------------------------------------------------------------------------------------------------------------
# intersphinx, tolerant of no network
# ---------------------------------------------------------------------------------------------------------------
_INVENTORIES = {
    "python": "https://docs.python.org/3/",
    "anndata": "https://anndata.readthedocs.io/en/stable/",
    "scanpy": "https://scanpy.readthedocs.io/en/stable/",
    "numpy": "https://numpy.org/doc/stable/",
    "pandas": "https://pandas.pydata.org/docs/",
    "scipy": "https://docs.scipy.org/doc/scipy/",
}
_INV_CACHE = HERE / "_build" / "intersphinx"


def _inventory(name: str, url: str) -> tuple[str, str | None] | None:
    """``(url, local inventory)`` for intersphinx, downloading a fresh copy when the network allows."""
    path = _INV_CACHE / f"{name}.inv"
    if os.environ.get("PBGLM_DOCS_OFFLINE") != "1":
        try:
            with urllib.request.urlopen(url + "objects.inv", timeout=5) as response:
                data = response.read()
            if data.startswith(b"# Sphinx inventory version"):
                _INV_CACHE.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        except OSError as err:  # no network, DNS failure, HTTP error, timeout
            logger.info("intersphinx: cannot download the %s inventory (%s)", name, err)
    return (url, str(path)) if path.is_file() else None


with ThreadPoolExecutor(len(_INVENTORIES)) as _pool:
    _found = dict(zip(_INVENTORIES, _pool.map(lambda kv: _inventory(*kv), _INVENTORIES.items()), strict=True))
intersphinx_mapping = {name: entry for name, entry in _found.items() if entry is not None}
_missing = sorted(set(_INVENTORIES) - set(intersphinx_mapping))
if _missing:
    logger.info("intersphinx: no inventory for %s; their cross-references render as plain code", ", ".join(_missing))
