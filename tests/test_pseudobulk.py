"""Tests for :func:`pbglm.pp.pseudobulk` and its numba kernels."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import pbglm
from pbglm._kernels import aggregate as agg

DONORS = ["d3", "d1", "d2", "d0"]  # deliberately not sorted
TYPES = ["T", "B", "NK"]


def _make_adata(n_cells: int = 600, n_genes: int = 30, seed: int = 0) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    donor = rng.integers(0, len(DONORS), n_cells)
    ctype = rng.integers(0, len(TYPES), n_cells)
    x = rng.poisson(rng.gamma(0.6, 2.0, size=n_genes), size=(n_cells, n_genes)).astype(np.float32)
    obs = pd.DataFrame(
        {
            # an unused category ("d9") that must be kept in the output dtype
            "donor": pd.Categorical.from_codes(donor, DONORS + ["d9"]),
            "cell_type": pd.Categorical.from_codes(ctype, TYPES),
            # sample level, with a non-alphabetical category order
            "condition": pd.Categorical.from_codes(donor % 2, ["stim", "ctrl"]),
            "batch": np.array(["b1", "b1", "b2", "b2"], dtype=object)[donor],
            "age": np.array([31, 45, 52, 60])[donor],
            # group level
            "lineage": np.array(["lymphoid", "lymphoid", "innate"], dtype=object)[ctype],
            # cell level: must be dropped
            "qc": rng.normal(size=n_cells),
            "phase": pd.Categorical(rng.choice(["G1", "S", "G2M"], n_cells)),
        },
        index=pd.Index([f"cell{i}" for i in range(n_cells)]),
    )
    var = pd.DataFrame({"symbol": [f"G{j}" for j in range(n_genes)]}, index=[f"gene{j}" for j in range(n_genes)])
    return ad.AnnData(x, obs=obs, var=var)


def _reference(adata: ad.AnnData, sample_key: str, groups_key: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Plain-numpy sums and fractions of expressing cells, indexed by ``"{sample}_{group}"``."""
    x = np.asarray(adata.X.toarray() if sparse.issparse(adata.X) else adata.X)
    s_levels = list(adata.obs[sample_key].cat.categories)
    g_levels = [None] if groups_key is None else list(adata.obs[groups_key].cat.categories)
    sums, fracs, names = [], [], []
    for s in s_levels:
        for g in g_levels:
            mask = (adata.obs[sample_key] == s).to_numpy()
            if g is not None:
                mask &= (adata.obs[groups_key] == g).to_numpy()
            if not mask.any():
                continue
            names.append(s if g is None else f"{s}_{g}")
            sums.append(x[mask].sum(axis=0, dtype=np.float64))
            fracs.append((x[mask] > 0).mean(axis=0))
    cols = adata.var_names
    return (
        pd.DataFrame(np.array(sums), index=names, columns=cols),
        pd.DataFrame(np.array(fracs), index=names, columns=cols),
    )


def _to_format(x: np.ndarray, fmt: str):
    if fmt == "dense":
        return x
    if fmt == "dense_f":
        return np.asfortranarray(x)
    if fmt == "dense_int64":
        return x.astype(np.int64)
    if fmt == "csr":
        return sparse.csr_matrix(x)
    if fmt == "csr_array":
        return sparse.csr_array(x)
    if fmt == "csc":
        return sparse.csc_matrix(x)
    if fmt == "csc_array":
        return sparse.csc_array(x)
    da = pytest.importorskip("dask.array")
    if fmt == "dask_dense":
        return da.from_array(x, chunks=(128, 12))
    if fmt == "dask_csr":
        return da.from_array(x, chunks=(100, -1)).map_blocks(sparse.csr_matrix, dtype=x.dtype)
    if fmt == "dask_csc":
        return da.from_array(x, chunks=(150, 16)).map_blocks(sparse.csc_matrix, dtype=x.dtype)
    raise AssertionError(fmt)


FORMATS = [
    "dense",
    "dense_f",
    "dense_int64",
    "csr",
    "csr_array",
    "csc",
    "csc_array",
    "dask_dense",
    "dask_csr",
    "dask_csc",
]


@pytest.fixture(scope="module")
def adata() -> ad.AnnData:
    return _make_adata()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("groups_key", ["cell_type", None])
