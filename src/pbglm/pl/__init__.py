"""Plotting: volcano and MA plots, effect sizes, coefficients, dispersions, p-values, design, counts;
samples (PCA, MDS, distances), heatmaps of top genes, pseudobulk and gene-filter QC.

Every function takes the AnnData first, draws into ``ax`` (or a new figure) and returns the
Axes, or the Figure with ``return_fig=True``.
"""

from ._coefficients import coefficients
from ._counts import counts
from ._design import design
from ._dispersions import dispersions
from ._effect_sizes import effect_sizes
from ._filter_by_expr import filter_by_expr
from ._heatmap import heatmap
from ._ma import ma
from ._mds import mds
from ._pca import pca
from ._pseudobulk_qc import pseudobulk_qc
from ._pvalue_hist import pvalue_hist
from ._sample_distances import sample_distances
from ._volcano import volcano

__all__ = [
    "coefficients", "counts", "design", "dispersions", "effect_sizes", "filter_by_expr", "heatmap", "ma", "mds", "pca",
    "pseudobulk_qc", "pvalue_hist", "sample_distances", "volcano",
]
