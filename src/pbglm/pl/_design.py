"""``pl.design``: the design matrix of a fit as a labelled heatmap."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from .._renamed_keyword import renamed_keyword
from ._docs import shared_docs
from ._utils import check_group, finish, fit_record, new_axes, root_figure


@shared_docs
@renamed_keyword("key_added", "key")
def design(
    adata: AnnData,
    *,
    key: str = "pbglm",
    group: str | None = None,
    obs_columns: Sequence[str] | None = None,
    annotate: bool | None = None,
    cmap: str | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
) -> Axes | Figure:
    """The design matrix of a fit: samples x coefficients, one cell per entry.

    Parameters
    ----------
    adata
        An AnnData fit by :func:`pbglm.tl.fit`.
    key
        Key of the fit.
    group
        For per-group fits: the group whose design to show.
    obs_columns
        ``.obs`` columns appended to the sample labels; default: the factors of the design.
        Pass ``[]`` for the sample names only.
    annotate
        Write each value in its cell; default when there are at most 400 cells.
    cmap
        Colormap; default ``"Blues"`` (``"RdBu_r"`` centred at 0 when the matrix has negative
        entries, e.g. numeric covariates or contrast coding).
    {ax_return}
    """
    uns = fit_record(adata, key)
    group = check_group(adata, key, group, needed_for="pl.design")
    record = uns if group is None else uns["groups"][group]
    frame = pd.DataFrame(record["design"])
    values = frame.to_numpy(dtype=float)
    n, p = values.shape
    if obs_columns is None:
        obs_columns = [c for c in record.get("factors", {}) if c in adata.obs.columns]
    missing = [c for c in obs_columns if c not in adata.obs.columns]
    if missing:
        raise KeyError(f"obs_columns {missing} are not columns of .obs; available: {list(adata.obs.columns)}.")
    names = [str(s) for s in frame.index]
    header = None
    if obs_columns:
        obs = adata.obs.reindex(frame.index)
        table = [[str(s) for s in frame.index]] + [[str(v) for v in obs[c]] for c in obs_columns]
        heads = ["sample", *obs_columns]
        widths = [max(len(h), *(len(v) for v in col)) for h, col in zip(heads, table, strict=True)]
        names = ["  ".join(col[i].ljust(w) for col, w in zip(table, widths, strict=True)) for i in range(n)]
        header = "  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True))
    if annotate is None:
        annotate = n * p <= 400
    negative = np.nanmin(values) < 0 if values.size else False
    vmax = np.nanmax(np.abs(values)) if values.size else 1.0
    vmax = vmax if vmax > 0 else 1.0
    if negative:
        norm = TwoSlopeNorm(vcenter=0.0, vmin=-vmax, vmax=vmax)
        cmap = cmap or "RdBu_r"
    else:
        norm = None
        cmap = cmap or "Blues"
    formula = str(record.get("formula", ""))
    title = formula if group is None else f"{formula} ({group})"
    if ax is None:
        longest = max((len(s) for s in names), default=4)
        longest_col = max((len(str(c)) for c in frame.columns), default=4)
        axes_width = max(0.55 * p, 0.085 * len(title))
        ax = new_axes(None, (1.0 + 0.075 * longest + axes_width, 1.2 + 0.05 * longest_col + 0.26 * n))
    mesh = ax.pcolormesh(
        np.arange(p + 1), np.arange(n + 1), values, cmap=cmap, norm=norm,
        vmin=None if negative else 0.0, vmax=None if negative else vmax, edgecolors="white", linewidth=1.0,
    )
    ax.set_xlim(0, p)
    ax.set_ylim(n, 0)
    ax.set_xticks(np.arange(p) + 0.5, [str(c) for c in frame.columns], rotation=40, ha="right", rotation_mode="anchor")
    ax.set_yticks(np.arange(n) + 0.5, names, fontfamily="monospace" if obs_columns else None)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if annotate:
        cm = mesh.cmap
        for i in range(n):
            for j in range(p):
                v = values[i, j]
                if not np.isfinite(v):
                    continue
                r, g, b, _ = cm(mesh.norm(v))
                dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
                ax.text(j + 0.5, i + 0.5, f"{v:.3g}", ha="center", va="center", fontsize=9,
                        color="white" if dark else "0.15")
    ax.set_title(title, pad=18 if header is not None else 6)
    if header is not None:
        # column headers over the (monospaced, padded) sample labels
        from matplotlib.transforms import blended_transform_factory

        pad = ax.yaxis.get_major_ticks()[0].get_pad() if n else 3.5
        trans = blended_transform_factory(ax.transAxes, ax.transData) + _points(ax, -pad, 2)
        ax.text(0, 0, header, transform=trans, ha="right", va="bottom", fontfamily="monospace",
                fontsize=ax.yaxis.get_ticklabels()[0].get_fontsize() if n else 10, fontweight="bold")
    else:
        ax.set_ylabel("sample")
    ax.set_xlabel("coefficient")
    return finish(ax, return_fig)


def _points(ax: Axes, dx: float, dy: float):
    from matplotlib.transforms import ScaledTranslation

    return ScaledTranslation(dx / 72, dy / 72, root_figure(ax).dpi_scale_trans)
