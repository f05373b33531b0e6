"""``pl.effect_sizes``: log2 fold changes of many genes across tests or groups."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from .._renamed_keyword import renamed_keyword
from ._docs import shared_docs
from ._utils import (
    check_test,
    finish,
    fit_groups,
    fit_record,
    gene_labels,
    lfc_column,
    lfc_label,
    new_axes,
    resolve_genes,
    test_table,
)

NOT_TESTED = "0.85"


def _columns(adata: AnnData, tests, key: str, groups) -> dict[str, pd.DataFrame]:
    """Column label -> results table, for several tests or for the groups of one test."""
    uns = fit_record(adata, key)
    fitted = fit_groups(uns)
    single = isinstance(tests, str)
    tests = [tests] if single else list(tests)
    if not tests:
        raise ValueError("tests is empty; pass one test name (per-group fit) or several test names.")
    for t in tests:
        check_test(adata, t, key)
    if fitted is None:
        if groups is not None:
            raise ValueError(
                f"groups={list(groups)} was given, but the fit under key={key!r} has no groups "
                "(pbglm.tl.fit was run without groupby=)."
            )
        if single:
            raise ValueError(
                f"A single test ({tests[0]!r}) gives one column: a genes x groups plot needs a per-group fit "
                f"(pbglm.tl.fit(..., groupby=)), and the fit under key={key!r} has no groups. "
                "Pass several test names to compare contrasts."
            )
        return {t: test_table(adata, t, key, None)[0] for t in tests}
    out = {}
    for t in tests:
        run_in = [str(g) for g in uns["tests"][t].get("groups", fitted)]
        wanted = run_in if groups is None else [str(g) for g in groups]
        unknown = [g for g in wanted if g not in fitted]
        if unknown:
            raise KeyError(f"Group(s) {unknown} were not fit; fitted groups: {fitted}.")
        for g in wanted:
            if g not in run_in:
                raise KeyError(f"Test {t!r} was not run in group {g!r}; it was run in {run_in}.")
            out[g if single else f"{t} ({g})"] = test_table(adata, t, key, g)[0]
    return out


@shared_docs
@renamed_keyword("key_added", "key")
def effect_sizes(
    adata: AnnData,
    tests: str | Sequence[str],
    *,
    key: str = "pbglm",
    groups: Sequence[str] | None = None,
    genes: Sequence[str] | None = None,
    n_top: int = 20,
    alpha: float = 0.1,
    shrunk: bool = False,
    kind: Literal["heatmap", "dots"] = "heatmap",
    order: Literal["cluster", "lfc", "given"] = "cluster",
    vmax: float | None = None,
    cmap: str = "RdBu_r",
    gene_symbols: str | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
) -> Axes | Figure:
    """Log2 fold changes of genes (rows) across tests or groups (columns).

    With several test names the columns are the tests (e.g. contrasts of one fit); with one test
    name of a per-group fit (``tl.fit(..., groupby=)``) the columns are the groups. The colour is
    the log2 fold change on a diverging scale centred at 0; significant entries
    (``padj < alpha``) carry a marker (``kind="heatmap"``) or a black outline (``kind="dots"``,
    where the dot area grows with -log10 padj). Entries without a result (e.g. a gene not tested
    in a group) are left blank.

    Parameters
    ----------
    adata
        An AnnData with stored tests.
    tests
        Several test names, or one test name of a per-group fit.
    key
        Key of the fit.
    groups
        Per-group fits: only these groups (default: every group the test was run in).
    genes
        Genes to show (var names, or labels in ``.var[gene_symbols]``); default: the ``n_top``
        genes with the smallest adjusted p-value in any column.
    n_top
        Number of genes chosen when ``genes`` is not given.
    alpha
        FDR level of the significance marker.
    shrunk
        Plot the shrunken fold changes (``log2fc_shrunk``, written by :func:`pbglm.tl.shrink`)
        instead of the maximum-likelihood ones.
    kind
        ``"heatmap"`` or ``"dots"``.
    order
        Row order: ``"cluster"`` (hierarchical clustering of the fold changes), ``"lfc"`` (mean
        fold change, up-regulated first) or ``"given"`` (``genes`` as passed, or by significance).
    vmax
        Colour scale limit (symmetric around 0); default the largest absolute fold change shown.
    cmap
        Diverging colormap.
    gene_symbols
        Column of ``.var`` with the row labels to show.
    {ax_return}
    """
    if kind not in ("heatmap", "dots"):
        raise ValueError(f"kind must be 'heatmap' or 'dots', got {kind!r}.")
    if order not in ("cluster", "lfc", "given"):
        raise ValueError(f"order must be 'cluster', 'lfc' or 'given', got {order!r}.")
    cols = _columns(adata, tests, key, groups)
    labels = gene_labels(adata, gene_symbols)
    names = list(cols)
    lfc = pd.DataFrame({c: t[lfc_column(t, shrunk)] for c, t in cols.items()}, index=adata.var_names)
    padj = pd.DataFrame({c: t["padj"] for c, t in cols.items()}, index=adata.var_names)
    pval = pd.DataFrame({c: t["pvalue"] for c, t in cols.items()}, index=adata.var_names)
    if genes is not None:
        rows = list(dict.fromkeys(resolve_genes(adata.var_names, genes, labels)))
    else:
        if n_top < 1:
            raise ValueError(f"n_top must be >= 1, got {n_top}.")
        best_padj = padj.min(axis=1, skipna=True).fillna(np.inf).to_numpy()
        best_p = pval.min(axis=1, skipna=True).fillna(np.inf).to_numpy()
        has = lfc.notna().any(axis=1).to_numpy() & np.isfinite(best_p)
        idx = np.flatnonzero(has)
        idx = idx[np.lexsort((best_p[idx], best_padj[idx]))][:n_top]
        rows = list(adata.var_names[idx])
        if not rows:
            raise ValueError("No gene has a test result in these columns; nothing to plot.")
    L = lfc.loc[rows].to_numpy(dtype=float)
    P = padj.loc[rows].to_numpy(dtype=float)
    perm = _row_order(L, order)
    rows = [rows[i] for i in perm]
    L, P = L[perm], P[perm]
    n, m = L.shape

    if vmax is None:
        vmax = np.nanmax(np.abs(L)) if np.isfinite(L).any() else 1.0
        vmax = float(vmax) if vmax > 0 else 1.0
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-vmax, vmax=vmax)
    if ax is None:
        longest = max(len(str(labels[r])) for r in rows)
        longest_col = max(len(c) for c in names)
        width = 0.9 + 0.065 * longest + 0.5 * m + 1.3
        height = 1.3 + 0.055 * min(longest_col, 30) + 0.24 * n
        ax = new_axes(None, (width, height))
    with np.errstate(invalid="ignore"):
        sig = np.isfinite(P) & (P < alpha)
    if kind == "heatmap":
        mappable = ax.pcolormesh(np.arange(m + 1), np.arange(n + 1), np.ma.masked_invalid(L), cmap=cmap, norm=norm,
                                 edgecolors="white", linewidth=0.8)
        cm = mappable.cmap
        for i, j in zip(*np.nonzero(sig), strict=True):
            r, g, b, _ = cm(norm(L[i, j]))
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
            ax.plot(j + 0.5, i + 0.5, marker="*", ms=6, color="white" if dark else "0.1", mew=0, zorder=3)
        handles = [Line2D([], [], ls="", marker="*", ms=8, color="0.1", label=f"padj < {alpha:g}")]
        missing = ~np.isfinite(L)
        if missing.any():  # a gene not tested in a column (filtered, or all zero there): grey, not the colour of 0
            for i, j in zip(*np.nonzero(missing), strict=True):
                ax.add_patch(Rectangle((j, i), 1, 1, facecolor=NOT_TESTED, hatch="///", edgecolor="white",
                                       linewidth=0.8, zorder=1))
            handles.append(Patch(facecolor=NOT_TESTED, hatch="///", edgecolor="white", label="not tested"))
        ax.set_xlim(0, m)
        ax.set_ylim(n, 0)
        centres = 0.5
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            score = -np.log10(np.where(np.isfinite(P), np.maximum(P, 1e-300), 1.0))
        top = float(np.nanmax(score)) if score.size else 1.0
        cap = min(max(top, 1.0), 20.0)  # sizes saturate at padj = 1e-20
        area = 6 + 150 * np.clip(score, 0, cap) / cap
        jj, ii = np.meshgrid(np.arange(m), np.arange(n))
        fin = np.isfinite(L)
        mappable = ax.scatter(jj[fin], ii[fin], s=area[fin], c=L[fin], cmap=cmap, norm=norm,
                              edgecolors=np.where(sig[fin], "black", "0.7"), linewidths=np.where(sig[fin], 1.0, 0.4),
                              zorder=3)
        ref = [v for v in (1, 2, 5, 10, 20) if v < cap] + [cap]
        ref = ref[-3:]
        handles = [
            Line2D([], [], ls="", marker="o", ms=np.sqrt(6 + 150 * v / cap), mfc="0.6", mec="none",
                   label=(f"\u2265{v:g}" if v == cap and top > cap else f"{v:g}")) for v in ref
        ]
        handles.append(Line2D([], [], ls="", marker="o", ms=7, mfc="white", mec="black", mew=1.0,
                              label=f"padj < {alpha:g}"))
        ax.set_xlim(-0.5, m - 0.5)
        ax.set_ylim(n - 0.5, -0.5)
        ax.grid(True, color="0.92", lw=0.6, zorder=0)
        ax.set_axisbelow(True)
        centres = 0.0
    ax.set_xticks(np.arange(m) + centres, names, rotation=40 if m > 1 else 0, ha="right", rotation_mode="anchor")
    ax.set_yticks(np.arange(n) + centres, [str(labels[r]) for r in rows], fontsize=8)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(kind == "dots")
        spine.set_color("0.8")
    fig = ax.figure
    cbar = fig.colorbar(mappable, ax=ax, shrink=min(1.0, 6.0 / max(n, 1) + 0.3), aspect=15, pad=0.03)
    cbar.set_label(lfc_label(shrunk))
    cbar.outline.set_visible(False)
    title = None if kind == "heatmap" else r"$-$log$_{10}$ padj"
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=len(handles), frameon=False,
              borderaxespad=0.2, handletextpad=0.2, columnspacing=0.8, title=title, alignment="left", fontsize=8,
              title_fontsize=8)
    return finish(ax, return_fig)


def _row_order(L: np.ndarray, order: str) -> np.ndarray:
    n = L.shape[0]
    if order == "given" or n < 3:
        return np.arange(n)
    filled = np.where(np.isfinite(L), L, 0.0)
    if order == "lfc":
        return np.argsort(-filled.mean(axis=1), kind="stable")
    if filled.shape[1] == 1:
        return np.argsort(-filled[:, 0], kind="stable")
    from scipy.cluster.hierarchy import leaves_list, linkage

    link = linkage(filled, method="average", metric="euclidean", optimal_ordering=True)
    leaves = leaves_list(link)
    # put the up-regulated end on top
    if filled[leaves[0]].mean() < filled[leaves[-1]].mean():
        leaves = leaves[::-1]
    return leaves
