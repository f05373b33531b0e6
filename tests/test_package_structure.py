"""scanpy-style conventions for every public function, and docs/api.md listing them all."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import pbglm as pb

NAMESPACES = {"pp": pb.pp, "tl": pb.tl, "get": pb.get, "pl": pb.pl, "datasets": pb.datasets}
PUBLIC = [(ns, name, getattr(mod, name)) for ns, mod in NAMESPACES.items() for name in mod.__all__
          if inspect.isfunction(getattr(mod, name))]


@pytest.mark.parametrize(("ns", "name", "func"), PUBLIC, ids=[f"{n}.{f}" for n, f, _ in PUBLIC])
def test_signature_conventions(ns, name, func):
    sig = inspect.signature(func)
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert len(positional) <= 3, f"{ns}.{name} has more than 3 positional parameters"
    if ns in ("pp", "tl", "pl") and params:
        assert params[0].name in ("adata", "data"), f"{ns}.{name}: the first parameter should be adata"
    assert "save" not in sig.parameters
    doc = inspect.getdoc(func) or ""
    assert doc, f"{ns}.{name} has no docstring"
    if ns != "datasets" and len(params) > 0:
        assert "Parameters" in doc and "Returns" in doc, f"{ns}.{name}: numpydoc Parameters and Returns"


def test_api_page_lists_every_public_function():
    api = (Path(__file__).parents[1] / "docs" / "api.md").read_text()
    missing = [f"{ns}.{name}" for ns, name, _ in PUBLIC if f"{ns}.{name}" not in api]
    assert not missing, f"docs/api.md does not list {missing}"


def test_no_global_warning_filters_at_import():
    import subprocess
    import sys

    # dependencies (scipy, numba, ...) register their own filters: import them first
    code = (
        "import warnings, anndata, numba, scipy.stats, formulaic, matplotlib.pyplot, pandas; "
        "before = list(warnings.filters); import pbglm; assert warnings.filters == before"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
