"""``pl.mds``: the samples on two MDS dimensions (limma's plotMDS)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .._numerics.mds import mds as _mds
from ..tl._mds import GENE_SELECTION
from ..tl._sample_matrix import sample_matrix
from ._docs import shared_docs
from ._sample_scatter import check_components, sample_scatter
from ._utils import finish, new_axes


@shared_docs
def mds(
    adata: AnnData,
    *,
    color: str | None = None,
    marker: str | None = None,
    components: Sequence[int] = (1, 2),
    labels: bool | str = False,
    key: str = "pbglm_mds",
    layer: str | None = "log_cpm",
    top: int = 500,
    gene_selection: str = "pairwise",
    size: float | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
) -> Axes | Figure:
    """Samples on two MDS dimensions of leading log-fold-change distances, as limma's ``plotMDS``.

    Uses the MDS stored by :func:`pbglm.tl.mds` under ``key``; when there is none, computes it
    (without storing it) from ``layer``. The axes say the share of variance of each dimension;
    distances between samples approximate the root mean square of their ``top`` largest log-fold
    changes.

    Parameters
    ----------
    adata
        Samples x genes AnnData.
    color
        ``.obs`` column colouring the samples.
    marker
        Categorical ``.obs`` column giving the marker shape.
    components
        The two dimensions shown, 1-based.
    labels
        ``True`` labels every sample by name; an ``.obs`` column name labels by its values.
    key
        Key of the MDS stored by :func:`pbglm.tl.mds`.
    layer
        Layer the MDS is computed from when none is stored under ``key``.
    top
        Genes behind each distance, when computing.
    gene_selection
        ``"pairwise"`` or ``"common"``, when computing.
    size
        Marker area in points^2.
    {ax_return}
    """
    if not isinstance(adata, AnnData):
        raise TypeError(f"Expected an AnnData, got {type(adata).__name__}.")
    if key in adata.obsm and key in adata.uns:
        coords = np.asarray(adata.obsm[key], dtype=float)
        ratio = np.asarray(adata.uns[key]["var_explained"], dtype=float)
        selection = str(adata.uns[key].get("gene_selection", gene_selection))
    else:
        if gene_selection not in GENE_SELECTION:
            raise ValueError(f"gene_selection={gene_selection!r} is not one of {GENE_SELECTION}.")
        values = sample_matrix(adata, layer, caller="pl.mds")
        if values.shape[0] < 3:
            raise ValueError(f"pl.mds needs at least 3 samples, got {values.shape[0]}.")
        res = _mds(values.T, int(top), gene_selection)
        coords, ratio, selection = res["coords"], res["var_explained"], gene_selection
    i, j = check_components(components, coords.shape[1])
    ax = new_axes(ax, (5.2, 4.2))
    sample_scatter(ax, adata, coords[:, [i, j]], color=color, marker=marker, labels=labels, size=size)
    name = "Leading logFC dim" if selection == "pairwise" else "Principal component"
    ax.set_xlabel(f"{name} {i + 1} ({100 * ratio[i]:.0f}%)")
    ax.set_ylabel(f"{name} {j + 1} ({100 * ratio[j]:.0f}%)")
    return finish(ax, return_fig)
