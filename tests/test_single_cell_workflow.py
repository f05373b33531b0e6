"""Tutorial-sized end to end: cells -> pseudobulk -> filters -> per-cell-type fit -> results,
and the false discovery rate on simulated data with known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pbglm as pb


@pytest.fixture(scope="module")
def cells():
    return pb.datasets.simulate_single_cell(n_donors=8, n_cell_types=3, n_genes=1500, seed=1)


@pytest.mark.parametrize("method", ["edger", "deseq2"])
def test_cells_to_per_type_results(cells, method):
    pbulk = pb.pp.pseudobulk(cells, "donor", "cell_type", layer="counts", min_cells=10, min_counts=1000)
    assert pbulk.n_obs == 24
    assert list(pbulk.obs["condition"].cat.categories) == ["ctrl", "stim"]
    pb.pp.filter_samples(pbulk, min_cells=10)
    if method == "edger":
        pb.pp.filter_by_expr(pbulk, group="cell_type")
    pb.tl.fit(pbulk, "~ condition", groupby="cell_type", method=method)
    pb.tl.test(pbulk, ("condition", "stim", "ctrl"))
    res = pb.get.results(pbulk, "condition_stim_vs_ctrl")
    assert set(res["group"]) == {"ct0", "ct1", "ct2"}
    assert {"gene", "group", "log2fc", "pvalue", "padj"} <= set(res.columns)

    # false discovery proportion among genes called at 10% FDR, and power, against the truth
    truth = cells.varm["true_log2fc"]
    fdp, power = [], []
    for ct, sub in res.groupby("group", observed=True):
        called = sub.loc[sub["padj"] < 0.1, "gene"]
        de = truth.loc[sub["gene"], ct] != 0
        de.index = sub["gene"].to_numpy()
        fdp.append((~de.loc[called]).mean() if len(called) else 0.0)
        power.append(de.loc[called].sum() / max(de.sum(), 1))
    assert 0.0 <= np.mean(fdp) <= 0.12, fdp
    assert np.mean(power) > 0.3, power


def test_pseudobulk_counts_feed_fit_unchanged(cells):
    pbulk = pb.pp.pseudobulk(cells, "donor", "cell_type", layer="counts")
    manual = pd.DataFrame(cells.layers["counts"].toarray(), columns=cells.var_names)
    manual["key"] = cells.obs["donor"].astype(str).to_numpy() + "_" + cells.obs["cell_type"].astype(str).to_numpy()
    sums = manual.groupby("key").sum()
    np.testing.assert_array_equal(np.asarray(pbulk.X), sums.loc[pbulk.obs_names].to_numpy())


def test_sample_mixing_conditions_is_named(cells):
    c = cells.copy()
    c.obs["condition"] = c.obs["condition"].astype(str)
    first = c.obs_names[(c.obs["donor"] == "donor0").to_numpy()][0]
    c.obs.loc[first, "condition"] = "stim"  # donor0 is ctrl: one of its cells now says stim
    pbulk = pb.pp.pseudobulk(c, "donor", "cell_type", layer="counts")
    assert "condition" not in pbulk.obs
    with pytest.raises(ValueError, match=r"not constant within pseudobulk samples.*donor0_ct0"):
        pb.tl.fit(pbulk, "~ condition")
