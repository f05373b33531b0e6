"""``pl.coefficients``: a forest plot of fitted coefficients with confidence intervals."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats

from .._io import varm_key
from .._renamed_keyword import renamed_keyword
from ._docs import shared_docs
from ._utils import check_group, finish, fit_record, gene_labels, legend_outside, new_axes, resolve_genes


@shared_docs
@renamed_keyword("key_added", "key")
def coefficients(
    adata: AnnData,
    genes: str | Sequence[str],
    *,
    coefs: str | Sequence[str] | None = None,
    key: str = "pbglm",
    group: str | None = None,
    level: float = 0.95,
    gene_symbols: str | None = None,
    palette: str = "tab10",
    ax: Axes | None = None,
    return_fig: bool = False,
) -> Axes | Figure:
    """Forest plot of fitted coefficients (log2 scale) with confidence intervals, for a few genes.

    Each coefficient is a row; genes are drawn side by side within the row, each with its
    estimate and a ``level`` Wald interval (``coef ± 1.96 se`` for 95%).

    Parameters
    ----------
    adata
        An AnnData fit by :func:`pbglm.tl.fit`.
    genes
        One or a few var names (or labels in ``.var[gene_symbols]``).
    coefs
        Coefficients (design columns) to show; default every column except ``Intercept``.
    key
        Key of the fit.
    group
        For per-group fits: the group whose coefficients to show.
    level
        Confidence level of the intervals.
    gene_symbols
        Column of ``.var`` with the labels to show.
    palette
        Colormap giving one colour per gene.
    {ax_return}
    """
    uns = fit_record(adata, key)
    group = check_group(adata, key, group, needed_for="pl.coefficients")
    record = uns if group is None else uns["groups"][group]
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}.")
    labels = gene_labels(adata, gene_symbols)
    names = resolve_genes(adata.var_names, genes, labels)
    names = list(dict.fromkeys(names))
    coef = pd.DataFrame(adata.varm[varm_key(key, "coef", group)])
    se = pd.DataFrame(adata.varm[varm_key(key, "se", group)])
    columns = [str(c) for c in record["design_columns"]]
    coef.columns = se.columns = columns
    if coefs is None:
        coefs = [c for c in columns if c != "Intercept"] or columns
    elif isinstance(coefs, str):
        coefs = [coefs]
    unknown = [c for c in coefs if c not in columns]
    if unknown:
        raise KeyError(f"Coefficient(s) {unknown} are not in the design; its columns are {columns}.")
    z = stats.norm.ppf(0.5 + level / 2)
    est = coef.loc[names, list(coefs)].to_numpy(dtype=float)
    err = z * se.loc[names, list(coefs)].to_numpy(dtype=float)

    n_g, n_c = len(names), len(coefs)
    if ax is None:
        longest = max(len(c) for c in coefs)
        ax = new_axes(None, (3.6 + 0.07 * longest + 1.4, 1.0 + 0.3 * n_c * max(1.0, 0.45 * n_g) + 0.4))
    cmap = mpl.colormaps[palette]
    width = 0.7
    offsets = (np.arange(n_g) - (n_g - 1) / 2) * (width / max(n_g, 1)) if n_g > 1 else np.zeros(1)
    for k, g in enumerate(names):
        color = cmap(k % cmap.N) if getattr(cmap, "N", 256) <= 20 else cmap(k / max(n_g - 1, 1))
        ypos = np.arange(n_c) + offsets[k]
        e = err[k]
        has_ci = np.isfinite(e)
        ax.errorbar(est[k][has_ci], ypos[has_ci], xerr=e[has_ci], fmt="o", ms=5, color=color, ecolor=color,
                    elinewidth=1.4, capsize=2.5, label=str(labels[g]))
        if (~has_ci).any():
            ax.plot(est[k][~has_ci], ypos[~has_ci], "o", ms=5, mfc="white", mec=color)
    ax.axvline(0, color="0.35", lw=0.8, ls=(0, (4, 3)), zorder=0)
    for i in range(1, n_c):
        ax.axhline(i - 0.5, color="0.9", lw=0.8, zorder=0)
    ax.set_yticks(np.arange(n_c), list(coefs))
    ax.set_ylim(n_c - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel(f"coefficient (log$_2$), {level:.0%} CI")
    ax.spines[["top", "right", "left"]].set_visible(False)
    if group is not None:
        ax.set_title(str(group))
    legend_outside(ax, title="gene", alignment="left")
    return finish(ax, return_fig)
