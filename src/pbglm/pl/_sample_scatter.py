"""Samples as points in two dimensions (PCA, MDS), coloured and shaped by ``.obs`` columns."""

from __future__ import annotations

import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from ._sample_annotations import annotation, marker_shapes, obs_column
from ._utils import label_points, legend_outside

SIZE = 60


def check_components(components, n_available: int) -> tuple[int, int]:
    """1-based ``components`` as 0-based column indices, validated."""
    try:
        c1, c2 = (int(c) for c in components)
    except (TypeError, ValueError):
        raise ValueError(f"components must be two 1-based numbers, e.g. (1, 2); got {components!r}.") from None
    for c in (c1, c2):
        if not 1 <= c <= n_available:
            raise ValueError(f"components={components!r}: only components 1..{n_available} are available.")
    if c1 == c2:
        raise ValueError(f"components={components!r} names the same component twice.")
    return c1 - 1, c2 - 1


def sample_scatter(ax: Axes, adata: AnnData, xy: np.ndarray, *, color, marker, labels, size: float | None) -> None:
    """Draw the samples at ``xy`` (m x 2) with colours by ``color`` and shapes by ``marker``."""
    m = xy.shape[0]
    ann = None if color is None else annotation(adata, color, argname="color")
    colors = np.tile(np.array([[0.0, 0.447, 0.698, 1.0]]), (m, 1)) if ann is None else ann.colors
    if marker is None:
        shapes, shape_lut = np.full(m, "o"), None
    else:
        shapes, shape_lut = marker_shapes(adata, marker)
    s = SIZE if size is None else size
    for shape in dict.fromkeys(shapes):
        sel = shapes == shape
        ax.scatter(xy[sel, 0], xy[sel, 1], c=colors[sel], marker=shape, s=s, edgecolors="white", linewidths=0.6,
                   zorder=3)
    handles = []
    if ann is not None and ann.levels is not None:
        handles.append(Line2D([], [], linestyle="none", label=color))
        handles += [Line2D([], [], marker="o", linestyle="none", markerfacecolor=c, markeredgecolor="white",
                           markersize=7, label=lvl) for lvl, c in ann.levels.items()]
    if shape_lut is not None:
        handles.append(Line2D([], [], linestyle="none", label=marker))
        handles += [Line2D([], [], marker=mk, linestyle="none", markerfacecolor="#666666", markeredgecolor="white",
                           markersize=7, label=lvl) for lvl, mk in shape_lut.items()]
    if handles:
        leg = legend_outside(ax, handles=handles)
        for text, h in zip(leg.get_texts(), handles, strict=True):
            if h.get_marker() in ("None", None, ""):
                text.set_fontweight("bold")
    if ann is not None and ann.levels is None:
        import matplotlib as mpl

        sm = mpl.cm.ScalarMappable(norm=ann.norm, cmap=ann.cmap)
        ax.figure.colorbar(sm, ax=ax, label=color, shrink=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    ax.axhline(0, color="#DDDDDD", lw=0.6, zorder=1)
    ax.axvline(0, color="#DDDDDD", lw=0.6, zorder=1)
    ax.set_aspect("equal", adjustable="datalim")
    if labels is not False and labels is not None:
        if labels is True:
            names = adata.obs_names.astype(str)
        else:
            names = obs_column(adata, labels, argname="labels").astype(str).to_numpy()
        ax.margins(0.12)
        label_points(ax, xy[:, 0], xy[:, 1], names, avoid_x=xy[:, 0], avoid_y=xy[:, 1])

