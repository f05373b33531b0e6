"""One model per group (cell type): side-by-side storage, equality with separate fits, dask."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import pbglm as pb


def _pseudobulk_like(seed=0, n_genes=150):
    rng = np.random.default_rng(seed)
    rows = []
    for ct in ["B", "T", "NK"]:
        for d in range(6):
            rows.append({"cell_type": ct, "donor": f"d{d}", "condition": "stim" if d % 2 else "ctrl"})
    obs = pd.DataFrame(rows)
    obs.index = [f"{r.donor}_{r.cell_type}" for r in obs.itertuples()]
    obs["condition"] = pd.Categorical(obs["condition"], categories=["ctrl", "stim"])
    obs["cell_type"] = pd.Categorical(obs["cell_type"], categories=["B", "T", "NK"])
    base = np.exp(rng.normal(4, 1.5, n_genes))
    effect = np.where(rng.random(n_genes) < 0.2, rng.normal(0, 1.5, n_genes), 0)
    stim = (obs["condition"] == "stim").to_numpy()
    mu = base[None, :] * np.exp(np.outer(stim, effect)) * rng.uniform(0.6, 1.6, len(obs))[:, None]
    r = 10.0
    X = rng.negative_binomial(r, r / (r + mu))
    return ad.AnnData(X=X.astype(np.int64), obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]))


@pytest.fixture(scope="module")
def grouped():
    a = _pseudobulk_like()
    pb.tl.fit(a, "~ condition", groupby="cell_type")
    pb.tl.test(a, ("condition", "stim", "ctrl"))
    return a


def test_each_group_equals_a_separate_fit(grouped):
    long = pb.get.results(grouped, "condition_stim_vs_ctrl")
    assert list(long["group"].cat.categories) == ["B", "T", "NK"]
    assert len(long) == 3 * grouped.n_vars
    for ct in ["B", "T", "NK"]:
        sub = _pseudobulk_like()
        sub = sub[sub.obs["cell_type"] == ct].copy()
        pb.tl.fit(sub, "~ condition")
        pb.tl.test(sub, ("condition", "stim", "ctrl"))
        alone = pb.get.results(sub, "condition_stim_vs_ctrl")
        mine = long[long["group"] == ct].set_index("gene")[alone.columns]
        mine.index.name = None
        pd.testing.assert_frame_equal(mine, alone)
        np.testing.assert_allclose(grouped.obs.loc[sub.obs_names, "pbglm_size_factor"], sub.obs["pbglm_size_factor"])


def test_grouped_results_survive_h5ad(grouped, tmp_path):
    grouped.write_h5ad(tmp_path / "g.h5ad")
    b = ad.read_h5ad(tmp_path / "g.h5ad")
    pd.testing.assert_frame_equal(pb.get.results(b, "condition_stim_vs_ctrl"),
                                  pb.get.results(grouped, "condition_stim_vs_ctrl"))


def test_group_that_cannot_be_fit_is_skipped_with_reason():
    a = _pseudobulk_like(1)
    keep = ~((a.obs["cell_type"] == "NK") & (a.obs["condition"] == "stim"))
    a = a[keep.to_numpy()].copy()
    with pytest.warns(UserWarning, match="NK"):
        pb.tl.fit(a, "~ condition", groupby="cell_type")
    assert "NK" in a.uns["pbglm"]["skipped"]
    assert set(a.uns["pbglm"]["groups"]) == {"B", "T"}
    pb.tl.test(a, ("condition", "stim", "ctrl"))
    assert set(pb.get.results(a, "condition_stim_vs_ctrl")["group"]) == {"B", "T"}


def test_groupby_missing_column():
    with pytest.raises(KeyError, match="groupby='celltype'"):
        pb.tl.fit(_pseudobulk_like(), "~ condition", groupby="celltype")


def test_dask_client_gives_identical_results(grouped):
    distributed = pytest.importorskip("distributed")
    a = _pseudobulk_like()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as lc:
        with distributed.Client(lc) as client:
            pb.tl.fit(a, "~ condition", groupby="cell_type", client=client)
    pb.tl.test(a, ("condition", "stim", "ctrl"))
    pd.testing.assert_frame_equal(pb.get.results(a, "condition_stim_vs_ctrl"),
                                  pb.get.results(grouped, "condition_stim_vs_ctrl"))


def test_gene_chunks_on_dask_client_equal_in_process():
    distributed = pytest.importorskip("distributed")
    a = pb.datasets.pasilla()
    ref = a.copy()
    pb.tl.fit(ref, "~ type + condition")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as lc:
        with distributed.Client(lc) as client:
            pb.tl.fit(a, "~ type + condition", client=client, gene_chunks=4)
    pd.testing.assert_frame_equal(a.varm["pbglm_coef"], ref.varm["pbglm_coef"])
    pd.testing.assert_frame_equal(a.var, ref.var)
    pb.tl.test(a, ("condition", "treated", "untreated"))
    pb.tl.test(ref, ("condition", "treated", "untreated"))
    pd.testing.assert_frame_equal(pb.get.results(a, "condition_treated_vs_untreated"),
                                  pb.get.results(ref, "condition_treated_vs_untreated"))
