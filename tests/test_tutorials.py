"""The tutorial notebooks are stored executed, listed in the docs, and each ends with its take-away.

Executing them is CI's job (``python tutorials/execute.py --check`` in ``.ci/run``); these checks are static and fast.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "tutorials").glob("*.ipynb"))


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def test_there_are_tutorials():
    assert len(NOTEBOOKS) >= 7, [p.name for p in NOTEBOOKS]


def test_every_notebook_is_in_the_docs_toctree():
    page = (ROOT / "docs" / "tutorials.md").read_text(encoding="utf-8")
    toctree = re.search(r"```\{toctree\}(.*?)```", page, re.S)
    assert toctree is not None, "docs/tutorials.md has no toctree"
    listed = {line.strip() for line in toctree.group(1).splitlines()}
    missing = [p.stem for p in NOTEBOOKS if f"notebooks/{p.stem}" not in listed]
    assert not missing, f"add to the toctree of docs/tutorials.md: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_executed_in_order(path):
    code = [c for c in _cells(path) if c["cell_type"] == "code" and _source(c).strip()]
    assert code, "no code cells"
    counts = [c.get("execution_count") for c in code]
    assert None not in counts, f"{path.name}: cells without outputs; run python tutorials/execute.py {path.name}"
    assert counts == list(range(1, len(code) + 1)), f"{path.name} was not executed top to bottom in one kernel"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name} stores an error output"
    assert any("image/png" in o.get("data", {}) for c in code for o in c.get("outputs", [])), "no plot stored"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_starts_with_a_title_and_ends_with_the_take_away(path):
    cells = _cells(path)
    assert cells[0]["cell_type"] == "markdown" and _source(cells[0]).startswith("# "), "first cell: a '# Title'"
    last = cells[-1]
    assert last["cell_type"] == "markdown" and "what to take away" in _source(last).lower(), (
        f"{path.name}: the last cell should be the '## What to take away' markdown cell"
    )
