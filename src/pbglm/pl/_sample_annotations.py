"""Colours and marker shapes for ``.obs`` columns in the sample-level plots (PCA, MDS, heatmaps)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData

# Okabe-Ito (without black), then matplotlib's tab10 for longer factors
_QUALITATIVE = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "h", "*"]


@dataclass
class Annotation:
    """One ``.obs`` column as colours: per sample RGBA, and the legend (level -> colour) or a colormap."""

    name: str
    colors: np.ndarray
    levels: dict[str, tuple] | None  # categorical: level -> colour
    norm: object | None = None  # numeric: the Normalize and colormap used
    cmap: object | None = None


def obs_column(adata: AnnData, column: str, *, argname: str) -> pd.Series:
    """``adata.obs[column]`` with a clear error naming the available columns."""
    if not isinstance(column, str):
        raise TypeError(f"{argname} must be the name of an .obs column, got {type(column).__name__}.")
    if column not in adata.obs.columns:
        raise KeyError(f"{argname}={column!r} is not a column of .obs; columns: {list(adata.obs.columns)}.")
    return adata.obs[column]


def is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not isinstance(values.dtype, pd.CategoricalDtype) \
        and not pd.api.types.is_bool_dtype(values)


def levels_of(values: pd.Series) -> list:
    """Levels in the column's order (categories for a Categorical, sorted otherwise)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return [c for c in values.cat.categories if (values == c).any()]
    return sorted(values.dropna().unique(), key=str)


def palette(n: int, offset: int = 0) -> list:
    """``n`` qualitative colours, starting ``offset`` colours into the palette (so that several
    annotation columns drawn together do not share colours)."""
    import matplotlib as mpl

    if offset + n <= len(_QUALITATIVE):
        return [mpl.colors.to_rgba(c) for c in _QUALITATIVE[offset:offset + n]]
    if n <= len(_QUALITATIVE):
        return [mpl.colors.to_rgba(_QUALITATIVE[(offset + i) % len(_QUALITATIVE)]) for i in range(n)]
    cmap = mpl.colormaps["tab20"]
    return [cmap(i % 20) for i in range(n)]


def annotation(adata: AnnData, column: str, *, argname: str, cmap: str = "viridis", offset: int = 0) -> Annotation:
    """Colours of the samples by ``.obs[column]``: a qualitative palette for categories, a colormap
    for numbers; missing values are light grey."""
    import matplotlib as mpl

    values = obs_column(adata, column, argname=argname)
    grey = mpl.colors.to_rgba("#DDDDDD")
    if is_numeric(values):
        x = values.to_numpy(dtype=float)
        finite = x[np.isfinite(x)]
        lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
        norm = mpl.colors.Normalize(lo, hi if hi > lo else lo + 1)
        cm = mpl.colormaps[cmap]
        colors = np.array([cm(norm(v)) if np.isfinite(v) else grey for v in x])
        return Annotation(column, colors, None, norm, cm)
    levels = levels_of(values)
    lut = dict(zip([str(v) for v in levels], palette(len(levels), offset), strict=True))
    colors = np.array([lut.get(str(v), grey) if not pd.isna(v) else grey for v in values])
    return Annotation(column, colors, lut)


def marker_shapes(adata: AnnData, column: str) -> tuple[np.ndarray, dict[str, str]]:
    """Marker per sample by a categorical ``.obs`` column, and the legend (level -> marker)."""
    values = obs_column(adata, column, argname="marker")
    if is_numeric(values) and not pd.api.types.is_integer_dtype(values):
        raise ValueError(f"marker={column!r} is a numeric column; marker needs a categorical one (use color= for "
                         "numbers).")
    levels = [str(v) for v in levels_of(values)]
    if len(levels) > len(MARKERS):
        raise ValueError(f"marker={column!r} has {len(levels)} levels; at most {len(MARKERS)} marker shapes exist.")
    lut = dict(zip(levels, MARKERS, strict=False))
    return np.array([lut.get(str(v), "x") for v in values]), lut


def annotation_list(annotate) -> list[str]:
    """``annotate`` (None, one column or several) as a list of column names."""
    if annotate is None:
        return []
    cols = [annotate] if isinstance(annotate, str) else list(annotate)
    for c in cols:
        if not isinstance(c, str):
            raise TypeError(f"annotate must name .obs columns, got {c!r}.")
    return cols


def draw_annotation_bars(ax, adata: AnnData, columns: list[str], order: np.ndarray, *, side: str) -> list:
    """Colour bars for ``columns`` along one side (``"top"`` or ``"left"``) of a heatmap in ``ax``
    whose samples are in ``order``; returns legend handles (a bold title per column, then its levels)."""
    from matplotlib.patches import Patch

    handles = []
    n = len(columns)
    offset = 0
    cmaps = ["viridis", "cividis", "magma", "plasma"]
    for k, col in enumerate(columns):
        ann = annotation(adata, col, argname="annotate", offset=offset, cmap=cmaps[k % len(cmaps)])
        offset += 0 if ann.levels is None else len(ann.levels)
        colors = ann.colors[order]
        if side == "top":
            bar = ax.inset_axes([0.0, 1.01 + 0.045 * (n - 1 - k), 1.0, 0.04])
            bar.imshow(colors[None, :, :], aspect="auto", interpolation="nearest")
            bar.set_yticks([0], [col], fontsize=7)
        else:
            bar = ax.inset_axes([-0.035 * (n - k), 0.0, 0.03, 1.0])
            bar.imshow(colors[:, None, :], aspect="auto", interpolation="nearest")
            bar.set_xticks([0], [col], fontsize=7, rotation=90)
        bar.tick_params(length=0)
        if side == "top":
            bar.set_xticks([])
        else:
            bar.set_yticks([])
        for spine in bar.spines.values():
            spine.set_visible(False)
        if ann.levels is not None:
            handles.append(Patch(color="none", label=col))
            handles += [Patch(facecolor=c, edgecolor="none", label=lvl) for lvl, c in ann.levels.items()]
        else:
            lo, hi = ann.norm.vmin, ann.norm.vmax
            handles.append(Patch(color="none", label=col))
            handles += [Patch(facecolor=ann.cmap(ann.norm(v)), edgecolor="none", label=f"{v:.3g}") for v in (lo, hi)]
    return handles


def legend_beside_labels(ax, handles: list, **kwargs):
    """A legend right of the axes and of its right-hand tick labels (heatmaps label rows there);
    annotation titles in bold."""
    from matplotlib.transforms import offset_copy

    from ._utils import legend_outside, root_figure

    fig = root_figure(ax)
    fig.draw_without_rendering()
    width = 0.0  # of the right-hand tick labels, in points (unchanged when the layout resizes the axes)
    right_edge = ax.get_window_extent().x1
    for label in ax.get_yticklabels():
        if label.get_visible() and label.get_text():
            width = max(width, label.get_window_extent().x1 - right_edge)
    shift = width * 72.0 / fig.dpi + 8.0
    kwargs.setdefault("bbox_transform", offset_copy(ax.transAxes, fig=fig, x=shift, y=0.0, units="points"))
    leg = legend_outside(ax, handles=handles, bbox_to_anchor=(1.0, 1.0), **kwargs)
    for text, h in zip(leg.get_texts(), handles, strict=True):
        if h.get_facecolor()[3] == 0:
            text.set_fontweight("bold")
    return leg
