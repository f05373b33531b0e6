"""tl.explain_design and the design findings, over the designs of the course material."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from pbglm._contrast import resolve_contrast
from pbglm._design import build_design
from pbglm._design_findings import (
    DesignError,
    DesignFormulaError,
    DesignWarning,
    Finding,
    check_design,
    findings,
)
from pbglm.tl._explain import DesignExplanation, explain_design


def make(columns: dict, n_genes: int = 3) -> ad.AnnData:
    obs = pd.DataFrame(columns)
    obs.index = [f"s{i + 1}" for i in range(len(obs))]
    return ad.AnnData(np.zeros((len(obs), n_genes), dtype=np.float32), obs=obs)


def meaning(ex: DesignExplanation, column: str) -> str:
    return ex.coefficients.set_index("column").loc[column, "meaning"]


def contrast_for(ex: DesignExplanation, column: str):
    return ex.coefficients.set_index("column").loc[column, "test_with"]


def codes(items: list[Finding], severity: str | None = None) -> list[str]:
    return [f.code for f in items if severity is None or f.severity == severity]


def only(items: list[Finding], code: str) -> Finding:
    hits = [f for f in items if f.code == code]
    assert len(hits) == 1, (code, [str(f) for f in items])
    return hits[0]


def assert_tests_resolve(ex: DesignExplanation, factors: dict[str, list[str]]) -> None:
    """Every test_with is accepted by the contrast parser and tests exactly its own coefficient."""
    columns = list(ex.coefficients["column"])
    for i, row in ex.coefficients.iterrows():
        if row["test_with"] is None:
            continue
        vec, _, _ = resolve_contrast(row["test_with"], columns, factors)
        expected = np.zeros(len(columns))
        expected[i] = 1.0
        np.testing.assert_array_equal(vec, expected, err_msg=row["column"])


def factor_levels(ex: DesignExplanation) -> dict[str, list[str]]:
    return {f: list(sub["level"]) for f, sub in ex.factors.groupby("factor", sort=False)}


# --------------------------------------------------------------------------------------------------
# ~ Drug


def test_drug_two_levels():
    adata = make({"Drug": ["ctrl"] * 3 + ["DrugA"] * 3})
    ex = explain_design(adata, "~ Drug", reference={"Drug": "ctrl"})
    assert list(ex.coefficients["column"]) == ["Intercept", "Drug[DrugA]"]
    assert meaning(ex, "Intercept") == (
        "mean log2 expression of samples with Drug ctrl (the reference level): the baseline"
    )
    assert meaning(ex, "Drug[DrugA]") == "log2 fold change of DrugA vs ctrl (reference level of Drug)"
    assert contrast_for(ex, "Intercept") is None
    assert contrast_for(ex, "Drug[DrugA]") == ("Drug", "DrugA", "ctrl")
    assert ex.factors.to_dict("list") == {
        "factor": ["Drug", "Drug"], "level": ["ctrl", "DrugA"], "is_reference": [True, False], "n_samples": [3, 3],
    }
    assert ex.residual_df == 4 and ex.rank == 2 and ex.n_samples == 6 and ex.ok
    assert ex.findings == []
    assert list(ex.design_matrix.index) == list(adata.obs_names)
    np.testing.assert_array_equal(ex.design_matrix["Drug[DrugA]"], [0, 0, 0, 1, 1, 1])
    assert_tests_resolve(ex, factor_levels(ex))


def test_drug_sorted_levels_reference_finding():
    # 'DrugA' sorts before 'ctrl': without reference= the reference is DrugA, and the explainer says so
    adata = make({"Drug": ["ctrl"] * 3 + ["DrugA"] * 3})
    ex = explain_design(adata, "~ Drug")
    assert list(ex.coefficients["column"]) == ["Intercept", "Drug[ctrl]"]
    assert meaning(ex, "Drug[ctrl]") == "log2 fold change of ctrl vs DrugA (reference level of Drug)"
    f = only(ex.findings, "reference-level")
    assert f.severity == "info"
    assert "'DrugA'" in f.message and "'ctrl' looks like the control" in f.message
    assert "reference={'Drug': 'ctrl'}" in f.fix


def test_drug_three_levels():
    adata = make({"Drug": ["ctrl"] * 3 + ["DrugA"] * 3 + ["DrugB"] * 3})
    ex = explain_design(adata, "~ Drug", reference={"Drug": "ctrl"})
    assert list(ex.coefficients["column"]) == ["Intercept", "Drug[DrugA]", "Drug[DrugB]"]
    assert meaning(ex, "Drug[DrugB]") == "log2 fold change of DrugB vs ctrl (reference level of Drug)"
    assert contrast_for(ex, "Drug[DrugB]") == ("Drug", "DrugB", "ctrl")
    assert list(ex.factors["n_samples"]) == [3, 3, 3]
    assert ex.residual_df == 6 and ex.findings == []
    assert_tests_resolve(ex, factor_levels(ex))


# --------------------------------------------------------------------------------------------------
# combined factor vs ~ DrugA * DrugB


TWO_BY_TWO = {"DrugA": ["no"] * 3 + ["yes"] * 3 + ["no"] * 3 + ["yes"] * 3, "DrugB": ["no"] * 6 + ["yes"] * 6}


def test_combined_factor():
    adata = make({"group": ["ctrl"] * 3 + ["DrugA"] * 3 + ["DrugB"] * 3 + ["DrugA_DrugB"] * 3})
    adata.obs["group"] = pd.Categorical(adata.obs["group"], categories=["ctrl", "DrugA", "DrugB", "DrugA_DrugB"])
    ex = explain_design(adata, "~ group")
    assert meaning(ex, "group[DrugA_DrugB]") == (
        "log2 fold change of DrugA_DrugB vs ctrl (reference level of group)"
    )
    assert contrast_for(ex, "group[DrugA]") == ("group", "DrugA", "ctrl")
    assert ex.findings == []


def test_interaction_two_by_two():
    adata = make(TWO_BY_TWO)
    ex = explain_design(adata, "~ DrugA * DrugB")
    assert list(ex.coefficients["column"]) == ["Intercept", "DrugA[yes]", "DrugB[yes]", "DrugA[yes]:DrugB[yes]"]
    assert meaning(ex, "DrugA[yes]") == (
        "log2 fold change of yes vs no (reference level of DrugA), at DrugB no (reference)"
    )
    assert meaning(ex, "DrugA[yes]:DrugB[yes]") == (
        "extra effect of DrugB yes (vs no) at DrugA yes (vs no), beyond the DrugA and DrugB main effects "
        "(a difference of log2 fold changes)"
    )
    assert contrast_for(ex, "DrugA[yes]:DrugB[yes]") == "DrugA[yes]:DrugB[yes]"
    f = only(ex.findings, "interaction")
    assert f.severity == "info"
    assert "synergy" in f.message and "without DrugB" in f.message
    assert "levels ctrl, DrugA, DrugB, DrugA_DrugB" in f.fix
    assert "'DrugA_DrugB - DrugA - DrugB'" in f.fix
    assert ex.ok and ex.residual_df == 8
    assert_tests_resolve(ex, factor_levels(ex))


def test_combined_factor_answers_the_interaction():
    # The fix's recipe builds the combined factor; its contrast equals the interaction coefficient.
    adata = make(TWO_BY_TWO)
    obs = adata.obs
    obs["group"] = (obs["DrugA"].astype(str) + "_" + obs["DrugB"].astype(str)).map(
        {"no_no": "ctrl", "yes_no": "DrugA", "no_yes": "DrugB", "yes_yes": "DrugA_DrugB"}
    )
    rng = np.random.default_rng(0)
    y = rng.normal(size=len(obs))
    inter = build_design(obs, "~ DrugA * DrugB")
    comb = build_design(obs, "~ group", reference={"group": "ctrl"})
    b_inter = np.linalg.lstsq(inter.matrix, y, rcond=None)[0]
    b_comb = np.linalg.lstsq(comb.matrix, y, rcond=None)[0]
    vec, _, _ = resolve_contrast("DrugA_DrugB - DrugA - DrugB", comb.columns, comb.factors)
    assert np.isclose(vec @ b_comb, b_inter[inter.columns.index("DrugA[yes]:DrugB[yes]")])
    vec, _, _ = resolve_contrast(("group", "DrugA_DrugB", "ctrl"), comb.columns, comb.factors)
    assert np.isclose(vec @ b_comb, b_inter[1:].sum())


# --------------------------------------------------------------------------------------------------
# ~ Batch + Drug


def test_batch_plus_drug():
    adata = make({"Batch": ["b1", "b2", "b3"] * 3, "Drug": ["ctrl"] * 3 + ["DrugA"] * 3 + ["DrugB"] * 3})
    ex = explain_design(adata, "~ Batch + Drug", reference={"Drug": "ctrl"})
    assert meaning(ex, "Intercept") == (
        "mean log2 expression of samples with Batch b1 and Drug ctrl (the reference levels): the baseline"
    )
    assert meaning(ex, "Drug[DrugA]") == (
        "log2 fold change of DrugA vs ctrl (reference level of Drug), with Batch held fixed "
        "(a within-Batch comparison)"
    )
    assert meaning(ex, "Batch[b2]") == "log2 fold change of b2 vs b1 (reference level of Batch), with Drug held fixed"
    assert contrast_for(ex, "Drug[DrugB]") == ("Drug", "DrugB", "ctrl")
    assert ex.findings == [] and ex.residual_df == 4
    assert_tests_resolve(ex, factor_levels(ex))


def test_batch_nested_in_drug_is_reported_not_raised():
    adata = make({"Batch": ["b1"] * 3 + ["b2"] * 3 + ["b3"] * 3 + ["b4"] * 3, "Drug": ["ctrl"] * 6 + ["DrugA"] * 6})
    with pytest.raises(ValueError, match="rank deficient"):
        build_design(adata.obs, "~ Batch + Drug", reference={"Drug": "ctrl"})
    ex = explain_design(adata, "~ Batch + Drug", reference={"Drug": "ctrl"})
    assert not ex.ok and ex.rank == 4 and len(ex.coefficients) == 5
    assert codes(ex.findings, "error") == ["confounded"]
    f = only(ex.findings, "confounded")
    assert "'Drug[DrugA]' = a combination of 'Batch[b3]', 'Batch[b4]'" in f.message
    assert "Batch is nested in Drug" in f.message
    assert "b1, b2 -> ctrl; b3, b4 -> DrugA" in f.message
    assert "'~ Drug'" in f.fix
    issues = ex.coefficients.set_index("column")["issue"]
    assert issues["Drug[DrugA]"] == "not estimable: a linear combination of Batch[b3], Batch[b4]"
    assert issues["Batch[b2]"] == ""
    # findings() on the raw obs reports the same without raising
    assert codes(findings(adata.obs, "~ Batch + Drug", {"Drug": "ctrl"}), "error") == ["confounded"]


def test_aliased_factors():
    adata = make({"Batch": ["b1"] * 3 + ["b2"] * 3, "Drug": ["ctrl"] * 3 + ["DrugA"] * 3})
    f = only(findings(adata.obs, "~ Batch + Drug", {"Drug": "ctrl"}), "confounded")
    assert "Batch and Drug split the samples into the same groups" in f.message
    assert "Keep only one of them" in f.fix


# --------------------------------------------------------------------------------------------------
# ~ Patient + Visit + Drug (crossover: each patient gets ctrl and DrugA, in either order)


def test_patient_visit_drug():
    patients = [f"P{i}" for i in range(1, 7) for _ in range(2)]
    drug = ["ctrl", "DrugA"] * 3 + ["DrugA", "ctrl"] * 3
    adata = make({"Patient": patients, "Visit": ["v1", "v2"] * 6, "Drug": drug})
    ex = explain_design(adata, "~ Patient + Visit + Drug", reference={"Drug": "ctrl"})
    assert meaning(ex, "Drug[DrugA]") == (
        "log2 fold change of DrugA vs ctrl (reference level of Drug), with Patient and Visit held fixed "
        "(a within-Patient comparison)"
    )
    assert meaning(ex, "Visit[v2]") == (
        "log2 fold change of v2 vs v1 (reference level of Visit), with Patient and Drug held fixed "
        "(a within-Patient comparison)"
    )
    assert meaning(ex, "Patient[P2]") == (
        "log2 fold change of P2 vs P1 (reference level of Patient), with Visit and Drug held fixed"
    )
    assert ex.residual_df == 12 - 8 and ex.ok
    assert ex.findings == []
    assert_tests_resolve(ex, factor_levels(ex))


def test_patient_nested_in_drug_parallel_groups():
    # each patient receives one drug: Patient and Drug cannot both be in the design
    patients = [f"P{i}" for i in range(1, 5) for _ in range(2)]
    adata = make({"Patient": patients, "Visit": ["v1", "v2"] * 4, "Drug": ["ctrl"] * 4 + ["DrugA"] * 4})
    ex = explain_design(adata, "~ Patient + Visit + Drug", reference={"Drug": "ctrl"})
    f = only(ex.findings, "confounded")
    assert "Patient is nested in Drug" in f.message
    assert "'~ Visit + Drug'" in f.fix and "Drug:Patient_n" in f.fix


def test_few_residual_df():
    patients = [f"P{i}" for i in range(1, 5) for _ in range(2)]
    drug = ["ctrl", "DrugA", "ctrl", "DrugA", "DrugA", "ctrl", "DrugA", "ctrl"]
    adata = make({"Patient": patients, "Visit": ["v1", "v2"] * 4, "Drug": drug})
    ex = explain_design(adata, "~ Patient + Visit + Drug", reference={"Drug": "ctrl"})
    assert ex.residual_df == 2
    f = only(ex.findings, "few-residual-df")
    assert f.severity == "warning" and "Only 2 residual degrees of freedom" in f.message
    assert "Monte-Carlo" in f.message
    three = make({"Drug": ["ctrl"] * 2 + ["DrugA"] * 3})
    f = only(findings(three.obs, "~ Drug", {"Drug": "ctrl"}), "few-residual-df")
    assert f.severity == "info"


def test_no_residual_df():
    adata = make({"Drug": ["ctrl", "DrugA", "DrugB"]})
    ex = explain_design(adata, "~ Drug", reference={"Drug": "ctrl"})
    assert ex.residual_df == 0
    f = only(ex.findings, "no-residual-df")
    assert f.severity == "error" and "3 coefficients for 3 samples" in f.message


# --------------------------------------------------------------------------------------------------
# ~ Time


def test_time_as_factor():
    adata = make({"Time": ["day00", "day02", "day04", "day06"] * 3})
    ex = explain_design(adata, "~ Time")
    assert list(ex.coefficients["column"]) == ["Intercept", "Time[day02]", "Time[day04]", "Time[day06]"]
    assert meaning(ex, "Time[day04]") == "log2 fold change of day04 vs day00 (reference level of Time)"
    assert contrast_for(ex, "Time[day06]") == ("Time", "day06", "day00")
    assert ex.findings == []


def test_time_as_numeric():
    adata = make({"Time": [0, 2, 4, 6] * 3})
    ex = explain_design(adata, "~ Time")
    assert list(ex.coefficients["column"]) == ["Intercept", "Time"]
    assert meaning(ex, "Time") == "change in log2 expression per 1 unit of Time"
    assert meaning(ex, "Intercept") == "mean log2 expression at Time = 0: the baseline"
    assert contrast_for(ex, "Time") == "Time"
    assert ex.numeric.to_dict("records") == [
        {"variable": "Time", "min": 0.0, "max": 6.0, "mean": 3.0, "n_distinct": 4}
    ]
    f = only(ex.findings, "numeric-looks-like-groups")
    assert f.severity == "warning"
    assert "4 distinct values (0, 2, 4, 6)" in f.message and "slope" in f.message
    assert "pd.Categorical(adata.obs['Time'])" in f.fix
    # numeric 1..5 with repeats, and integer patient ids
    assert "numeric-looks-like-groups" in codes(findings(make({"Time": [1, 2, 3, 4, 5] * 2}).obs, "~ Time"))
    ids = make({"patient_id": [1, 1, 2, 2, 3, 3, 4, 4], "Drug": ["ctrl", "DrugA"] * 4})
    f = only(findings(ids.obs, "~ patient_id + Drug", {"Drug": "ctrl"}), "numeric-looks-like-groups")
    assert "looks like an identifier" in f.message
    # a continuous covariate is not flagged
    assert findings(make({"x": np.linspace(-1, 1, 8)}).obs, "~ x") == []


def test_time_treatment_interaction():
    adata = make({"Time": ["day00", "day02", "day04"] * 4, "Treatment": ["untreated"] * 6 + ["treated"] * 6})
    ex = explain_design(adata, "~ Time * Treatment", reference={"Treatment": "untreated"})
    assert list(ex.coefficients["column"]) == [
        "Intercept", "Time[day02]", "Time[day04]", "Treatment[treated]",
        "Time[day02]:Treatment[treated]", "Time[day04]:Treatment[treated]",
    ]
    assert meaning(ex, "Treatment[treated]") == (
        "log2 fold change of treated vs untreated (reference level of Treatment), at Time day00 (reference)"
    )
    assert meaning(ex, "Time[day02]") == (
        "log2 fold change of day02 vs day00 (reference level of Time), at Treatment untreated (reference)"
    )
    assert meaning(ex, "Time[day04]:Treatment[treated]") == (
        "extra effect of Treatment treated (vs untreated) at Time day04 (vs day00), beyond the Time and Treatment "
        "main effects (a difference of log2 fold changes)"
    )
    assert contrast_for(ex, "Time[day04]:Treatment[treated]") == "Time[day04]:Treatment[treated]"
    f = only(ex.findings, "interaction")
    assert "at Time day00 (the reference) only" in f.message
    assert "'Treatment[treated] + Time[day04]:Treatment[treated]'" in f.fix
    levels = factor_levels(ex)
    assert_tests_resolve(ex, levels)
    vec, _, _ = resolve_contrast("Treatment[treated] + Time[day04]:Treatment[treated]", list(ex.design_matrix), levels)
    assert vec.tolist() == [0, 0, 0, 1, 0, 1]


def test_interaction_with_empty_cell():
    adata = make({
        "Time": ["day00"] * 4 + ["day02"] * 4 + ["day04"] * 2,
        "Treatment": ["untreated", "untreated", "treated", "treated"] * 2 + ["untreated"] * 2,
    })
    ex = explain_design(adata, "~ Time * Treatment", reference={"Treatment": "untreated"})
    f = only(ex.findings, "empty-cell")
    assert f.severity == "error"
    assert "'Time[day04]:Treatment[treated]' is all zeros: no sample has Time day04 and Treatment treated" in f.message
    assert "'~ group'" in f.fix and "'~ Time + Treatment'" in f.fix
    issue = ex.coefficients.set_index("column").loc["Time[day04]:Treatment[treated]", "issue"]
    assert issue.startswith("not estimable: all zeros")
    assert ex.rank == 5 and ex.residual_df == 5


def test_column_named_like_a_formulaic_transform():
    # 'Treatment' is also a formulaic contrast name; it must still be read from .obs
    adata = make({"Treatment": ["ctrl"] * 3 + ["A"] * 3 + ["B"] * 3 + ["A_B"] * 3})
    ex = explain_design(adata, "~ Treatment", reference={"Treatment": "ctrl"})
    assert list(ex.coefficients["column"]) == ["Intercept", "Treatment[A]", "Treatment[A_B]", "Treatment[B]"]
    assert contrast_for(ex, "Treatment[A_B]") == ("Treatment", "A_B", "ctrl")
    assert build_design(adata.obs, "~ Treatment", {"Treatment": "ctrl"}).columns == list(ex.design_matrix)


# --------------------------------------------------------------------------------------------------
# 0 + Drug


def test_no_intercept():
    adata = make({"Drug": ["ctrl"] * 3 + ["DrugA"] * 3 + ["DrugB"] * 3})
    for formula in ("~ 0 + Drug", "~ Drug - 1"):
        ex = explain_design(adata, formula)
        assert list(ex.coefficients["column"]) == ["Drug[DrugA]", "Drug[DrugB]", "Drug[ctrl]"]
        assert meaning(ex, "Drug[ctrl]") == "mean log2 expression of Drug ctrl samples (a level mean, not a difference)"
        assert ex.coefficients["test_with"].isna().all()
        assert not ex.factors["is_reference"].any()
        assert codes(ex.findings) == ["no-intercept"]
        f = ex.findings[0]
        assert "not differences" in f.message
        assert "('Drug', 'DrugA', 'ctrl')" in f.fix and "'Drug[DrugA] - Drug[ctrl]'" in f.fix
        vec, _, _ = resolve_contrast(("Drug", "DrugA", "ctrl"), list(ex.design_matrix), factor_levels(ex))
        assert vec.tolist() == [1, 0, -1]


# --------------------------------------------------------------------------------------------------
# numeric covariates


def test_age_far_from_zero():
    adata = make({"Drug": ["ctrl"] * 4 + ["DrugA"] * 4, "age": [45, 52, 61, 70, 48, 55, 63, 72]})
    ex = explain_design(adata, "~ age + Drug", reference={"Drug": "ctrl"})
    assert meaning(ex, "age") == "change in log2 expression per 1 unit of age, with Drug held fixed"
    assert meaning(ex, "Drug[DrugA]") == (
        "log2 fold change of DrugA vs ctrl (reference level of Drug), with age held fixed"
    )
    assert meaning(ex, "Intercept").endswith("at age = 0: the baseline")
    f = only(ex.findings, "numeric-far-from-zero")
    assert f.severity == "info" and "ranges from 45 to 72" in f.message
    assert "adata.obs['age_c'] = adata.obs['age'] - adata.obs['age'].mean()" in f.fix
    # with an interaction, the Drug main effect is at age 0: a warning
    ex = explain_design(adata, "~ Drug * age", reference={"Drug": "ctrl"})
    f = only(ex.findings, "numeric-far-from-zero")
    assert f.severity == "warning" and "main effects of Drug" in f.message
    assert meaning(ex, "Drug[DrugA]") == "log2 fold change of DrugA vs ctrl (reference level of Drug), at age = 0"
    assert meaning(ex, "Drug[DrugA]:age") == (
        "difference in the age slope between Drug DrugA and ctrl: extra change in log2 expression per 1 unit of "
        "age for DrugA, beyond the age main effect"
    )
    assert contrast_for(ex, "Drug[DrugA]:age") == "Drug[DrugA]:age"


def test_numeric_scales():
    rng = np.random.default_rng(1)
    adata = make({"age": rng.normal(0, 10, 8), "libsize": rng.normal(0, 1e6, 8)})
    f = only(findings(adata.obs, "~ age + libsize"), "numeric-scales")
    assert f.severity == "info" and "'libsize'" in f.message and "'age'" in f.message
    assert "Standardise" in f.fix


# --------------------------------------------------------------------------------------------------
# levels and groups


def test_single_sample_level():
    adata = make({"Drug": ["ctrl"] * 3 + ["DrugA"] * 3 + ["DrugB"]})
    ex = explain_design(adata, "~ Drug", reference={"Drug": "ctrl"})
    f = only(ex.findings, "single-sample-level")
    assert f.severity == "warning"
    assert "Level 'DrugB' of 'Drug' has a single sample ('s7')" in f.message
    assert "adata[adata.obs['Drug'] != 'DrugB']" in f.fix
    assert ex.factors.set_index("level").loc["DrugB", "n_samples"] == 1


def test_single_level_factor():
    adata = make({"Batch": ["b1"] * 6, "Drug": ["ctrl"] * 3 + ["DrugA"] * 3})
    f = only(findings(adata.obs, "~ Batch + Drug", {"Drug": "ctrl"}), "single-level-factor")
    assert f.severity == "warning" and "'~ Drug'" in f.fix


def test_unbalanced():
    adata = make({"Drug": ["ctrl"] * 9 + ["DrugA"] * 3})
    f = only(findings(adata.obs, "~ Drug", {"Drug": "ctrl"}), "unbalanced")
    assert f.severity == "info" and "ctrl 9, DrugA 3" in f.message


def test_missing_values_reported():
    obs = {"Drug": ["ctrl"] * 4 + ["DrugA"] * 4, "age": [40.0, np.nan, 50, 55, 60, 65, 70, 75]}
    adata = make(obs)
    ex = explain_design(adata, "~ age + Drug", reference={"Drug": "ctrl"})
    f = only(ex.findings, "missing-values")
    assert f.severity == "error" and "'age'" in f.message and "'s2'" in f.message
    assert "notna()" in f.fix
    assert ex.n_samples == 7 and "s2" not in ex.design_matrix.index
    assert not ex.ok


# --------------------------------------------------------------------------------------------------
# errors that cannot be explained


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("~ Drg", "The design '~ Drg' uses 'Drg' (did you mean 'Drug'?), which is not a column of .obs. "
                  "Available columns: 'Drug', 'Batch', 'age'."),
        ("~ Drug + batch", "uses 'batch' (did you mean 'Batch'?)"),
        ("~ Drug +", "Cannot parse the design formula '~ Drug +'"),
        ("~ Drug + (Batch", "Cannot parse the design formula '~ Drug + (Batch'"),
        ("~ foo(Drug)", "'foo' in the design '~ foo(Drug)' is neither a function"),
        ("y ~ Drug", "has a left-hand side"),
    ],
)
def test_formula_errors_are_one_line(formula, expected):
    adata = make({"Drug": ["ctrl", "DrugA"] * 2, "Batch": ["b1", "b1", "b2", "b2"], "age": [30.0, 40, 50, 60]})
    with pytest.raises(DesignFormulaError) as info:
        explain_design(adata, formula)
    msg = str(info.value)
    assert expected in msg
    assert "\n" not in msg and "\x1b" not in msg
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)
    with pytest.raises(DesignFormulaError):
        findings(adata.obs, formula)


def test_bad_reference():
    adata = make({"Drug": ["ctrl", "DrugA"] * 2})
    with pytest.raises(ValueError, match="Reference level 'placebo' is not a level of 'Drug'"):
        explain_design(adata, "~ Drug", reference={"Drug": "placebo"})
    with pytest.raises(KeyError, match="Dose"):
        explain_design(adata, "~ Drug", reference={"Dose": "x"})


# --------------------------------------------------------------------------------------------------
# the object


def test_repr_and_html():
    adata = make({"Drug": ["ctrl"] * 3 + ["DrugA"] * 3 + ["DrugB"], "age": [45, 52, 61, 70, 48, 55, 63]})
    ex = explain_design(adata, "~ age + Drug", reference={"Drug": "ctrl"})
    text = repr(ex)
    assert text.startswith("Design ~ age + Drug: 7 samples, 4 coefficients, residual df 3")
    for part in ("Coefficients", "test with: ('Drug', 'DrugA', 'ctrl')", "Factors", "ctrl (reference) n=3",
                 "Numeric covariates", "Findings", "[warning] single-sample-level", "fix: "):
        assert part in text
    page = ex._repr_html_()
    assert "<table" in page and "#d35400" in page and "#2471a3" in page
    assert "single-sample-level" in page and "&#x27;Drug&#x27;" in page


def test_repr_rank_deficient():
    adata = make({"Batch": ["b1"] * 3 + ["b2"] * 3, "Drug": ["ctrl"] * 3 + ["DrugA"] * 3})
    ex = explain_design(adata, "~ Batch + Drug", reference={"Drug": "ctrl"})
    text = repr(ex)
    assert "3 coefficients (2 estimable)" in text and "ISSUE: not estimable" in text and "[error] confounded" in text
    assert "#c0392b" in ex._repr_html_()


def test_writes_nothing_and_accepts_obs():
    adata = make({"Drug": ["ctrl"] * 3 + ["DrugA"] * 3})
    before = adata.obs.copy()
    ex = explain_design(adata, "~ Drug", reference={"Drug": "ctrl"})
    pd.testing.assert_frame_equal(adata.obs, before)
    assert dict(adata.uns) == {} and list(adata.layers) == [] and list(adata.varm) == []
    ex2 = explain_design(adata.obs, "~ Drug", reference={"Drug": "ctrl"})
    pd.testing.assert_frame_equal(ex.coefficients, ex2.coefficients)
    with pytest.raises(TypeError):
        explain_design([1, 2], "~ Drug")


def test_matches_build_design():
    adata = make({"Batch": ["b1", "b2", "b3"] * 4, "Drug": ["ctrl", "DrugA"] * 6, "age": np.arange(12.0)})
    for formula in ("~ Batch + Drug", "~ Drug * age", "~ 0 + Drug + Batch", "~ Batch:Drug"):
        ex = explain_design(adata, formula, reference={"Drug": "ctrl"})
        design = build_design(adata.obs, formula, reference={"Drug": "ctrl"})
        assert list(ex.design_matrix.columns) == design.columns
        np.testing.assert_array_equal(ex.design_matrix.to_numpy(), design.matrix)
        assert ex.residual_df == design.n_samples - design.n_coefs
        assert_tests_resolve(ex, design.factors)
    ex = explain_design(adata, "~ 0 + Drug + Batch", reference={"Drug": "ctrl"})
    assert meaning(ex, "Drug[ctrl]") == (
        "mean log2 expression of Drug ctrl samples (a level mean, not a difference), at Batch b1 (reference)"
    )
    assert meaning(ex, "Batch[b2]") == "log2 fold change of b2 vs b1 (reference level of Batch), with Drug held fixed"
    assert contrast_for(ex, "Batch[b2]") == "Batch[b2]"


# --------------------------------------------------------------------------------------------------
# check_design: how tl.fit uses the findings


def test_check_design_raises_on_errors():
    adata = make({"Batch": ["b1"] * 3 + ["b2"] * 3, "Drug": ["ctrl"] * 3 + ["DrugA"] * 3})
    with pytest.raises(DesignError, match="cannot be fit: .*Fix: ") as info:
        check_design(adata.obs, "~ Batch + Drug", {"Drug": "ctrl"})
    assert "confounded" in codes(info.value.findings)


def test_check_design_warns_once():
    adata = make({"Drug": ["ctrl"] * 3 + ["DrugA"] * 3 + ["DrugB"]})
    seen: set = set()
    with pytest.warns(DesignWarning, match="single sample .* Fix: Add replicates") as record:
        check_design(adata.obs, "~ Drug", {"Drug": "ctrl"}, seen=seen)
        check_design(adata.obs, "~ Drug", {"Drug": "ctrl"}, seen=seen)
    assert len(record) == 1
    # info findings are not warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = check_design(make({"Drug": ["ctrl"] * 9 + ["DrugA"] * 3}).obs, "~ Drug", {"Drug": "ctrl"})
    assert codes(found) == ["unbalanced"]
