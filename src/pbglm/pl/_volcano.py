"""``pl.volcano``: log2 fold change against significance."""

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
    neg_log10,
    new_axes,
    resolve_genes,
    results_frame,
)


@shared_docs
@renamed_keyword("key_added", "key")
def volcano(
    data: AnnData | pd.DataFrame,
    test: str | None = None,
    *,
    key: str = "pbglm",
    group: str | None = None,
    use_padj: bool = True,
    alpha: float = 0.1,
    lfc_threshold: float = 0.0,
    shrunk: bool = False,
    n_top: int = 10,
    genes: Sequence[str] | None = None,
    gene_symbols: str | None = None,
    colors: tuple[str, str, str] = (UP, DOWN, NS),
    size: float = 6.0,
    ax: Axes | None = None,
    return_fig: bool = False,
) -> Axes | Figure:
    """Volcano plot: log2 fold change against -log10 (adjusted) p-value.

    Genes with ``padj < alpha`` (and ``|log2fc| > lfc_threshold`` when a threshold is given) are
    coloured as up- or down-regulated, the rest grey; the legend counts each class and its title
    states the criterion. By default these are the genes that :func:`pbglm.pl.ma` colours and that
    ``pbglm run`` / ``pbglm demo`` report as significant. Genes without a ``padj`` (filtered out
    by independent filtering or ``filter_by_expr``) are not drawn. Dashed lines mark the thresholds. The ``n_top`` most
    significant of the coloured genes and any ``genes`` are labelled (without overlaps when
    `adjustText <https://github.com/Phlya/adjustText>`_ is installed). p-values of exactly 0 (an
    underflow) are drawn at the smallest non-zero p-value as upward triangles.

    Parameters
    ----------
    data
        An AnnData with stored tests (:func:`pbglm.tl.test`), or a results table as returned by
        :func:`pbglm.get.results` (columns ``log2fc``, ``pvalue`` and, for ``use_padj``, ``padj``).
    test
        Name of the stored test; may be omitted when only one is stored (or ``data`` is a table).
    key
        Key of the fit.
    group
        For per-group fits (``tl.fit(..., groupby=)``) or long per-group tables: the group to plot.
    use_padj
        Plot -log10 of the adjusted p-value (``padj``); otherwise of the raw p-value, with the
        horizontal line at the largest p-value that passes ``padj < alpha``.
    alpha
        FDR level: significant genes have ``padj < alpha`` (``pvalue < alpha`` if the table has no
        ``padj`` column).
    lfc_threshold
        Minimum absolute log2 fold change of coloured genes, drawn as dashed lines. The default 0
        colours every gene with ``padj < alpha``.
    shrunk
        Plot the shrunken fold changes (``log2fc_shrunk``, written by :func:`pbglm.tl.shrink`)
        instead of the maximum-likelihood ones.
    n_top
        Label this many of the most significant coloured genes.
    genes
        Further genes to label (var names, or labels from ``gene_symbols``); drawn in black.
    gene_symbols
        Column of ``.var`` (or of the results table) with the labels to show, e.g. gene symbols.
    colors
        Colours of up-regulated, down-regulated and other genes.
    size
        Marker size (points^2).
    {ax_return}
    """
    df, labels, title = results_frame(data, test, key=key, group=group, gene_symbols=gene_symbols)
    if alpha <= 0 or alpha >= 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}.")
    if lfc_threshold < 0:
        raise ValueError(f"lfc_threshold must be >= 0, got {lfc_threshold}.")
    has_padj = "padj" in df.columns
    if use_padj and not has_padj:
        raise ValueError("The results table has no 'padj' column; pass use_padj=False.")
    lfc = df[lfc_column(df, shrunk)].to_numpy(dtype=float)
    p_col = "padj" if use_padj else "pvalue"
    pvals = df[p_col].to_numpy(dtype=float)
    sig_p = df["padj" if has_padj else "pvalue"].to_numpy(dtype=float)
    ok = np.isfinite(lfc) & np.isfinite(pvals)
    y, capped, floor = neg_log10(pvals)
    with np.errstate(invalid="ignore"):
        sig = ok & (sig_p < alpha) & (np.abs(lfc) > lfc_threshold)
    up = sig & (lfc > 0)
    down = sig & (lfc < 0)
    ns = ok & ~sig

    ax = new_axes(ax, (5.6, 4.2))
    c_up, c_down, c_ns = colors
    handles = []
    for mask, color, name, z in ((ns, c_ns, "n.s.", 1), (down, c_down, "down", 2), (up, c_up, "up", 2)):
        dots = mask & ~capped
        ax.scatter(lfc[dots], y[dots], s=size, c=color, lw=0, zorder=z, rasterized=name == "n.s.")
        tri = mask & capped
        if tri.any():
            ax.scatter(lfc[tri], y[tri], s=size * 3, c=color, marker="^", lw=0.4, edgecolors="k", zorder=3)
        handles.append(Line2D([], [], ls="", marker="o", ms=5, color=color, label=f"{name} ({fmt_count(mask.sum())})"))
    handles = handles[::-1]
    if capped[ok].any():
        label = f"p = 0 (drawn at\nmin. p = {floor:.1e})"
        handles.append(Line2D([], [], ls="", marker="^", ms=6, mfc="white", mec="k", mew=0.6, label=label))

    # threshold lines
    line = dict(color="0.35", lw=0.8, ls=(0, (4, 3)), zorder=0)
    if lfc_threshold > 0:
        ax.axvline(lfc_threshold, **line)
        ax.axvline(-lfc_threshold, **line)
    if use_padj:
        ax.axhline(-np.log10(alpha), **line)
    else:
        passing = pvals[ok & (sig_p < alpha)] if has_padj else pvals[ok & (pvals < alpha)]
        if passing.size:
            ax.axhline(-np.log10(max(passing.max(), floor)), **line)

    if ok.any():
        xmax = np.nanmax(np.abs(lfc[ok]))
        xmax = max(xmax * 1.05, lfc_threshold * 1.5, 1.0)
        ax.set_xlim(-xmax, xmax)
        ymax = np.nanmax(y[ok])
        top = max(ymax, -np.log10(alpha)) * (1.15 if n_top or genes is not None else 1.05) + 0.1
        ax.set_ylim(-0.02 * max(ymax, 1.0), top)

    ax.set_xlabel(lfc_label(shrunk))
    ax.set_ylabel(r"$-$log$_{10}$ " + ("adjusted p-value" if use_padj else "p-value"))
    if title:
        ax.set_title(title)
    crit = f"padj < {alpha:g}" if has_padj else f"p < {alpha:g}"
    if lfc_threshold > 0:
        crit += f",\n|log$_2$FC| > {lfc_threshold:g}"
    legend_outside(ax, handles=handles, title=crit, alignment="left")
    ax.spines[["top", "right"]].set_visible(False)

    # labels last: they are placed in screen space, so the layout must be final
    index = df.index
    lab_idx = []
    if n_top and n_top > 0 and sig.any():
        order = np.lexsort((-np.abs(lfc[sig]), -y[sig]))
        lab_idx.extend(np.flatnonzero(sig)[order][:n_top].tolist())
    extra = []
    if genes is not None:
        pos = index.get_indexer(resolve_genes(index, genes, labels))
        for i in pos:
            if not ok[i]:
                continue
            extra.append(i)
            if i not in lab_idx:
                lab_idx.append(i)
    if extra:
        ax.scatter(lfc[extra], y[extra], s=size * 3, facecolors="none", edgecolors="k", lw=0.8, zorder=4)
    if lab_idx:
        lab_idx = np.asarray(lab_idx)
        label_points(ax, lfc[lab_idx], y[lab_idx], labels.to_numpy()[lab_idx], avoid_x=lfc[ok], avoid_y=y[ok])

    return finish(ax, return_fig)
