"""``pl.pca``: the samples on two principal components (DESeq2's plotPCA)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .._numerics.pca import top_variance_pca
from ..tl._sample_matrix import sample_matrix
from ._docs import shared_docs
from ._sample_scatter import check_components, sample_scatter
from ._utils import finish, new_axes


@shared_docs
def pca(
    adata: AnnData,
    *,
    color: str | None = None,
    marker: str | None = None,
    components: Sequence[int] = (1, 2),
    labels: bool | str = False,
    key: str = "pbglm_pca",
    layer: str | None = "vst",
    n_top: int = 500,
    size: float | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
) -> Axes | Figure:
    """Samples on two principal components, with the percentage of variance on the axes.

    Uses the PCA stored by :func:`pbglm.tl.pca` under ``key``; when there is none, computes it
    (without storing it) from ``layer`` on the ``n_top`` most variable genes, as DESeq2's
    ``plotPCA``. Axes are drawn to the same scale, so distances read the same in both directions.

    Parameters
    ----------
    adata
        Samples x genes AnnData.
    color
        ``.obs`` column colouring the samples (categories: a palette and a legend; numbers: a
        colormap and a colour bar).
    marker
        Categorical ``.obs`` column giving the marker shape (e.g. a batch or donor).
    components
        The two components shown, 1-based.
    labels
        ``True`` labels every sample by name; an ``.obs`` column name labels by its values.
    key
        Key of the PCA stored by :func:`pbglm.tl.pca`.
    layer
        Layer the PCA is computed from when none is stored under ``key``.
    n_top
        Most variable genes used when computing.
    size
        Marker area in points^2.
    {ax_return}
    """
    if not isinstance(adata, AnnData):
        raise TypeError(f"Expected an AnnData, got {type(adata).__name__}.")
    if key in adata.obsm and key in adata.uns:
        coords = np.asarray(adata.obsm[key], dtype=float)
        ratio = np.asarray(adata.uns[key]["variance_ratio"], dtype=float)
    else:
        res = top_variance_pca(sample_matrix(adata, layer, caller="pl.pca"), int(n_top))
        coords, ratio = res["coords"], res["variance_ratio"]
    i, j = check_components(components, coords.shape[1])
    ax = new_axes(ax, (5.2, 4.2))
    sample_scatter(ax, adata, coords[:, [i, j]], color=color, marker=marker, labels=labels, size=size)
    ax.set_xlabel(f"PC{i + 1}: {100 * ratio[i]:.0f}% variance")
    ax.set_ylabel(f"PC{j + 1}: {100 * ratio[j]:.0f}% variance")
    return finish(ax, return_fig)
