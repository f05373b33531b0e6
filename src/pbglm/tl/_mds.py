"""``tl.mds``: limma's plotMDS (leading log-fold-change distances)."""

from __future__ import annotations

from numbers import Integral

from anndata import AnnData

from .._numerics.mds import mds as _mds
from .._storage_keys import check_key_added
from ._sample_matrix import sample_matrix

__all__ = ["mds"]

GENE_SELECTION = ("pairwise", "common")


def mds(
    adata: AnnData,
    *,
    layer: str | None = "log_cpm",
    top: int = 500,
    gene_selection: str = "pairwise",
    key_added: str = "pbglm_mds",
    copy: bool = False,
) -> AnnData | None:
    """Multidimensional scaling of the samples, as limma's (and edgeR's) ``plotMDS``.

    The distance of two samples is the root mean square of their ``top`` largest log-fold
    changes: chosen per pair of samples (``"pairwise"``, the "leading log-fold-change"), or the
    same ``top`` genes of largest variance for every pair (``"common"``, equivalent to a PCA).
    The samples are placed by classical scaling of those distances.

    Parameters
    ----------
    adata
        Samples x genes AnnData with log-scale values, e.g. from :func:`pbglm.pp.log_cpm`
        (edgeR's ``plotMDS.DGEList`` uses log-CPM with ``prior.count = 2``).
    layer
        Layer to use (``None``: ``adata.X``).
    top
        Number of genes behind each distance.
    gene_selection
        ``"pairwise"`` or ``"common"``.
    key_added
        Where the result is written.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    ``None``, or a copy with ``copy=True``. Writes ``.obsm[key_added]`` (samples x dimensions
    coordinates; ``[:, 0]`` and ``[:, 1]`` are ``plotMDS``'s ``x`` and ``y``), ``.obsp[key_added]``
    (squared leading log-fold-change distances) and ``.uns[key_added]``: ``var_explained``,
    ``eigenvalues``, ``top``, ``gene_selection``, ``layer``.
    """
    if isinstance(top, bool) or not isinstance(top, Integral) or top < 1:
        raise ValueError(f"top must be a positive integer, got {top!r}.")
    if gene_selection not in GENE_SELECTION:
        raise ValueError(f"gene_selection={gene_selection!r} is not one of {GENE_SELECTION}.")
    check_key_added(adata, key_added, slot="obsm")
    values = sample_matrix(adata, layer, caller="tl.mds")
    if values.shape[0] < 3:
        raise ValueError(f"tl.mds needs at least 3 samples (as limma's plotMDS), got {values.shape[0]}.")
    res = _mds(values.T, int(top), gene_selection)
    adata = adata.copy() if copy else adata
    adata.obsm[key_added] = res["coords"]
    adata.obsp[key_added] = res["distances"]
    adata.uns[key_added] = {
        "var_explained": res["var_explained"],
        "eigenvalues": res["eigenvalues"],
        "top": int(res["top"]),
        "gene_selection": gene_selection,
        "layer": "None" if layer is None else layer,
    }
    return adata if copy else None