def test_sums_match_numpy(adata, fmt, groups_key):
    a = adata.copy()
    a.X = _to_format(adata.X, fmt)
    pb = pbglm.pp.pseudobulk(a, "donor", groups_key, min_cells=0, min_counts=0, fraction_expressing=True)
    ref, ref_frac = _reference(adata, "donor", groups_key)
    assert list(pb.obs_names) == list(ref.index)
    assert isinstance(pb.X, np.ndarray)
    assert pb.X.dtype == np.int64
    np.testing.assert_array_equal(pb.X, ref.to_numpy())
    np.testing.assert_allclose(pb.layers["fraction_expressing"], ref_frac.to_numpy(), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(pb.obs["total_counts"].to_numpy(), ref.to_numpy().sum(axis=1))
    pd.testing.assert_frame_equal(pb.var, adata.var)


@pytest.mark.parametrize("fmt", ["dense", "csr", "csc", "dask_dense", "dask_csr"])
def test_sums_match_scanpy(adata, fmt):
    sc = pytest.importorskip("scanpy")
    a = adata.copy()
    a.X = _to_format(adata.X, fmt)
    pb = pbglm.pp.pseudobulk(a, "donor", "cell_type", min_cells=0, min_counts=0)
    expected = sc.get.aggregate(adata, by=["donor", "cell_type"], func="sum")
    expected_sum = pd.DataFrame(np.asarray(expected.layers["sum"]), index=expected.obs_names)
    assert set(expected_sum.index) == set(pb.obs_names)
    np.testing.assert_array_equal(pb.X, expected_sum.loc[pb.obs_names].to_numpy())


def test_sums_exact_for_large_counts():
    # sums above 2**24 are not exact in float32; pbglm accumulates in int64
    rng = np.random.default_rng(1)
    x = rng.integers(2**24, 2**24 + 1000, size=(50, 4)).astype(np.float64)
    obs = pd.DataFrame({"s": pd.Categorical(np.repeat(["a", "b"], 25))}, index=[str(i) for i in range(50)])
    a = ad.AnnData(sparse.csr_matrix(x), obs=obs)
    pb = pbglm.pp.pseudobulk(a, "s", min_cells=0, min_counts=0)
    expected = np.stack([x[:25].astype(np.int64).sum(0), x[25:].astype(np.int64).sum(0)])
    np.testing.assert_array_equal(pb.X, expected)


@pytest.mark.parametrize("n_jobs", [1, 2, None])
def test_n_jobs_same_result(adata, n_jobs):
    a = adata.copy()
    a.X = sparse.csr_matrix(adata.X)
    pb = pbglm.pp.pseudobulk(a, "donor", "cell_type", min_cells=0, min_counts=0, n_jobs=n_jobs)
    ref, _ = _reference(adata, "donor", "cell_type")
    np.testing.assert_array_equal(pb.X, ref.to_numpy())


@pytest.mark.parametrize("n_chunks", [1, 3, 7, 40])
def test_csr_kernel_any_chunking(adata, n_chunks):
    # more chunks than pseudobulks, chunks inside one pseudobulk, empty chunks: the boundary buffers must add up
    x = sparse.csr_matrix(adata.X)
    codes = adata.obs["cell_type"].cat.codes.to_numpy().astype(np.int64)
    codes[::17] = -1  # left-out cells
    order = np.argsort(codes, kind="stable")
    order = order[codes[order] >= 0]
    ocodes = codes[order]
    starts = np.unique(np.linspace(0, order.size, n_chunks + 1).astype(np.int64))
    starts = np.concatenate([[0, 0], starts[1:]])  # an empty first chunk
    out = np.zeros((3, x.shape[1]), dtype=np.int64)
    counts = np.zeros((3, x.shape[1]), dtype=np.int64)
    flag = agg.sum_csr_rows_parallel(x.indptr, x.indices, x.data, order, ocodes, starts, out, counts, True)
    assert flag == 0
    dense = x.toarray()
    for g in range(3):
        np.testing.assert_array_equal(out[g], dense[codes == g].sum(0))
        np.testing.assert_array_equal(counts[g], (dense[codes == g] > 0).sum(0))
    out_d = np.zeros_like(out)
    counts_d = np.zeros((3, 0), dtype=np.int64)
    flag = agg.sum_dense_rows_parallel(dense, order, ocodes, starts, out_d, counts_d, False)
    assert flag == 0
    np.testing.assert_array_equal(out_d, out)


def test_obs_propagation(adata):
    pb = pbglm.pp.pseudobulk(adata, "donor", "cell_type", min_cells=0, min_counts=0)
    obs = pb.obs
    expected_columns = ["donor", "cell_type", "condition", "batch", "age", "lineage", "n_cells", "total_counts"]
    assert list(obs.columns) == expected_columns
    # categoricals keep their dtype, category order and unused categories
    assert obs["donor"].dtype == adata.obs["donor"].dtype
    assert list(obs["donor"].cat.categories) == DONORS + ["d9"]
    assert list(obs["condition"].cat.categories) == ["stim", "ctrl"]
    assert obs["cell_type"].dtype == adata.obs["cell_type"].dtype
    assert obs["age"].dtype == adata.obs["age"].dtype
    # sample-major order, following the category order
    expected_names = [f"{d}_{t}" for d in DONORS for t in TYPES]
    assert list(pb.obs_names) == expected_names
    first = adata.obs.drop_duplicates(["donor", "cell_type"]).set_index(["donor", "cell_type"], drop=False)
    for name, row in obs.iterrows():
        d, t = name.split("_")
        assert row["donor"] == d and row["cell_type"] == t
        cell = first.loc[(d, t)]
        for col in ["condition", "batch", "age", "lineage"]:
            assert row[col] == cell[col]
    n_cells = adata.obs.groupby(["donor", "cell_type"], observed=True).size()
    np.testing.assert_array_equal(obs["n_cells"].to_numpy(), [n_cells[(d, t)] for d in DONORS for t in TYPES])
    assert obs["n_cells"].dtype == np.int64


def test_obs_propagation_without_groups(adata):
    pb = pbglm.pp.pseudobulk(adata, "donor", min_cells=0, min_counts=0)
    assert list(pb.obs_names) == DONORS
    # lineage varies within a donor: dropped; sample-level columns kept
    assert list(pb.obs.columns) == ["donor", "condition", "batch", "age", "n_cells", "total_counts"]
    assert pb.uns["pseudobulk"]["groups_key"] is None


def test_column_with_mixed_missing_values_is_dropped(adata):
    a = adata.copy()
    a.obs["note"] = a.obs["batch"].astype(object)
    a.obs.iloc[0, a.obs.columns.get_loc("note")] = np.nan
    a.obs["all_missing"] = np.nan
    pb = pbglm.pp.pseudobulk(a, "donor", "cell_type", min_cells=0, min_counts=0)
    assert "note" not in pb.obs.columns
    assert "all_missing" in pb.obs.columns  # constant (missing) everywhere
    assert pb.obs["all_missing"].isna().all()


def test_non_categorical_keys_sorted(adata):
    a = adata.copy()
    a.obs["donor"] = a.obs["donor"].astype(str)
    a.obs["cell_type"] = a.obs["cell_type"].astype(str)
    pb = pbglm.pp.pseudobulk(a, "donor", "cell_type", min_cells=0, min_counts=0)
    assert list(pb.obs_names) == [f"{d}_{t}" for d in sorted(DONORS) for t in sorted(TYPES)]
    ref, _ = _reference(adata, "donor", "cell_type")
    np.testing.assert_array_equal(pb.X, ref.loc[pb.obs_names].to_numpy())


def test_missing_key_values_are_left_out(adata, caplog):
    a = adata.copy()
    a.obs["donor"] = a.obs["donor"].astype(object)
    a.obs.iloc[:10, a.obs.columns.get_loc("donor")] = np.nan
    with caplog.at_level(logging.INFO, logger="pbglm"):
        pb = pbglm.pp.pseudobulk(a, "donor", "cell_type", min_cells=0, min_counts=0)
    assert "10 cells with a missing" in caplog.text
    assert pb.obs["n_cells"].sum() == adata.n_obs - 10


def test_min_cells_min_counts_drop_and_log(adata, caplog):
    a = adata.copy()
    # make d0 x NK tiny: keep only 3 of its cells
    is_small = ((a.obs["donor"] == "d0") & (a.obs["cell_type"] == "NK")).to_numpy()
    keep = ~is_small
    keep[np.flatnonzero(is_small)[:3]] = True
    a = a[keep].copy()
    full = pbglm.pp.pseudobulk(a, "donor", "cell_type", min_cells=0, min_counts=0)
    threshold = int(np.sort(full.obs["total_counts"].to_numpy())[1])  # drops the smallest by counts
    with caplog.at_level(logging.INFO, logger="pbglm"):
        pb = pbglm.pp.pseudobulk(a, "donor", "cell_type", min_cells=5, min_counts=0)
    assert "d0_NK" not in pb.obs_names
    assert pb.n_obs == full.n_obs - 1
    assert "dropped 1 of 12" in caplog.text and "d0_NK" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pbglm"):
        pb = pbglm.pp.pseudobulk(a, "donor", "cell_type", min_cells=0, min_counts=threshold)
    assert (pb.obs["total_counts"] >= threshold).all()
    assert pb.n_obs == (full.obs["total_counts"] >= threshold).sum()
    assert "dropped" in caplog.text
    np.testing.assert_array_equal(pb.X, full[pb.obs_names].X)


def test_defaults_drop_small_pseudobulks(adata, caplog):
    # default min_counts=1000 drops every pseudobulk here except the largest ones
    full = pbglm.pp.pseudobulk(adata, "donor", "cell_type", min_cells=0, min_counts=0)
    n_expected = int(((full.obs["n_cells"] >= 10) & (full.obs["total_counts"] >= 1000)).sum())
    assert 0 < n_expected
    if n_expected == full.n_obs:
        pb = pbglm.pp.pseudobulk(adata, "donor", "cell_type")
    else:
        with caplog.at_level(logging.INFO, logger="pbglm"):
            pb = pbglm.pp.pseudobulk(adata, "donor", "cell_type")
        assert "dropped" in caplog.text
    assert pb.n_obs == n_expected


def test_fraction_expressing_absent_by_default(adata):
    pb = pbglm.pp.pseudobulk(adata, "donor", "cell_type", min_cells=0, min_counts=0)
    assert "fraction_expressing" not in pb.layers


def test_layer(adata):
    a = adata.copy()
    a.layers["counts"] = sparse.csr_matrix(adata.X)
    a.X = np.log1p(adata.X)
    pb = pbglm.pp.pseudobulk(a, "donor", "cell_type", layer="counts", min_cells=0, min_counts=0)
    ref, _ = _reference(adata, "donor", "cell_type")
    np.testing.assert_array_equal(pb.X, ref.to_numpy())
    assert pb.uns["pseudobulk"]["layer"] == "counts"


# --------------------------------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------------------------------


def test_missing_sample_key(adata):
    with pytest.raises(KeyError, match=r"sample_key='donorx'.*available columns.*'donor'"):
        pbglm.pp.pseudobulk(adata, "donorx")


def test_missing_groups_key(adata):
    with pytest.raises(KeyError, match=r"groups_key='celltype'.*available columns.*'cell_type'"):
        pbglm.pp.pseudobulk(adata, "donor", "celltype")


def test_same_keys(adata):
    with pytest.raises(ValueError, match="groups_key and sample_key"):
        pbglm.pp.pseudobulk(adata, "donor", "donor")


def test_missing_layer(adata):
    with pytest.raises(KeyError, match=r"layer='counts'.*adata.layers"):
        pbglm.pp.pseudobulk(adata, "donor", layer="counts")


@pytest.mark.parametrize("fmt", ["dense", "csr", "csc", "dense_f", "dask_dense", "dask_csr"])
def test_non_integer_counts(adata, fmt):
    a = adata.copy()
    a.X = _to_format(np.log1p(adata.X), fmt)
    with pytest.raises(ValueError, match=r"not whole numbers.*layer='counts'"):
        pbglm.pp.pseudobulk(a, "donor", "cell_type", min_cells=0, min_counts=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, 0.5])
