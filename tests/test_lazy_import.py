"""``import pbglm`` stays light: numba, matplotlib, SciPy and dask load only when a subpackage is used."""

import json
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _modules_after(code: str) -> dict:
    probe = code + "\nimport json, sys\nprint(json.dumps({m: m in sys.modules for m in HEAVY}))"
    probe = "HEAVY = ['numba', 'matplotlib', 'scipy.stats', 'dask', 'pbglm.tl', 'pbglm.pl']\n" + probe
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"})
    return json.loads(out.stdout)


def test_import_pbglm_loads_no_heavy_module():
    loaded = _modules_after("import pbglm")
    assert not any(loaded.values()), loaded


def test_subpackages_load_on_first_use():
    loaded = _modules_after("import pbglm as pb\npb.tl.fit")
    assert loaded["pbglm.tl"] and loaded["numba"]
    assert not loaded["pbglm.pl"] and not loaded["matplotlib"]
    assert "fit" in dir(__import__("pbglm").tl)


def test_unknown_attribute_is_an_attribute_error():
    import pbglm

    try:
        pbglm.nope  # noqa: B018
    except AttributeError as err:
        assert "nope" in str(err)
    else:
        raise AssertionError("pbglm.nope should raise AttributeError")
