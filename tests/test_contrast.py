"""Contrast forms resolve to the right vectors over the design columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pbglm._contrast import resolve_contrast
from pbglm._design import build_design

COLS = ["Intercept", "Batch[b2]", "Drug[DrugA]", "Drug[DrugB]"]
FACTORS = {"Batch": ["b1", "b2"], "Drug": ["ctrl", "DrugA", "DrugB"]}


@pytest.mark.parametrize(
    ("contrast", "expected", "name"),
    [
        (("Drug", "DrugA", "ctrl"), [0, 0, 1, 0], "Drug_DrugA_vs_ctrl"),
        (("Drug", "ctrl", "DrugA"), [0, 0, -1, 0], "Drug_ctrl_vs_DrugA"),
        (("Drug", "DrugA", "DrugB"), [0, 0, 1, -1], "Drug_DrugA_vs_DrugB"),
        ("Drug[DrugB]", [0, 0, 0, 1], "Drug_DrugB"),
        ("DrugA - DrugB", [0, 0, 1, -1], "DrugA-DrugB"),
        ("(DrugA + DrugB)/2 - ctrl", [0, 0, 0.5, 0.5], None),
        ("Drug[DrugA] - 0.5 * Drug[DrugB]", [0, 0, 1, -0.5], None),
        ({"Drug[DrugA]": 1, "Batch[b2]": -1}, [0, -1, 1, 0], "contrast"),
        ([0, 0, 1, -1], [0, 0, 1, -1], "contrast"),
    ],
)
def test_forms(contrast, expected, name):
    vec, default, _ = resolve_contrast(contrast, COLS, FACTORS)
    np.testing.assert_allclose(vec, expected)
    if name is not None:
        assert default == name


@pytest.mark.parametrize(
    ("contrast", "error", "match"),
    [
        (("Drug", "DrugC", "ctrl"), ValueError, "not a level of 'Drug'"),
        (("Dose", "a", "b"), KeyError, "not a factor"),
        ("DrugA * DrugB", ValueError, "not a linear combination"),
        ("Drug[DrugA] +", ValueError, "Cannot parse"),
        ("foo - ctrl", KeyError, "neither a coefficient nor a factor level"),
        ({"Drug[DrugC]": 1}, KeyError, "valid names"),
        ([1, 0], ValueError, "2 entries but the design has 4"),
        (("Drug", "ctrl", "ctrl"), ValueError, "with itself"),
    ],
)
def test_errors(contrast, error, match):
    with pytest.raises(error, match=match):
        resolve_contrast(contrast, COLS, FACTORS)


def test_cell_means_in_interaction_design():
    obs = pd.DataFrame({"Time": np.repeat(["day0", "day2", "day4"], 4), "Treatment": ["ctrl", "trt"] * 6})
    d = build_design(obs, "~ Time * Treatment")
    vec, name, _ = resolve_contrast(("Treatment", "trt", "ctrl", {"Time": "day4"}), d.columns, d.factors,
                                    formula=d.formula, numeric=d.numeric)
    expected, _, _ = resolve_contrast("Treatment[trt] + Time[day4]:Treatment[trt]", d.columns, d.factors)
    np.testing.assert_allclose(vec, expected)
    assert name == "Treatment_trt_vs_ctrl_at_Timeday4"
    # at the reference time the interaction terms drop out
    vec0, _, _ = resolve_contrast(("Treatment", "trt", "ctrl", {"Time": "day0"}), d.columns, d.factors,
                                  formula=d.formula, numeric=d.numeric)
    np.testing.assert_allclose(vec0, resolve_contrast("Treatment[trt]", d.columns, d.factors)[0])
