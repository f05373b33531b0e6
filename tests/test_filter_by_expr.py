"""pp.filter_by_expr against R's filterByExpr (the keep vectors of tests/reference/out)."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import pbglm as pb
from pbglm._numerics.filter_by_expr import filter_by_expr_mask

OUT = Path(__file__).parent / "reference" / "out"


def _r_keep(case: str) -> pd.Series:
    path = OUT / f"edger_{case}_genes.csv.gz"
    if not path.exists():
        pytest.skip(f"no R reference table {path.name}")
    return pd.read_csv(path, index_col=0)["keep"]


@pytest.mark.parametrize("array_type", ["dense", "csr", "csc"])
def test_airway_formula_matches_r(array_type):
    a = pb.datasets.airway()
    keep_r = _r_keep("airway").loc[a.var_names]
    if array_type != "dense":
        a.X = getattr(sparse, f"{array_type}_matrix")(a.X)
    mask = pb.pp.filter_by_expr(a, "~ cell + dex", inplace=False)
    assert mask.dtype == bool and mask.shape == (a.n_vars,)
    np.testing.assert_array_equal(mask, keep_r.to_numpy())
    assert a.n_vars == 64102  # not subset with inplace=False


def test_airway_inplace_subsets_genes_and_layers():
    a = pb.datasets.airway()
    a.layers["counts"] = a.X.copy()
    a.X = np.zeros(a.shape)  # the layer holds the counts
    keep_r = _r_keep("airway").loc[a.var_names]
    assert pb.pp.filter_by_expr(a, "~ cell + dex", layer="counts") is None
    assert a.n_vars == int(keep_r.sum())
    assert list(a.var_names) == list(keep_r.index[keep_r])
    assert a.layers["counts"].shape == a.shape


def test_pasilla_design_matrix_and_formula_agree():
    a = pb.datasets.pasilla()
    keep_r = _r_keep("pasilla").loc[a.var_names].to_numpy()
    X = np.column_stack([np.ones(a.n_obs), a.obs["type"] == "single-read", a.obs["condition"] == "treated"]).astype(
        float
    )
    np.testing.assert_array_equal(pb.pp.filter_by_expr(a, X, inplace=False), keep_r)
    np.testing.assert_array_equal(pb.pp.filter_by_expr(a, "~ type + condition", inplace=False), keep_r)


def test_group_uses_the_smallest_group_size():
    rng = np.random.default_rng(0)
    counts = rng.poisson(rng.gamma(0.5, 40, size=(1, 300)), size=(9, 300))
    obs = pd.DataFrame({"g": ["a"] * 3 + ["b"] * 6}, index=[f"s{i}" for i in range(9)])
    a = ad.AnnData(X=counts, obs=obs)
    mask = pb.pp.filter_by_expr(a, group="g", inplace=False)
    lib = counts.sum(axis=1)
    cutoff = 10 / np.median(lib) * 1e6
    cpm = counts * (1e6 / lib)[:, None]  # edgeR's arithmetic, so boundary cases agree
    expected = ((cpm >= cutoff).sum(axis=0) >= 3) & (counts.sum(axis=0) >= 15)
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(mask, filter_by_expr_mask(counts.T, group=obs["g"].to_numpy()))


def test_no_design_and_large_n_rule():
    rng = np.random.default_rng(1)
    counts = rng.poisson(5, size=(30, 50))
    a = ad.AnnData(X=counts)
    mask = pb.pp.filter_by_expr(a, inplace=False, min_count=5)
    lib = counts.sum(axis=1)
    cpm = counts * (1e6 / lib)[:, None]
    n_min = 10 + (30 - 10) * 0.7  # all samples in one group, above large_n
    expected = ((cpm >= 5 / np.median(lib) * 1e6).sum(axis=0) >= n_min - 1e-14) & (counts.sum(axis=0) >= 15)
    np.testing.assert_array_equal(mask, expected)


def test_errors_name_the_problem():
    a = pb.datasets.pasilla()
    with pytest.raises(KeyError, match="group"):
        pb.pp.filter_by_expr(a, group="nope")
    with pytest.raises(ValueError, match="design"):
        pb.pp.filter_by_expr(a, "~ nope")
    with pytest.raises(ValueError, match="rows"):
        pb.pp.filter_by_expr(a, np.ones((3, 1)))
    with pytest.raises(ValueError, match="min_prop"):
        pb.pp.filter_by_expr(a, min_prop=2)
    b = a.copy()
    b.X = b.X.astype(float) / 3
    with pytest.raises(ValueError, match="non-integer"):
        pb.pp.filter_by_expr(b)
