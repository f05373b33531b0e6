"""Shared fixtures: the reference-case harness in tests/reference/parity.py and the image baselines."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.testing.compare import compare_images  # noqa: E402

IMAGES = Path(__file__).parent / "_images"
DPI = 40
TOL = 10  # RMS difference (0-255 scale) allowed against the baseline

_PARITY = Path(__file__).parent / "reference" / "parity.py"


def _load_parity():
    spec = importlib.util.spec_from_file_location("pbglm_tests_parity", _PARITY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PARITY = _load_parity()


@pytest.fixture(scope="session")
def parity():
    """The module that fits the reference cases and compares them with R's tables."""
    return PARITY


@pytest.fixture
def check_image(tmp_path_factory):
    """``check_image(ax_or_fig, name)``: compare with ``tests/_images/<name>.png``.

    ``PBGLM_UPDATE_IMAGES=1`` rewrites the baselines. On failure the actual, expected and diff
    images are kept together in a temporary directory named in the failure message.
    """
    out = tmp_path_factory.mktemp("plots")

    def check(obj, name: str) -> None:
        fig = obj if isinstance(obj, Figure) else obj.figure
        actual = out / f"{name}.png"
        fig.savefig(actual, dpi=DPI)
        plt.close(fig)
        baseline = IMAGES / f"{name}.png"
        if os.environ.get("PBGLM_UPDATE_IMAGES"):
            IMAGES.mkdir(exist_ok=True)
            shutil.copyfile(actual, baseline)
            return
        if not baseline.exists():
            pytest.fail(f"No baseline {baseline}; the actual image is {actual}. Run with PBGLM_UPDATE_IMAGES=1.")
        expected = out / f"{name}-expected.png"
        shutil.copyfile(baseline, expected)
        result = compare_images(str(expected), str(actual), tol=TOL, in_decorator=True)
        if result is not None:
            pytest.fail(
                f"Image {name!r} differs from its baseline (RMS {result['rms']:.2f} > {TOL}).\n"
                f"  actual:   {result['actual']}\n  expected: {result['expected']}\n  diff:     {result['diff']}"
            )
        actual.unlink()
        expected.unlink()

    return check
