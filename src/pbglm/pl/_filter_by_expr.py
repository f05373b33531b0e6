"""``pl.filter_by_expr``: expression of the genes edgeR's filterByExpr keeps and drops."""

from __future__ import annotations

import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .._io import read_counts
from .._numerics.ave_log_cpm import ave_log_cpm
from ..pp._filter_by_expr import filter_by_expr as _filter_by_expr
from ._docs import shared_docs
from ._utils import DOWN, NS, finish, fmt_count, legend_outside, new_axes


@shared_docs
def filter_by_expr(
    adata: AnnData,
    design=None,
    *,
    group: str | None = None,
    layer: str | None = None,
    min_count: float = 10,
    min_total_count: float = 15,
    large_n: float = 10,
    min_prop: float = 0.7,
    bins: int = 60,
    ax: Axes | None = None,
    return_fig: bool = False,
) -> Axes | Figure:
    """Average log-CPM of the genes :func:`pbglm.pp.filter_by_expr` keeps and of those it drops.

    The filter is evaluated with the same arguments (``adata`` is not changed); the histogram of
    edgeR's average log2 CPM (``aveLogCPM``) of kept and dropped genes shows where it cuts. The
    dashed line is ``min_count`` in a library of median size, in CPM: the level a gene must
    reach in enough samples.

    Parameters
    ----------
    adata
        Samples x genes AnnData with raw counts.
    design, group, layer, min_count, min_total_count, large_n, min_prop
        As for :func:`pbglm.pp.filter_by_expr`.
    bins
        Number of histogram bins.
    {ax_return}
    """
    if not isinstance(adata, AnnData):
        raise TypeError(f"Expected an AnnData, got {type(adata).__name__}.")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}.")
    keep = _filter_by_expr(adata, design, group=group, layer=layer, min_count=min_count,
                           min_total_count=min_total_count, large_n=large_n, min_prop=min_prop, inplace=False)
    counts = read_counts(adata, layer)
    lib = counts.sum(axis=0)
    if np.any(lib <= 0):
        raise ValueError("Some samples have no counts; drop them before filtering genes.")
    nonzero = counts.sum(axis=1) > 0
    alc = ave_log_cpm(counts[nonzero], lib)
    kept = keep[nonzero]
    ax = new_axes(ax, (5.4, 3.6))
    edges = np.linspace(alc.min(), alc.max(), bins + 1)
    ax.hist([alc[kept], alc[~kept]], bins=edges, stacked=True, color=[DOWN, NS],
            label=[f"kept ({fmt_count(int(kept.sum()))})", f"dropped ({fmt_count(int((~kept).sum()))})"],
            edgecolor="white", linewidth=0.3)
    cutoff = np.log2(min_count / np.median(lib) * 1e6)
    ax.axvline(cutoff, color="#222222", ls="--", lw=1)
    ax.annotate(f"{min_count} counts in the\nmedian library ({2**cutoff:.2g} CPM)", (cutoff, 1.0),
                xycoords=("data", "axes fraction"), xytext=(4, -4), textcoords="offset points", va="top", fontsize=7)
    ax.set_xlabel("average log$_2$ CPM")
    ax.set_ylabel("genes")
    if (~nonzero).any():
        ax.set_title(f"{fmt_count(int((~nonzero).sum()))} genes without counts not shown", fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    legend_outside(ax)
    return finish(ax, return_fig)
