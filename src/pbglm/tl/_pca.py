"""``tl.pca``: DESeq2's plotPCA (top-variance genes, centred, unscaled)."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from anndata import AnnData

from .._numerics.pca import top_variance_pca
from .._storage_keys import check_key_added
from ._sample_matrix import sample_matrix

__all__ = ["pca"]


def pca(
    adata: AnnData,
    *,
    layer: str | None = "vst",
    n_top: int = 500,
    n_comps: int | None = None,
    key_added: str = "pbglm_pca",
    copy: bool = False,
) -> AnnData | None:
    """PCA of the samples on their most variable genes, as DESeq2's ``plotPCA``.

    The ``n_top`` genes with the largest variance over samples are centred (not scaled) and
    decomposed; the variance ratios are relative to the total variance of those genes, as
    ``plotPCA``'s ``percentVar``. Each component's sign makes its largest loading positive.

    Parameters
    ----------
    adata
        Samples x genes AnnData with a transformed layer (:func:`pbglm.pp.vst`, :func:`pbglm.pp.rlog`
        or :func:`pbglm.pp.log_cpm`).
    layer
        Layer to use (``None``: ``adata.X``).
    n_top
        Number of most variable genes used.
    n_comps
        Number of components kept (all, at most the number of samples, when ``None``).
    key_added
        Where the result is written.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    ``None``, or a copy with ``copy=True``. Writes ``.obsm[key_added]`` (samples x components
    scores) and ``.uns[key_added]``: ``variance``, ``variance_ratio``, ``genes`` (names of the genes
    used, by decreasing variance), ``loadings`` (those genes x components), ``n_top``, ``layer``.
    (Loadings are not put in ``.varm``, where :func:`pbglm.tl.fit` clears ``pbglm_*`` entries.)
    """
    for name, value in (("n_top", n_top), ("n_comps", n_comps)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, Integral) or value < 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    check_key_added(adata, key_added, slot="obsm")
    values = sample_matrix(adata, layer, caller="tl.pca")
    res = top_variance_pca(values, int(n_top), None if n_comps is None else int(n_comps))
    adata = adata.copy() if copy else adata
    adata.obsm[key_added] = res["coords"]
    adata.uns[key_added] = {
        "variance": res["variance"],
        "variance_ratio": res["variance_ratio"],
        "genes": np.asarray(adata.var_names[res["genes"]].astype(str)),
        "loadings": res["loadings"],
        "n_top": int(n_top),
        "layer": "None" if layer is None else layer,
    }
    return adata if copy else None
