"""``pl.heatmap``: the top genes of a test by samples, z-scored per gene, with annotation bars."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .._renamed_keyword import renamed_keyword
from ..tl._sample_matrix import sample_matrix
from ._docs import shared_docs
from ._sample_annotations import (
    annotation_list,
    draw_annotation_bars,
    legend_beside_labels,
    levels_of,
    obs_column,
)
from ._utils import finish, gene_labels, new_axes, resolve_genes, test_table


def top_genes(table: pd.DataFrame, n_top: int) -> list:
    """The ``n_top`` genes of a test table by adjusted p-value, then p-value (NaN last)."""
    order = table.assign(_padj=table["padj"].astype(float) if "padj" in table else np.nan,
                         _p=table["pvalue"].astype(float))
    order = order.sort_values(["_padj", "_p"], na_position="last", kind="stable")
    order = order[np.isfinite(order["_p"].to_numpy())]
    return list(order.index[:n_top])


def sample_order(adata: AnnData, columns: list[str]) -> np.ndarray:
    """Samples sorted by the levels of the annotation columns (stable: ties keep adata's order)."""
    if not columns:
        return np.arange(adata.n_obs)
    keys = []
    for col in reversed(columns):
        values = obs_column(adata, col, argname="annotate")
        if isinstance(values.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(values):
            rank = {str(v): i for i, v in enumerate(levels_of(values))}
            keys.append(np.array([rank.get(str(v), len(rank)) for v in values], dtype=float))
        else:
            keys.append(values.to_numpy(dtype=float))
    return np.lexsort(keys)


@shared_docs
@renamed_keyword("key_added", "key")
def heatmap(
    adata: AnnData,
    test: str | None = None,
    *,
    n_top: int = 30,
    genes: Sequence[str] | None = None,
    layer: str | None = "vst",
    annotate: str | Sequence[str] | None = None,
    z_score: bool = True,
    cluster_genes: bool = True,
    key: str = "pbglm",
    group: str | None = None,
    gene_symbols: str | None = None,
    cmap: str | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
) -> Axes | Figure:
    """Heatmap of the top genes of a test (or given genes) across samples.

    Rows are genes (the ``n_top`` smallest adjusted p-values of ``test``, or ``genes``), columns
    samples ordered by the ``annotate`` columns, with colour bars for them above. Values come from
    a transformed layer; with ``z_score`` each gene is centred and scaled to unit standard
    deviation (pheatmap's ``scale = "row"``), so the pattern across samples shows whatever the
    gene's level.

    Parameters
    ----------
    adata
        Samples x genes AnnData with a stored test and a transformed layer.
    test
        Name of the stored test (may be omitted when only one is stored, or when ``genes`` is given).
    n_top
        Number of top genes.
    genes
        Genes to show instead of the top genes (var names, or ``gene_symbols`` labels).
    layer
        Layer with the values (:func:`pbglm.pp.vst` writes ``"vst"``); ``None``: ``adata.X``.
    annotate
        ``.obs`` column(s): colour bars above the samples and the sample order.
    z_score
        Scale each gene to mean 0 and standard deviation 1 (else the layer's values).
    cluster_genes
        Order the genes by hierarchical clustering (complete linkage) instead of by rank.
    key
        Key of the fit.
    group
        For per-group fits: the group whose test table ranks the genes.
    gene_symbols
        ``.var`` column with the labels to show for the genes.
    cmap
        Colormap (a diverging one centred at 0 by default with ``z_score``).
    {ax_return}
    """
    from scipy.cluster import hierarchy

    if isinstance(n_top, bool) or not isinstance(n_top, Integral) or n_top < 1:
        raise ValueError(f"n_top must be a positive integer, got {n_top!r}.")
    columns = annotation_list(annotate)
    labels = gene_labels(adata, gene_symbols)
    if genes is not None:
        chosen = resolve_genes(adata.var_names, genes, labels)
        title = ""
    else:
        table, test, grp = test_table(adata, test, key, group)
        chosen = top_genes(table, int(n_top))
        if not chosen:
            raise ValueError(f"Test {test!r} has no gene with a p-value to rank.")
        title = test if grp is None else f"{test} ({grp})"
    values = sample_matrix(adata[:, chosen], layer, caller="pl.heatmap").T  # genes x samples
    if z_score:
        sd = values.std(axis=1, ddof=1, keepdims=True)
        values = np.where(sd > 0, (values - values.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0), 0.0)
    rows = np.arange(len(chosen))
    if cluster_genes and len(chosen) > 2:
        rows = np.asarray(hierarchy.leaves_list(hierarchy.linkage(values, method="complete")))
    cols = sample_order(adata, columns)
    mat = values[np.ix_(rows, cols)]
    n_genes, m = mat.shape
    ax = new_axes(ax, (max(4.5, 0.28 * m + 3.0), max(3.0, 0.2 * n_genes + 1.6)))
    if z_score:
        lim = max(float(np.abs(mat).max()), 1e-12)
        im = ax.imshow(mat, cmap=cmap or "RdBu_r", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
    else:
        im = ax.imshow(mat, cmap=cmap or "viridis", aspect="auto", interpolation="nearest")
    ax.set_xticks(np.arange(m), adata.obs_names.astype(str)[cols], rotation=90, fontsize=7)
    shown = labels.loc[[chosen[i] for i in rows]].to_numpy()
    ax.set_yticks(np.arange(n_genes), shown, fontsize=7)
    ax.yaxis.tick_right()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    handles = draw_annotation_bars(ax, adata, columns, cols, side="top")
    cbar = ax.figure.colorbar(im, ax=ax, location="bottom", shrink=0.5, pad=0.02, aspect=25)
    cbar.set_label("z-score" if z_score else ("value" if layer is None else layer), fontsize=8)
    if handles:
        legend_beside_labels(ax, handles, fontsize=7)
    if title:
        ax.set_title(title, pad=4 + 11 * len(columns), fontsize=9)
    return finish(ax, return_fig)
