"""Tests for :func:`pbglm.pp.filter_samples` and :func:`pbglm.pp.filter_by_prop`."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import pbglm


@pytest.fixture
def pb() -> ad.AnnData:
    rng = np.random.default_rng(0)
    n_cells = 400
    x = rng.poisson(rng.gamma(0.5, 2.0, size=25), size=(n_cells, 25)).astype(np.float32)
    x[:, 0] = 0  # a gene expressed nowhere
    obs = pd.DataFrame(
        {
            "donor": pd.Categorical(rng.choice(["a", "b", "c", "d"], n_cells, p=[0.4, 0.3, 0.25, 0.05])),
            "cell_type": pd.Categorical(rng.choice(["T", "B"], n_cells, p=[0.8, 0.2])),
        },
        index=[f"c{i}" for i in range(n_cells)],
    )
    cells = ad.AnnData(x, obs=obs)
    return pbglm.pp.pseudobulk(cells, "donor", "cell_type", min_cells=0, min_counts=0, fraction_expressing=True)


# --------------------------------------------------------------------------------------------------------------------
# filter_samples
# --------------------------------------------------------------------------------------------------------------------


def test_filter_samples_min_cells_inplace(pb, caplog):
    expected = pb.obs_names[pb.obs["n_cells"] >= 20]
    assert 0 < len(expected) < pb.n_obs
    x_expected = pb[expected].X.copy()
    with caplog.at_level(logging.INFO, logger="pbglm"):
        res = pbglm.pp.filter_samples(pb, min_cells=20)
    assert res is None
    assert list(pb.obs_names) == list(expected)
    np.testing.assert_array_equal(pb.X, x_expected)
    assert pb.layers["fraction_expressing"].shape == pb.shape
    assert "filter_samples: dropped" in caplog.text


def test_filter_samples_min_counts_copy(pb):
    threshold = float(np.median(pb.obs["total_counts"]))
    n_before = pb.n_obs
    res = pbglm.pp.filter_samples(pb, min_counts=threshold, inplace=False)
    assert pb.n_obs == n_before  # untouched
    assert isinstance(res, ad.AnnData)
    assert (res.obs["total_counts"] >= threshold).all()
    assert res.n_obs == int((pb.obs["total_counts"] >= threshold).sum())


def test_filter_samples_total_counts_from_x(pb):
    del pb.obs["total_counts"]
    threshold = float(np.median(pb.X.sum(axis=1)))
    res = pbglm.pp.filter_samples(pb, min_counts=threshold, inplace=False)
    assert (res.X.sum(axis=1) >= threshold).all()
    assert res.n_obs == int((pb.X.sum(axis=1) >= threshold).sum())
    pb.X = sparse.csr_matrix(pb.X)
    res_sparse = pbglm.pp.filter_samples(pb, min_counts=threshold, inplace=False)
    assert list(res_sparse.obs_names) == list(res.obs_names)


def test_filter_samples_both(pb):
    mask = (pb.obs["n_cells"] >= 10).to_numpy() & (pb.obs["total_counts"] >= 500).to_numpy()
    res = pbglm.pp.filter_samples(pb, min_cells=10, min_counts=500, inplace=False)
    assert list(res.obs_names) == list(pb.obs_names[mask])


def test_filter_samples_nothing_to_do(pb):
    before = pb.copy()
    pbglm.pp.filter_samples(pb)
    assert pb.shape == before.shape


def test_filter_samples_missing_n_cells(pb):
    del pb.obs["n_cells"]
    with pytest.raises(KeyError, match=r"n_cells.*pbglm.pp.pseudobulk"):
        pbglm.pp.filter_samples(pb, min_cells=5)


def test_filter_samples_all_dropped(pb):
    n_before = pb.n_obs
    with pytest.raises(ValueError, match="lower the thresholds"):
        pbglm.pp.filter_samples(pb, min_cells=10**6)
    assert pb.n_obs == n_before


@pytest.mark.parametrize("kwargs", [{"min_cells": -1}, {"min_counts": "10"}, {"min_cells": [1]}])
def test_filter_samples_bad_threshold(pb, kwargs):
    with pytest.raises(ValueError, match="non-negative number"):
        pbglm.pp.filter_samples(pb, **kwargs)


# --------------------------------------------------------------------------------------------------------------------
# filter_by_prop
# --------------------------------------------------------------------------------------------------------------------


def _expected_genes(pb, min_prop, min_samples):
    props = pb.layers["fraction_expressing"]
    return pb.var_names[(props >= min_prop).sum(axis=0) >= min_samples]


@pytest.mark.parametrize(("min_prop", "min_samples"), [(0.1, 2), (0.3, 3), (0.0, 0), (0.5, 1)])
def test_filter_by_prop_inplace(pb, min_prop, min_samples, caplog):
    expected = _expected_genes(pb, min_prop, min_samples)
    x_expected = pb[:, expected].X.copy()
    with caplog.at_level(logging.INFO, logger="pbglm"):
        res = pbglm.pp.filter_by_prop(pb, min_prop=min_prop, min_samples=min_samples)
    assert res is None
    assert list(pb.var_names) == list(expected)
    np.testing.assert_array_equal(pb.X, x_expected)
    assert "filter_by_prop: removed" in caplog.text


def test_filter_by_prop_removes_unexpressed_gene(pb):
    res = pbglm.pp.filter_by_prop(pb, inplace=False)
    assert "0" not in res.var_names
    assert "0" in pb.var_names  # untouched copy semantics
    assert 0 < res.n_vars < pb.n_vars


def test_filter_by_prop_sparse_layer(pb):
    expected = _expected_genes(pb, 0.2, 2)
    pb.layers["fraction_expressing"] = sparse.csr_matrix(pb.layers["fraction_expressing"])
    res = pbglm.pp.filter_by_prop(pb, min_prop=0.2, min_samples=2, inplace=False)
    assert list(res.var_names) == list(expected)


def test_filter_by_prop_other_layer(pb):
    pb.layers["props"] = pb.layers.pop("fraction_expressing")
    res = pbglm.pp.filter_by_prop(pb, layer="props", inplace=False)
    assert res.n_vars > 0


def test_filter_by_prop_missing_layer(pb):
    del pb.layers["fraction_expressing"]
    with pytest.raises(KeyError, match=r"fraction_expressing=True"):
        pbglm.pp.filter_by_prop(pb)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_prop": 1.5}, "min_prop"),
        ({"min_prop": -0.1}, "min_prop"),
        ({"min_samples": -1}, "min_samples"),
        ({"min_samples": 1.5}, "min_samples"),
    ],
)
def test_filter_by_prop_bad_arguments(pb, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pbglm.pp.filter_by_prop(pb, **kwargs)
