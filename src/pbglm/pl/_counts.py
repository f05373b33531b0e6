"""``pl.counts``: normalised counts of one gene per group of samples (DESeq2's ``plotCounts``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy import sparse

from .._io import column_key, get_matrix, stored_keys
from .._renamed_keyword import renamed_keyword
from ._docs import shared_docs
from ._utils import (
    check_group,
    finish,
    fit_record,
    gene_labels,
    legend_outside,
    new_axes,
    readable_log_ticks,
    resolve_genes,
)


def _column(X, j: int) -> np.ndarray:
    """Column ``j`` of a dense, sparse or dask matrix as a float array."""
    if sparse.issparse(X):
        col = X[:, [j]].toarray().ravel()
    else:
        col = X[:, j]
        if hasattr(col, "compute"):
            col = col.compute()
        col = np.asarray(col).ravel()
    return col.astype(float)


@shared_docs
@renamed_keyword("key_added", "key")
def counts(
    adata: AnnData,
    gene: str,
    *,
    by: str | None = None,
    paired_by: str | None = None,
    layer: str | None = None,
    key: str = "pbglm",
    group: str | None = None,
    normalize: bool = True,
    log: bool = True,
    pseudocount: float = 0.5,
    jitter: float = 0.12,
    seed: int = 0,
    gene_symbols: str | None = None,
    palette: str | dict | None = None,
    size: float = 36.0,
    ax: Axes | None = None,
    return_fig: bool = False,
) -> Axes | Figure:
    """Normalised counts of one gene per group of samples (DESeq2's ``plotCounts``).

    Each sample is a point (jittered horizontally), a short bar marks each group's median, and
    with ``paired_by`` lines join the samples of the same donor/batch across groups.

    Parameters
    ----------
    adata
        An AnnData fit by :func:`pbglm.tl.fit` (for its size factors), or any AnnData of counts
        with ``normalize=False``.
    gene
        A var name (or a label in ``.var[gene_symbols]``).
    by
        ``.obs`` column that defines the groups on the x axis; default: the last factor of the
        design (e.g. ``"dex"`` for ``~ cell + dex``).
    paired_by
        ``.obs`` column whose samples are joined by lines (e.g. the donor, ``"cell"`` on airway);
        points are then coloured by it.
    layer
        Layer with the raw counts; default: the layer the fit used (``X`` when there is no fit).
    key
        Key of the fit.
    group
        For per-group fits: plot the samples of this group, normalised with its size factors.
    normalize
        Divide counts by the fit's size factors (``.obs[f'{key}_size_factor']``).
    log
        Log-scale y axis; ``pseudocount`` is added so that zeros can be shown.
    pseudocount
        Added to every value on a log axis (0.5, as ``plotCounts``).
    jitter
        Half-width of the horizontal jitter, in units of the group spacing.
    seed
        Seed of the jitter.
    gene_symbols
        Column of ``.var`` with the label to show (and in which ``gene`` may be looked up).
    palette
        A colormap name or a dict value -> colour for the ``paired_by`` values.
    size
        Marker size (points^2).
    {ax_return}
    """
    if not isinstance(adata, AnnData):
        raise TypeError(f"Expected an AnnData, got {type(adata).__name__}.")
    if not isinstance(gene, str):
        raise TypeError(f"gene must be one gene name (str), got {type(gene).__name__}.")
    labels = gene_labels(adata, gene_symbols)
    name = resolve_genes(adata.var_names, gene, labels)[0]
    has_fit = key in stored_keys(adata)
    record = None
    if has_fit:
        uns = fit_record(adata, key)
        group = check_group(adata, key, group, needed_for="pl.counts")
        record = uns if group is None else uns["groups"][group]
    elif group is not None:
        raise ValueError(f"group={group!r} was given, but there is no fit under key={key!r}.")
    if by is None:
        factors = list(record.get("factors", {})) if record is not None else []
        if not factors:
            raise ValueError("Pass by= naming the .obs column that defines the groups on the x axis.")
        by = factors[-1]
    for col, what in ((by, "by"), (paired_by, "paired_by")):
        if col is not None and col not in adata.obs.columns:
            raise KeyError(f"{what}={col!r} is not a column of .obs; available: {list(adata.obs.columns)}.")
    if layer is None and record is not None:
        stored = record.get("layer", "None")
        layer = None if stored == "None" else str(stored)

    if record is not None and group is not None:
        mask = adata.obs_names.isin(pd.DataFrame(record["design"]).index)
    else:
        mask = np.ones(adata.n_obs, dtype=bool)
    X = get_matrix(adata, layer)
    y = _column(X, adata.var_names.get_loc(name))[mask]
    obs = adata.obs.loc[mask]
    if normalize:
        sf_col = column_key(key, "size_factor")
        if sf_col not in adata.obs.columns:
            raise KeyError(
                f"No size factors in .obs[{sf_col!r}]: run pbglm.tl.fit first, or pass normalize=False for raw counts."
            )
        y = y / obs[sf_col].to_numpy(dtype=float)
    if log:
        if pseudocount < 0:
            raise ValueError(f"pseudocount must be >= 0, got {pseudocount}.")
        y = y + pseudocount

    cats = obs[by].astype("category")
    levels = [lv for lv in cats.cat.categories if (cats == lv).any()]
    codes = pd.Categorical(cats, categories=levels).codes.astype(float)
    rng = np.random.default_rng(seed)
    xpos = codes + rng.uniform(-jitter, jitter, size=codes.size)

    if ax is None:
        ax = new_axes(None, (1.8 + 0.75 * len(levels) + (1.2 if paired_by else 0.0), 3.6))
    if paired_by is not None:
        pairs = obs[paired_by].astype("category")
        pvals = [v for v in pairs.cat.categories if (pairs == v).any()]
        colours = _palette(palette, pvals)
        for v in pvals:
            sel = np.flatnonzero((pairs == v).to_numpy())
            sel = sel[np.argsort(codes[sel], kind="stable")]
            ax.plot(xpos[sel], y[sel], color=colours[v], lw=1.0, alpha=0.7, zorder=1)
            ax.scatter(xpos[sel], y[sel], s=size, color=colours[v], edgecolors="white", lw=0.6, zorder=3)
        handles = [Line2D([], [], color=colours[v], marker="o", ms=6, lw=1.0, label=str(v)) for v in pvals]
        legend_outside(ax, handles=handles, title=paired_by, alignment="left")
    else:
        ax.scatter(xpos, y, s=size, color="0.2", edgecolors="white", lw=0.6, zorder=3)
    for k in range(len(levels)):
        vals = y[codes == k]
        if vals.size:
            med = np.median(vals)
            ax.plot([k - 0.28, k + 0.28], [med, med], color="0.45", lw=1.4, zorder=2, solid_capstyle="butt")
    ax.set_xticks(np.arange(len(levels)), [str(lv) for lv in levels])
    ax.set_xlim(-0.6, len(levels) - 0.4)
    ax.set_xlabel(by)
    if log:
        ax.set_yscale("log")
        readable_log_ticks(ax.yaxis)
    ylab = "normalised count" if normalize else "count"
    if log and pseudocount:
        ylab += f" + {pseudocount:g}"
    ax.set_ylabel(ylab)
    title = str(labels[name])
    if group is not None:
        title += f" ({group})"
    ax.set_title(title)
    ax.spines[["top", "right"]].set_visible(False)
    return finish(ax, return_fig)


def _palette(palette, values) -> dict:
    """A colour per value."""
    if isinstance(palette, dict):
        missing = [v for v in values if v not in palette]
        if missing:
            raise KeyError(f"palette has no colour for {missing}.")
        return {v: palette[v] for v in values}
    import matplotlib as mpl

    if palette is None:
        palette = "tab10" if len(values) <= 10 else "tab20"
    cmap = mpl.colormaps[palette]
    n = getattr(cmap, "N", 256)
    if n <= 20:
        return {v: cmap(i % n) for i, v in enumerate(values)}
    return {v: cmap(i / max(len(values) - 1, 1)) for i, v in enumerate(values)}
