"""Sample-level plots (PCA, MDS, sample distances, top-gene heatmap, pseudobulk QC, gene filter):
baseline images in ``tests/_images`` and input errors.

Regenerate the baselines (after an intended change, then look at every PNG) with::

    PBGLM_UPDATE_IMAGES=1 python -m pytest tests/test_sample_plots.py
"""

from __future__ import annotations

import anndata as ad
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import pbglm as pb  # noqa: E402

COND = "condition_treated_vs_untreated"


@pytest.fixture(autouse=True)
def _mpl_state():
    with matplotlib.rc_context():
        matplotlib.style.use("default")
        yield
    plt.close("all")


@pytest.fixture(scope="module")
def pasilla(tmp_path_factory):
    """Pasilla fitted with ``~ type + condition``, tested, with vst / log-CPM layers, PCA and MDS,
    read back from h5ad (every plot must work after the round trip)."""
    p = pb.datasets.pasilla()
    pb.tl.fit(p, "~ type + condition")
    pb.tl.test(p, ("condition", "treated", "untreated"))
    pb.pp.vst(p)
    pb.pp.log_cpm(p)
    pb.tl.pca(p)
    pb.tl.mds(p)
    p.obs["depth"] = np.asarray(p.X).sum(axis=1) / 1e6
    path = tmp_path_factory.mktemp("h5ad") / "pasilla.h5ad"
    p.write_h5ad(path)
    return ad.read_h5ad(path)


@pytest.fixture(scope="module")
def pbulk():
    cells = pb.datasets.simulate_single_cell(n_donors=8, n_cell_types=3, n_genes=800, cells_per_sample=(3, 120),
                                             seed=1)
    return pb.pp.pseudobulk(cells, sample_key="donor", groups_key="cell_type", layer="counts", min_cells=None,
                            min_counts=None)




# ------------------------------------------------------------------------------------------- images


def test_pca(pasilla, check_image):
    ax = pb.pl.pca(pasilla, color="condition", marker="type", labels=True)
    assert ax.get_xlabel().startswith("PC1: ") and ax.get_xlabel().endswith("% variance")
    ratio = pasilla.uns["pbglm_pca"]["variance_ratio"]
    assert f"{100 * ratio[0]:.0f}%" in ax.get_xlabel()
    check_image(ax, "pca")


def test_pca_numeric_colour_other_components(pasilla, check_image):
    ax = pb.pl.pca(pasilla, color="depth", components=(1, 3))
    assert ax.get_ylabel().startswith("PC3")
    check_image(ax, "pca_numeric")


def test_pca_computed_on_demand_equals_stored(pasilla):
    b = pasilla.copy()
    del b.obsm["pbglm_pca"]
    ax1 = pb.pl.pca(b)
    ax2 = pb.pl.pca(pasilla)
    np.testing.assert_allclose(ax1.collections[0].get_offsets(), ax2.collections[0].get_offsets())
    assert "pbglm_pca" not in b.obsm


def test_mds(pasilla, check_image):
    ax = pb.pl.mds(pasilla, color="condition", marker="type")
    assert ax.get_xlabel().startswith("Leading logFC dim 1")
    check_image(ax, "mds")


def test_sample_distances(pasilla, check_image):
    fig = pb.pl.sample_distances(pasilla, annotate=["condition", "type"], return_fig=True)
    check_image(fig, "sample_distances")


def test_heatmap(pasilla, check_image):
    ax = pb.pl.heatmap(pasilla, COND, n_top=20, annotate=["condition", "type"])
    assert len(ax.get_yticklabels()) == 20
    # columns grouped by condition (the first annotation), untreated (reference level) first
    names = [t.get_text() for t in ax.get_xticklabels()]
    assert all(n.startswith("untreated") for n in names[:4])
    check_image(ax, "heatmap")


def test_heatmap_given_genes_no_z_score(pasilla):
    genes = list(pasilla.var_names[:5])
    ax = pb.pl.heatmap(pasilla, genes=genes, z_score=False, cluster_genes=False)
    assert [t.get_text() for t in ax.get_yticklabels()] == genes
    np.testing.assert_allclose(ax.images[0].get_array(), pasilla[:, genes].layers["vst"].T)


def test_pseudobulk_qc(pbulk, check_image):
    ax = pb.pl.pseudobulk_qc(pbulk, min_cells=10, min_counts=5000, groupby="cell_type")
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    keep = (pbulk.obs["n_cells"] >= 10) & (pbulk.obs["total_counts"] >= 5000)
    assert f"kept ({keep.sum()})" in texts and f"dropped ({(~keep).sum()})" in texts
    check_image(ax, "pseudobulk_qc")


def test_pseudobulk_qc_decoupler_columns(pbulk):
    b = pbulk.copy()
    b.obs = b.obs.rename(columns={"n_cells": "psbulk_n_cells", "total_counts": "psbulk_counts"})
    ax = pb.pl.pseudobulk_qc(b, min_cells=10, min_counts=5000)
    np.testing.assert_allclose(np.vstack([c.get_offsets() for c in ax.collections]).shape, (b.n_obs, 2))


def test_filter_by_expr_plot(check_image):
    p = pb.datasets.pasilla()
    ax = pb.pl.filter_by_expr(p, group="condition")
    mask = pb.pp.filter_by_expr(p, group="condition", inplace=False)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"kept ({mask.sum():,})" in texts
    assert p.n_vars == 14599  # not filtered in place
    check_image(ax, "filter_by_expr")


# -------------------------------------------------------------------------------------------- errors


def test_sample_plot_errors(pasilla, pbulk):
    with pytest.raises(KeyError, match="not a column of .obs"):
        pb.pl.pca(pasilla, color="nope")
    with pytest.raises(ValueError, match="components"):
        pb.pl.pca(pasilla, components=(1, 9))
    with pytest.raises(ValueError, match="same component"):
        pb.pl.mds(pasilla, components=(2, 2))
    with pytest.raises(ValueError, match="marker"):
        pb.pl.pca(pasilla, marker="depth")
    with pytest.raises(KeyError, match="pp.rlog"):
        pb.pl.sample_distances(pasilla, layer="rlog")
    with pytest.raises(ValueError, match="linkage"):
        pb.pl.sample_distances(pasilla, linkage="median")
    with pytest.raises(KeyError, match="No test named"):
        pb.pl.heatmap(pasilla, "nope")
    with pytest.raises(KeyError, match="not found in var_names"):
        pb.pl.heatmap(pasilla, genes=["nope"])
    b = pbulk.copy()
    del b.obs["n_cells"]
    with pytest.raises(KeyError, match="n_cells.*psbulk_n_cells.*scanpy.get.aggregate"):
        pb.pl.pseudobulk_qc(b)
    with pytest.raises(ValueError, match="min_cells"):
        pb.pl.pseudobulk_qc(pbulk, min_cells=-1)
    nan = pasilla.copy()
    nan.layers["vst"] = nan.layers["vst"].copy()
    nan.layers["vst"][0, 0] = np.nan
    del nan.obsm["pbglm_pca"]
    with pytest.raises(ValueError, match="NaN"):
        pb.pl.pca(nan)


def test_ax_and_return_fig(pasilla):
    fig, axes = plt.subplots(1, 2)
    assert pb.pl.pca(pasilla, ax=axes[0]) is axes[0]
    assert pb.pl.mds(pasilla, ax=axes[1], return_fig=True) is fig
    assert isinstance(pb.pl.heatmap(pasilla, COND, return_fig=True), Figure)
    assert isinstance(pd.DataFrame(pasilla.obsm["pbglm_mds"]), pd.DataFrame)
