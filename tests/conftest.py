"""Shared fixtures: the reference-case harness in tests/reference/parity.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

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
