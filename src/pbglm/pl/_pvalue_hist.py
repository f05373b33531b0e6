"""``pl.pvalue_hist``: the distribution of a test's p-values."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .._renamed_keyword import renamed_keyword
from ._docs import shared_docs
from ._utils import DOWN, NS, finish, fmt_count, legend_outside, new_axes, results_frame


@shared_docs
@renamed_keyword("key_added", "key")
def pvalue_hist(
    data: AnnData | pd.DataFrame,
    test: str | None = None,
    *,
    key: str = "pbglm",
    group: str | None = None,
    bins: int = 20,
    show_filtered: bool = True,
    colors: tuple[str, str] = (DOWN, NS),
    ax: Axes | None = None,
    return_fig: bool = False,
) -> Axes | Figure:
    """Histogram of a test's raw p-values.

    A well-behaved test shows a flat histogram (null genes) with a peak near 0 (differentially
    expressed genes). Genes removed by independent filtering or the Cook's outlier filter
    (p-value but no adjusted p-value) are stacked in grey: they are usually the low-count genes
    that make up a peak near 1.

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
    bins
        Number of equal-width bins on [0, 1].
    show_filtered
        Stack the filtered genes on top (otherwise they are left out).
    colors
        Colours of tested and of filtered genes.
    {ax_return}
    """
    df, _, title = results_frame(data, test, key=key, group=group, gene_symbols=None)
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}.")
    p = df["pvalue"].to_numpy(dtype=float)
    has_p = np.isfinite(p)
    if "padj" in df.columns:
        kept = has_p & np.isfinite(df["padj"].to_numpy(dtype=float))
    else:
        kept = has_p
    filtered = has_p & ~kept
    edges = np.linspace(0.0, 1.0, bins + 1)
    ax = new_axes(ax, (5.0, 3.4))
    c_kept, c_filt = colors
    series = [p[kept]]
    names = [f"tested ({fmt_count(kept.sum())})"]
    cols = [c_kept]
    if show_filtered and filtered.any():
        series.append(p[filtered])
        names.append(f"filtered ({fmt_count(filtered.sum())})")
        cols.append(c_filt)
    ax.hist(series, bins=edges, stacked=True, color=cols, label=names, edgecolor="white", linewidth=0.5)
    ax.set_xlim(0, 1)
    ax.set_xlabel("p-value")
    ax.set_ylabel("genes")
    if title:
        ax.set_title(title)
    ax.spines[["top", "right"]].set_visible(False)
    if len(series) > 1:
        legend_outside(ax)
    return finish(ax, return_fig)
