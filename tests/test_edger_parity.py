"""pbglm's edgeR method against R edgeR 3.40.2 (legacy glmQLFit; tables in tests/reference/out).

Acceptance bars (issue: tests and edgeR-QL): TMM factors equal to 1e-6 relative; filterByExpr
keeps exactly the same genes; common/trended/tagwise dispersions within 2% (median); F
statistics within 1% (median); p-values Spearman >= 0.999; FDR < 0.1 sets Jaccard >= 0.97;
glmTreat p-values within 2% relative (median).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("pbglm_parity_cases", Path(__file__).parent / "reference" / "parity.py")
PARITY = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(PARITY)

CASES = [c for c in PARITY.CASES if (PARITY.OUT / f"edger_{c}_genes.csv.gz").exists()]
TESTS = PARITY.edger_tests()


@pytest.mark.parametrize("case", CASES)
def test_normalisation_filter_dispersions(case):
    m = PARITY.edger_fit_metrics(case)
    assert m["tmm_max_rel"] < 1e-6
    assert m["filter_mismatches"] == 0
    for key in ("common_rel", "trended_rel", "tagwise_rel", "s2_post_rel"):
        assert m[key] < 0.02, key


@pytest.mark.parametrize(("case", "test"), TESTS)
def test_results_match_edger(case, test):
    m = PARITY.edger_test_metrics(case, test)
    assert m["pvalue_spearman"] >= 0.999
    assert m["jaccard"] >= 0.97 or (abs(m["n_sig"] - m["n_sig_ref"]) <= 1 and max(m["n_sig"], m["n_sig_ref"]) < 30)
    if "stat_median_rel" in m:
        assert m["stat_median_rel"] < 0.01
    spec = next(t for t in PARITY.CASES[case]["edger"] if t["name"] == test)
    if spec.get("kind") == "treat":
        assert m["pvalue_median_rel"] < 0.02
