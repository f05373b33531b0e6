"""pbglm takes scanpy's and decoupler's pseudobulks as they come (issue 14, item 4).

``sc.get.aggregate(cells, by=[...], func="sum", layer="counts")`` leaves ``X`` empty and the sums
in ``layers["sum"]``; scanpy >= 1.12 counts the cells per row in ``obs["n_obs_aggregated"]``;
decoupler writes ``psbulk_cells`` / ``psbulk_counts`` (decoupler 1: ``psbulk_n_cells``).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import pytest

import pbglm as pb

sc = pytest.importorskip("scanpy")


@pytest.fixture(scope="module")
def cells():
    return pb.datasets.simulate_single_cell(n_donors=6, n_cell_types=2, n_genes=300, seed=3)


def _aggregate(cells, func="sum"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # scanpy's own deprecations, not ours
        bulk = sc.get.aggregate(cells, by=["donor", "condition", "cell_type"], func=func, layer="counts")
    if "n_obs_aggregated" not in bulk.obs:  # scanpy < 1.12: add the column scanpy 1.12 writes
        sizes = cells.obs.groupby(["donor", "condition", "cell_type"], observed=True).size()
        bulk.obs["n_obs_aggregated"] = [
            int(sizes[(r.donor, r.condition, r.cell_type)]) for r in bulk.obs.itertuples()
        ]
    return bulk


def test_fit_finds_the_sum_layer(cells, caplog):
    bulk = _aggregate(cells)
    assert bulk.X is None and list(bulk.layers) == ["sum"]
    one = bulk[bulk.obs["cell_type"] == "ct0"].copy()
    with caplog.at_level(logging.INFO, logger="pbglm"):
        pb.tl.fit(one, "~ condition")
    assert "adata.layers['sum']" in caplog.text
    pb.tl.test(one, ("condition", "stim", "ctrl"))
    explicit = one.copy()
    pb.tl.fit(explicit, "~ condition", layer="sum")
    pb.tl.test(explicit, ("condition", "stim", "ctrl"))
    got = pb.get.results(one, "condition_stim_vs_ctrl")
    want = pb.get.results(explicit, "condition_stim_vs_ctrl")
    pd.testing.assert_frame_equal(got, want)
    assert got["padj"].notna().sum() > 100
    # a layer of replaced outlier counts that tl.fit wrote is not a second candidate
    one.layers["pbglm_replaced_counts"] = one.layers["sum"].copy()
    one.uns["pbglm"]["replaced_counts_layer"] = "pbglm_replaced_counts"
    pb.tl.fit(one, "~ condition")


def test_fit_per_cell_type_on_aggregate(cells):
    bulk = _aggregate(cells)
    pb.tl.fit(bulk, "~ condition", groupby="cell_type")
    pb.tl.test(bulk, ("condition", "stim", "ctrl"))
    assert set(bulk.uns["pbglm"]["groups"]) == {"ct0", "ct1"}


def test_several_integer_layers_are_named(cells):
    bulk = _aggregate(cells, func=["sum", "count_nonzero", "mean"])
    with pytest.raises(ValueError, match=r"several layers hold integer values \('sum', 'count_nonzero'\)"):
        pb.tl.fit(bulk, "~ condition + cell_type")


def test_no_count_layer_is_explained(cells):
    bulk = _aggregate(cells, func="mean")
    with pytest.raises(ValueError, match=r"no layer holds raw integer counts \(layers: 'mean'\).*func='sum'"):
        pb.tl.fit(bulk, "~ condition + cell_type")


def test_missing_layer_lists_layers(cells):
    bulk = _aggregate(cells)
    with pytest.raises(KeyError, match=r"Layer 'counts' not found; available layers: 'sum'"):
        pb.tl.fit(bulk, "~ condition + cell_type", layer="counts")


def test_filter_samples_reads_scanpy_columns(cells):
    bulk = _aggregate(cells)
    n_cells = bulk.obs["n_obs_aggregated"].to_numpy()
    totals = bulk.layers["sum"].sum(axis=1)
    cut_cells = np.sort(n_cells)[3]
    kept = pb.pp.filter_samples(bulk, min_cells=cut_cells, inplace=False)
    assert kept.n_obs == int((n_cells >= cut_cells).sum()) < bulk.n_obs
    cut_counts = np.sort(totals)[2]
    kept = pb.pp.filter_samples(bulk, min_counts=cut_counts, inplace=False)
    assert list(kept.obs_names) == list(bulk.obs_names[totals >= cut_counts])


@pytest.mark.parametrize("cells_col", ["psbulk_cells", "psbulk_n_cells"])
def test_filter_samples_reads_decoupler_columns(cells, cells_col):
    bulk = _aggregate(cells)
    bulk.obs = bulk.obs.drop(columns="n_obs_aggregated")
    rng = np.random.default_rng(0)
    bulk.obs[cells_col] = rng.integers(5, 50, bulk.n_obs)
    bulk.obs["psbulk_counts"] = rng.integers(1000, 5000, bulk.n_obs)
    kept = pb.pp.filter_samples(bulk, min_cells=20, min_counts=2500, inplace=False)
    want = (bulk.obs[cells_col] >= 20) & (bulk.obs["psbulk_counts"] >= 2500)
    assert list(kept.obs_names) == list(bulk.obs_names[want.to_numpy()])


def test_filter_samples_without_cell_counts(cells):
    bulk = _aggregate(cells)
    bulk.obs = bulk.obs.drop(columns="n_obs_aggregated")
    with pytest.raises(KeyError, match="n_obs_aggregated"):
        pb.pp.filter_samples(bulk, min_cells=10)