def test_non_finite_or_fractional_counts(adata, bad):
    a = adata.copy()
    x = adata.X.copy()
    x[5, 3] = bad
    a.layers["raw"] = sparse.csr_matrix(x)
    with pytest.raises(ValueError, match=r"adata.layers\['raw'\] contains values that are not whole numbers"):
        pbglm.pp.pseudobulk(a, "donor", layer="raw", min_cells=0, min_counts=0)


@pytest.mark.parametrize("fmt", ["dense", "csr", "csc", "dense_f", "dask_csr"])
def test_negative_counts(adata, fmt):
    a = adata.copy()
    x = adata.X.copy()
    x[7, 2] = -3
    a.X = _to_format(x, fmt)
    with pytest.raises(ValueError, match="negative values"):
        pbglm.pp.pseudobulk(a, "donor", "cell_type", min_cells=0, min_counts=0)


def test_group_without_pseudobulk_after_filtering_warns(adata, caplog):
    a = adata.copy()
    is_nk = (a.obs["cell_type"] == "NK").to_numpy()
    keep = ~is_nk
    keep[np.flatnonzero(is_nk)[:8]] = True  # 8 NK cells spread over the donors
    a = a[keep].copy()
    with caplog.at_level(logging.INFO, logger="pbglm"), pytest.warns(UserWarning, match=r"cell_type=\['NK'\]"):
        pb = pbglm.pp.pseudobulk(a, "donor", "cell_type", min_cells=10, min_counts=0)
    assert not (pb.obs["cell_type"] == "NK").any()
    assert "NK" in caplog.text


def test_all_dropped(adata):
    with pytest.raises(ValueError, match="lower min_cells / min_counts"):
        pbglm.pp.pseudobulk(adata, "donor", "cell_type", min_cells=10_000)


@pytest.mark.parametrize(("kwargs", "match"), [({"min_cells": -1}, "min_cells"), ({"min_counts": "5"}, "min_counts")])
def test_bad_thresholds(adata, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pbglm.pp.pseudobulk(adata, "donor", **kwargs)


def test_bad_n_jobs(adata):
    with pytest.raises(ValueError, match="n_jobs"):
        pbglm.pp.pseudobulk(adata, "donor", min_cells=0, min_counts=0, n_jobs=0)


def test_x_none():
    a = ad.AnnData(obs=pd.DataFrame({"s": ["a", "b"]}, index=["0", "1"]))
    with pytest.raises(ValueError, match="adata.X is None"):
        pbglm.pp.pseudobulk(a, "s")
