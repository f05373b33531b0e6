"""``pl.dispersions``: dispersion estimates against expression (DESeq2 / edgeR diagnostic plots)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .._renamed_keyword import renamed_keyword
from ._docs import shared_docs
from ._utils import finish, fit_record, gene_table, legend_outside, method_of, new_axes

GENE = "black"
TREND = "#D62728"
FINAL = "#1E90FF"

_EDGER_BCV = ("ave_log_cpm", "dispersion_tagwise")
_EDGER_QL = ("ave_log_cpm", "ql_dispersion", "ql_dispersion_post", "ql_dispersion_prior")


@shared_docs
@renamed_keyword("key_added", "key")
def dispersions(
    adata: AnnData,
    *,
    key: str = "pbglm",
    group: str | None = None,
    kind: Literal["auto", "deseq2", "bcv", "ql"] = "auto",
    ymin: float | None = None,
    size: float = 3.0,
    ax: Axes | None = None,
    return_fig: bool = False,
) -> Axes | Figure:
    """Dispersion estimates against expression, to check the dispersion fit.

    ``kind="deseq2"`` (DESeq2's ``plotDispEsts``): gene-wise estimates (black), the fitted trend
    (red line) and the final, shrunken values (blue) against the mean of normalised counts, on
    log-log axes; dispersion outliers, which keep their gene-wise estimate, are circled. Gene-wise
    estimates below ``ymin`` (e.g. at the lower bound) are drawn at ``ymin`` as open triangles.

    ``kind="bcv"`` (edgeR's ``plotBCV``): biological coefficient of variation (square root of the
    dispersion): tagwise (black), common (red) and trended (blue) against average log2 CPM.

    ``kind="ql"`` (edgeR's ``plotQLDisp``): quarter-root quasi-likelihood dispersions, raw (black),
    squeezed by empirical Bayes (red) and the prior trend (blue), against average log2 CPM. For
    edgeR 4 fits the raw values are the adjusted deviances over the adjusted df.

    Parameters
    ----------
    adata
        An AnnData fit by :func:`pbglm.tl.fit`.
    key
        Key of the fit.
    group
        For per-group fits: the group to plot.
    kind
        ``"auto"``: ``"deseq2"`` for DESeq2 fits, ``"ql"`` for edgeR 4 QL fits (``legacy=False``,
        one NB dispersion), ``"bcv"`` for legacy edgeR fits.
    ymin
        ``"deseq2"`` only: lower y limit (default: a power of ten below the smallest estimate
        above DESeq2's lower bound of 1e-8).
    size
        Marker size (points^2).
    {ax_return}
    """
    genes, record, group = gene_table(adata, key, group)
    method = method_of(fit_record(adata, key), record)
    kinds = ("auto", "deseq2", "bcv", "ql")
    if kind not in kinds:
        raise ValueError(f"kind must be one of {kinds}, got {kind!r}.")
    if kind == "auto":
        # edgeR 4 QL fits have one NB dispersion (no tagwise ones): their diagnostic is plotQLDisp
        kind = ("bcv" if "dispersion_tagwise" in genes.columns else "ql") if method == "edger" else "deseq2"
    needed = {"deseq2": ("base_mean", "dispersion", "dispersion_gene", "dispersion_trend"), "bcv": _EDGER_BCV,
              "ql": _EDGER_QL}[kind]
    missing = [c for c in needed if c not in genes.columns]
    if missing:
        hint = " (an edgeR fit: use kind='bcv' or kind='ql')" if method == "edger" else ""
        if method == "edger" and kind == "bcv":
            hint = (" (an edgeR 4 QL fit has one NB dispersion, no tagwise ones: use kind='ql', or fit with "
                    "legacy=True for edgeR 3.40's estimateDisp)")
        if kind != "deseq2" and method != "edger":
            hint = " (a DESeq2 fit: use kind='deseq2'; 'bcv' and 'ql' need method='edger')"
        raise ValueError(f"kind={kind!r} needs the per-gene fields {missing}, which this fit lacks{hint}.")
    ax = new_axes(ax, (5.4, 3.9))
    if kind == "deseq2":
        _deseq2(ax, genes, ymin=ymin, size=size)
    elif kind == "bcv":
        _bcv(ax, genes, size=size)
    else:
        _ql(ax, genes, size=size)
    if group is not None:
        ax.set_title(str(group))
    ax.spines[["top", "right"]].set_visible(False)
    return finish(ax, return_fig)


def _deseq2(ax: Axes, genes: pd.DataFrame, *, ymin: float | None, size: float) -> None:
    x = genes["base_mean"].to_numpy(dtype=float)
    gene = genes["dispersion_gene"].to_numpy(dtype=float)
    final = genes["dispersion"].to_numpy(dtype=float)
    trend = genes["dispersion_trend"].to_numpy(dtype=float)
    if "dispersion_outlier" in genes.columns:
        outlier = genes["dispersion_outlier"].fillna(False).to_numpy(dtype=bool)
    else:
        outlier = np.zeros(x.size, dtype=bool)
    sel = np.isfinite(x) & (x > 0) & np.isfinite(gene) & np.isfinite(final)
    if not sel.any():
        raise ValueError("No gene has a finite dispersion estimate and a positive mean count; nothing to plot.")
    x, gene, final, trend, outlier = x[sel], gene[sel], final[sel], trend[sel], outlier[sel]
    if ymin is None:
        above = gene[gene > 1e-7]
        low = above.min() if above.size else np.min(final[final > 0])
        ymin = 10 ** np.floor(np.log10(low) - 0.1)
    if ymin <= 0:
        raise ValueError(f"ymin must be > 0 on a log axis, got {ymin}.")
    low = gene < ymin
    ax.scatter(x[~low], gene[~low], s=size, c=GENE, lw=0, zorder=2, rasterized=True)
    if low.any():
        ax.scatter(x[low], np.full(low.sum(), ymin), s=size * 3, marker="v", facecolors="none", edgecolors=GENE,
                   lw=0.5, zorder=2, clip_on=False, rasterized=True)
    ax.scatter(x[~outlier], final[~outlier], s=size, c=FINAL, lw=0, zorder=3, alpha=0.8, rasterized=True)
    if outlier.any():
        ax.scatter(x[outlier], final[outlier], s=size * 9, facecolors="none", edgecolors=FINAL, lw=0.9, zorder=4)
    order = np.argsort(x, kind="stable")
    ok = np.isfinite(trend[order])
    ax.plot(x[order][ok], trend[order][ok], color=TREND, lw=1.8, zorder=5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(bottom=ymin)
    ax.set_xlabel("mean of normalised counts")
    ax.set_ylabel("dispersion")
    handles = [
        Line2D([], [], ls="", marker="o", ms=4, color=GENE, label="gene-wise"),
        Line2D([], [], color=TREND, lw=1.8, label="fitted trend"),
        Line2D([], [], ls="", marker="o", ms=4, color=FINAL, label="final"),
    ]
    if outlier.any():
        handles.append(Line2D([], [], ls="", marker="o", ms=7, mfc="none", mec=FINAL,
                              label=f"outlier ({outlier.sum():,})"))
    if low.any():
        handles.append(Line2D([], [], ls="", marker="v", ms=5, mfc="none", mec=GENE, label=f"gene-wise < {_sci(ymin)}"))
    legend_outside(ax, handles=handles)


def _bcv(ax: Axes, genes: pd.DataFrame, *, size: float) -> None:
    x = genes["ave_log_cpm"].to_numpy(dtype=float)
    tag = genes["dispersion_tagwise"].to_numpy(dtype=float)
    sel = np.isfinite(x) & np.isfinite(tag)
    if not sel.any():
        raise ValueError("No gene has a finite tagwise dispersion; nothing to plot.")
    order = np.argsort(x[sel], kind="stable")
    xs = x[sel][order]
    ax.scatter(xs, np.sqrt(tag[sel][order]), s=size, c=GENE, lw=0, zorder=2, rasterized=True)
    handles = [Line2D([], [], ls="", marker="o", ms=4, color=GENE, label="tagwise")]
    if "dispersion_common" in genes.columns:
        common = genes["dispersion_common"].to_numpy(dtype=float)
        common = common[np.isfinite(common)]
        if common.size:
            ax.axhline(np.sqrt(common[0]), color=TREND, lw=1.6, zorder=3)
            handles.append(Line2D([], [], color=TREND, lw=1.6, label="common"))
    if "dispersion_trend" in genes.columns:
        trend = genes["dispersion_trend"].to_numpy(dtype=float)[sel][order]
        ok = np.isfinite(trend)
        ax.plot(xs[ok], np.sqrt(trend[ok]), color=FINAL, lw=1.8, zorder=4)
        handles.append(Line2D([], [], color=FINAL, lw=1.8, label="trend"))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("average log$_2$ CPM")
    ax.set_ylabel("biological coefficient of variation")
    legend_outside(ax, handles=handles)


def _ql(ax: Axes, genes: pd.DataFrame, *, size: float) -> None:
    x = genes["ave_log_cpm"].to_numpy(dtype=float)
    raw = genes["ql_dispersion"].to_numpy(dtype=float)
    post = genes["ql_dispersion_post"].to_numpy(dtype=float)
    prior = genes["ql_dispersion_prior"].to_numpy(dtype=float)
    sel = np.isfinite(x) & np.isfinite(raw) & np.isfinite(post)
    if not sel.any():
        raise ValueError("No gene has finite quasi-likelihood dispersions; nothing to plot.")
    order = np.argsort(x[sel], kind="stable")
    xs = x[sel][order]

    def qr(v):
        return np.sqrt(np.sqrt(np.maximum(v, 0.0)))

    ax.scatter(xs, qr(raw[sel][order]), s=size, c=GENE, lw=0, zorder=2, rasterized=True)
    ax.scatter(xs, qr(post[sel][order]), s=size, c=TREND, lw=0, zorder=3, rasterized=True)
    pr = prior[sel][order]
    ok = np.isfinite(pr)
    ax.plot(xs[ok], qr(pr[ok]), color=FINAL, lw=1.8, zorder=4)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("average log$_2$ CPM")
    ax.set_ylabel("quarter-root mean deviance")
    handles = [
        Line2D([], [], ls="", marker="o", ms=4, color=GENE, label="raw"),
        Line2D([], [], ls="", marker="o", ms=4, color=TREND, label="squeezed"),
        Line2D([], [], color=FINAL, lw=1.8, label="trend"),
    ]
    legend_outside(ax, handles=handles)


def _sci(v: float) -> str:
    """``1e-7`` rather than ``1e-07``."""
    mant, exp = f"{v:.0e}".split("e")
    return f"{mant}e{int(exp)}"
