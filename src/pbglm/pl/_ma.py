"""``pl.ma``: log2 fold change against mean expression."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .._renamed_keyword import renamed_keyword
from ._docs import shared_docs
from ._utils import (
    DOWN,
    NS,
    UP,
    finish,
    fmt_count,
    label_points,
    legend_outside,
    lfc_column,
    lfc_label,
    new_axes,
    resolve_genes,
    results_frame,
)


@shared_docs
@renamed_keyword("key_added", "key")
def ma(
    data: AnnData | pd.DataFrame,
    test: str | None = None,
    *,
    key: str = "pbglm",
    group: str | None = None,
    x: str = "base_mean",
    alpha: float = 0.1,
    lfc_threshold: float = 0.0,
    shrunk: bool = False,
    ylim: tuple[float, float] | None = None,
    n_top: int = 0,
    genes: Sequence[str] | None = None,
    gene_symbols: str | None = None,
    colors: tuple[str, str, str] = (UP, DOWN, NS),
    size: float = 5.0,
    ax: Axes | None = None,
    return_fig: bool = False,
) -> Axes | Figure:
    """MA plot: log2 fold change against mean expression (DESeq2's ``plotMA``).

    Genes with ``padj < alpha`` (and ``|log2fc| > lfc_threshold``) are coloured. Genes whose fold
    change lies outside ``ylim`` are drawn at the border as triangles pointing outwards.

    Parameters
    ----------
    data
        An AnnData with stored tests, or a results table as returned by :func:`pbglm.get.results`.
    test
        Name of the stored test; may be omitted when only one is stored (or ``data`` is a table).
    key
        Key of the fit.
    group
        For per-group fits or long per-group tables: the group to plot.
    x
        Column for the x axis: ``"base_mean"`` (mean of normalised counts, log scale) or, for edgeR
        results, ``"log_cpm"`` (average log2 counts per million, linear scale).
    alpha
        FDR level for colouring.
    lfc_threshold
        Minimum absolute log2 fold change of coloured genes; drawn as dashed lines when > 0.
    shrunk
        Plot the shrunken fold changes (``log2fc_shrunk``, written by :func:`pbglm.tl.shrink`)
        instead of the maximum-likelihood ones.
    ylim
        y-axis limits; out-of-range genes are drawn at the limit as triangles. Default: all genes.
    n_top
        Label this many of the most significant coloured genes.
    genes
        Further genes to label (var names, or labels from ``gene_symbols``).
    gene_symbols
        Column of ``.var`` (or of the results table) with the labels to show.
    colors
        Colours of up-regulated, down-regulated and other genes.
    size
        Marker size (points^2).
    {ax_return}
    """
    df, labels, title = results_frame(data, test, key=key, group=group, gene_symbols=gene_symbols)
    if x not in df.columns:
        raise KeyError(f"x={x!r} is not a column of the results; columns are {list(df.columns)}.")
    if alpha <= 0 or alpha >= 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}.")
    log_x = x == "base_mean"
    xv = df[x].to_numpy(dtype=float)
    lfc = df[lfc_column(df, shrunk)].to_numpy(dtype=float)
    ok = np.isfinite(xv) & np.isfinite(lfc)
    if log_x:
        ok &= xv > 0
    sig_col = "padj" if "padj" in df.columns else "pvalue"
    with np.errstate(invalid="ignore"):
        sig = ok & (df[sig_col].to_numpy(dtype=float) < alpha) & (np.abs(lfc) > lfc_threshold)
    if ylim is None:
        ymax = np.nanmax(np.abs(lfc[ok])) * 1.05 if ok.any() else 1.0
        ylim = (-max(ymax, 1.0), max(ymax, 1.0))
    lo, hi = ylim
    if not lo < hi:
        raise ValueError(f"ylim must be (low, high) with low < high, got {ylim}.")
    yplot = np.clip(lfc, lo, hi)
    below, above = ok & (lfc < lo), ok & (lfc > hi)
    inside = ok & ~below & ~above

    ax = new_axes(ax, (5.4, 3.8))
    c_up, c_down, c_ns = colors
    up, down = sig & (lfc > 0), sig & (lfc < 0)
    ns = ok & ~sig
    handles = []
    for mask, color, name, z in ((ns, c_ns, "n.s.", 1), (down, c_down, "down", 2), (up, c_up, "up", 2)):
        m = mask & inside
        ax.scatter(xv[m], yplot[m], s=size, c=color, lw=0, zorder=z, rasterized=name == "n.s.")
        for out, marker in ((above, "^"), (below, "v")):
            m = mask & out
            if m.any():
                ax.scatter(xv[m], yplot[m], s=size * 4, c=color, marker=marker, lw=0, zorder=3, clip_on=False)
        handles.append(Line2D([], [], ls="", marker="o", ms=5, color=color, label=f"{name} ({fmt_count(mask.sum())})"))
    handles = handles[::-1]
    if (above | below).any():
        handles.append(Line2D([], [], ls="", marker="^", ms=5, color="0.4", label="beyond y limits"))
    ax.axhline(0, color="0.25", lw=0.8, zorder=0)
    if lfc_threshold > 0:
        for v in (lfc_threshold, -lfc_threshold):
            ax.axhline(v, color="0.35", lw=0.8, ls=(0, (4, 3)), zorder=0)
    if log_x:
        ax.set_xscale("log")
        ax.set_xlabel("mean of normalised counts")
    else:
        ax.set_xlabel("average log$_2$ CPM" if x == "log_cpm" else x)
    ax.set_ylim(lo, hi)
    ax.set_ylabel(lfc_label(shrunk))
    if title:
        ax.set_title(title)
    crit = f"{sig_col} < {alpha:g}" + (f",\n|log$_2$FC| > {lfc_threshold:g}" if lfc_threshold > 0 else "")
    legend_outside(ax, handles=handles, title=crit, alignment="left")
    ax.spines[["top", "right"]].set_visible(False)

    lab_idx = []
    if n_top and n_top > 0 and sig.any():
        pv = df["pvalue"].to_numpy(dtype=float)
        order = np.lexsort((-np.abs(lfc[sig]), pv[sig]))
        lab_idx.extend(np.flatnonzero(sig)[order][:n_top].tolist())
    if genes is not None:
        for i in df.index.get_indexer(resolve_genes(df.index, genes, labels)):
            if ok[i] and i not in lab_idx:
                lab_idx.append(i)
                ax.scatter(xv[i], yplot[i], s=size * 3, facecolors="none", edgecolors="k", lw=0.8, zorder=4)
    if lab_idx:
        idx = np.asarray(lab_idx)
        label_points(ax, xv[idx], yplot[idx], labels.to_numpy()[idx], avoid_x=xv[ok], avoid_y=yplot[ok])
    return finish(ax, return_fig)
