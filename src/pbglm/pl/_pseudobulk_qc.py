"""``pl.pseudobulk_qc``: cells and counts per pseudobulk sample, with the sample filter's thresholds."""

from __future__ import annotations

from numbers import Real

import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy import sparse

from ._docs import shared_docs
from ._sample_annotations import annotation
from ._utils import NS, finish, fmt_count, legend_outside, new_axes, readable_log_ticks

# (cells, total counts) column names: pbglm.pp.pseudobulk, decoupler 1.x / 2.x
N_CELLS_COLUMNS = ("n_cells", "psbulk_n_cells", "psbulk_cells")
TOTAL_COLUMNS = ("total_counts", "psbulk_counts")


def qc_columns(adata: AnnData, n_cells_key: str | None, total_counts_key: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Cells and total counts per sample from ``.obs`` (or the row sums of ``X`` for the totals)."""
    cols = adata.obs.columns
    if n_cells_key is None:
        n_cells_key = next((c for c in N_CELLS_COLUMNS if c in cols), None)
        if n_cells_key is None:
            raise KeyError(
                f"No column with the number of cells per sample in .obs (looked for {list(N_CELLS_COLUMNS)}, written "
                "by pbglm.pp.pseudobulk and decoupler); scanpy.get.aggregate writes none: add one, e.g. "
                "pb.obs['n_cells'] = cells.obs.groupby(keys).size(), or pass n_cells_key=."
            )
    elif n_cells_key not in cols:
        raise KeyError(f"n_cells_key={n_cells_key!r} is not a column of .obs; columns: {list(cols)}.")
    if total_counts_key is None:
        total_counts_key = next((c for c in TOTAL_COLUMNS if c in cols), None)
    elif total_counts_key not in cols:
        raise KeyError(f"total_counts_key={total_counts_key!r} is not a column of .obs; columns: {list(cols)}.")
    n_cells = adata.obs[n_cells_key].to_numpy(dtype=float)
    if total_counts_key is not None:
        total = adata.obs[total_counts_key].to_numpy(dtype=float)
    else:
        if adata.X is None:
            raise ValueError("adata.X is empty and .obs has no total-count column (total_counts / psbulk_counts).")
        X = adata.X
        total = np.asarray(X.sum(axis=1)).ravel() if sparse.issparse(X) else np.asarray(X).sum(axis=1)
    return n_cells, np.asarray(total, dtype=float)


@shared_docs
def pseudobulk_qc(
    adata: AnnData,
    *,
    min_cells: float | None = 10,
    min_counts: float | None = 1000,
    groupby: str | None = None,
    n_cells_key: str | None = None,
    total_counts_key: str | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
) -> Axes | Figure:
    """Cells and total counts of every pseudobulk sample, with the thresholds of the sample filter.

    Each sample is a point (log scales); the dashed lines are ``min_cells`` and ``min_counts`` as
    :func:`pbglm.pp.filter_samples` (and :func:`pbglm.pp.pseudobulk`) apply them, and the samples
    they would drop are drawn as crosses, so the effect of a filter is seen before it is run.

    Parameters
    ----------
    adata
        Pseudobulk samples x genes: from :func:`pbglm.pp.pseudobulk` (``.obs['n_cells']``,
        ``.obs['total_counts']``) or decoupler (``psbulk_n_cells`` / ``psbulk_cells``,
        ``psbulk_counts``); without a total-count column the row sums of ``X`` are used.
    min_cells
        Minimum number of cells (``None``: no threshold).
    min_counts
        Minimum total count (``None``: no threshold).
    groupby
        ``.obs`` column colouring the samples (e.g. the cell type).
    n_cells_key, total_counts_key
        ``.obs`` columns to read instead of the ones looked for.
    {ax_return}
    """
    if not isinstance(adata, AnnData):
        raise TypeError(f"Expected an AnnData, got {type(adata).__name__}.")
    for name, value in (("min_cells", min_cells), ("min_counts", min_counts)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, Real) or value < 0):
            raise ValueError(f"{name} must be a non-negative number or None, got {value!r}.")
    n_cells, total = qc_columns(adata, n_cells_key, total_counts_key)
    keep = np.ones(adata.n_obs, dtype=bool)
    if min_cells is not None:
        keep &= n_cells >= min_cells
    if min_counts is not None:
        keep &= total >= min_counts
    ax = new_axes(ax, (5.4, 4.2))
    if groupby is None:
        colors = np.tile(np.array([[0.0, 0.447, 0.698, 1.0]]), (adata.n_obs, 1))
        levels = None
    else:
        ann = annotation(adata, groupby, argname="groupby")
        colors, levels = ann.colors, ann.levels
    x = np.maximum(n_cells, 0.8)  # zero cells / counts on a log axis: at its bottom
    y = np.maximum(total, 0.8)
    ax.scatter(x[keep], y[keep], c=colors[keep], s=28, edgecolors="white", linewidths=0.5, zorder=3)
    ax.scatter(x[~keep], y[~keep], c=colors[~keep], s=30, marker="x", linewidths=1.2, zorder=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    if min_cells is not None:
        ax.axvline(max(min_cells, 0.8), color=NS, ls="--", lw=1, zorder=1)
    if min_counts is not None:
        ax.axhline(max(min_counts, 0.8), color=NS, ls="--", lw=1, zorder=1)
    readable_log_ticks(ax.xaxis)
    readable_log_ticks(ax.yaxis)
    ax.set_xlabel("cells per sample")
    ax.set_ylabel("total counts per sample")
    ax.spines[["top", "right"]].set_visible(False)
    handles = [
        Line2D([], [], marker="o", ls="none", color="#444444", label=f"kept ({fmt_count(int(keep.sum()))})"),
        Line2D([], [], marker="x", ls="none", color="#444444", label=f"dropped ({fmt_count(int((~keep).sum()))})"),
    ]
    if levels is not None:
        handles.append(Line2D([], [], ls="none", label=groupby))
        handles += [Line2D([], [], marker="o", ls="none", color=c, label=lvl) for lvl, c in levels.items()]
    leg = legend_outside(ax, handles=handles)
    if levels is not None:
        leg.get_texts()[2].set_fontweight("bold")
    thresholds = [f"min_cells={min_cells}" if min_cells is not None else None,
                  f"min_counts={min_counts}" if min_counts is not None else None]
    ax.set_title(", ".join(t for t in thresholds if t) or "no thresholds", fontsize=9)
    return finish(ax, return_fig)
