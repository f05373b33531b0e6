"""``pl.sample_distances``: clustered heatmap of Euclidean distances between samples."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..tl._sample_matrix import sample_matrix
from ._docs import shared_docs
from ._sample_annotations import annotation_list, draw_annotation_bars, legend_beside_labels
from ._utils import finish, new_axes

LINKAGES = ("complete", "average", "single", "ward")


@shared_docs
def sample_distances(
    adata: AnnData,
    *,
    layer: str | None = "vst",
    annotate: str | Sequence[str] | None = None,
    cluster: bool = True,
    linkage: str = "complete",
    cmap: str = "Blues_r",
    ax: Axes | None = None,
    return_fig: bool = False,
) -> Axes | Figure:
    """Euclidean distances between samples, clustered, with ``.obs`` annotation bars.

    The DESeq2 vignette's figure (``dist(t(assay(vsd)))`` drawn by ``pheatmap``): distances
    over all genes of a transformed layer, samples ordered by hierarchical clustering (a dendrogram
    above), darker for closer samples.

    Parameters
    ----------
    adata
        Samples x genes AnnData.
    layer
        Layer the distances are computed on (``None``: ``adata.X``); :func:`pbglm.pp.vst` writes
        ``"vst"``.
    annotate
        ``.obs`` column(s) drawn as colour bars beside the rows.
    cluster
        Order the samples by hierarchical clustering (otherwise as in ``adata``).
    linkage
        Clustering linkage: ``"complete"`` (pheatmap's default), ``"average"``, ``"single"`` or
        ``"ward"``.
    cmap
        Colormap of the distances.
    {ax_return}
    """
    from scipy.cluster import hierarchy
    from scipy.spatial.distance import pdist, squareform

    if linkage not in LINKAGES:
        raise ValueError(f"linkage={linkage!r} is not one of {LINKAGES}.")
    columns = annotation_list(annotate)
    values = sample_matrix(adata, layer, caller="pl.sample_distances")
    condensed = pdist(values, "euclidean")
    dist = squareform(condensed)
    m = dist.shape[0]
    ax = new_axes(ax, (6.4, 5.0))
    if cluster and m > 2:
        tree = hierarchy.linkage(condensed, method=linkage)
        order = np.asarray(hierarchy.leaves_list(tree))
        den = ax.inset_axes([0.0, 1.01, 1.0, 0.16])
        hierarchy.dendrogram(tree, ax=den, color_threshold=0, above_threshold_color="#555555", no_labels=True)
        den.set_axis_off()
    else:
        order = np.arange(m)
    im = ax.imshow(dist[np.ix_(order, order)], cmap=cmap, interpolation="nearest", aspect="auto")
    names = adata.obs_names.astype(str)[order]
    ax.set_xticks(np.arange(m), names, rotation=90, fontsize=7)
    ax.set_yticks(np.arange(m), names, fontsize=7)
    ax.yaxis.tick_right()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    handles = draw_annotation_bars(ax, adata, columns, order, side="left")
    cbar = ax.figure.colorbar(im, ax=ax, location="bottom", shrink=0.5, pad=0.02, aspect=30)
    cbar.set_label("Euclidean distance" + ("" if layer is None else f" ({layer})"), fontsize=8)
    if handles:
        legend_beside_labels(ax, handles, fontsize=7)
    return finish(ax, return_fig)
