"""DESeq2's ``plotPCA``: PCA of the most variable genes, centred and not scaled (``prcomp``)."""

from __future__ import annotations

import numpy as np

__all__ = ["top_variance_pca"]


def top_variance_pca(values: np.ndarray, n_top: int, n_comps: int | None = None) -> dict:
    """PCA of the ``n_top`` genes of highest variance of a samples x genes matrix.

    Genes are ranked by their variance over samples (denominator m - 1, ties in gene order), the
    selected columns centred and decomposed by SVD. Each component's sign is set so that its
    largest loading (in absolute value) is positive; R's ``prcomp`` leaves it to LAPACK.

    Returns
    -------
    dict with ``coords`` (m x k sample scores), ``loadings`` (n_top x k), ``variance`` (k,, the
    variance of each score), ``variance_ratio`` (k,, of the total variance of the selected genes, as
    ``plotPCA``'s ``percentVar``) and ``genes`` (indices of the selected genes, by decreasing variance).
    """
    x = np.asarray(values, dtype=np.float64)
    m = x.shape[0]
    gene_var = x.var(axis=0, ddof=1)
    genes = np.argsort(-gene_var, kind="stable")[: min(n_top, x.shape[1])]
    sub = x[:, genes]
    sub = sub - sub.mean(axis=0)
    u, d, vt = np.linalg.svd(sub, full_matrices=False)
    k = d.size if n_comps is None else min(n_comps, d.size)
    flip = np.sign(vt[np.arange(d.size), np.argmax(np.abs(vt), axis=1)])
    flip[flip == 0] = 1.0
    u, vt = u * flip, vt * flip[:, None]
    variance = d**2 / (m - 1)
    total = variance.sum()
    return {
        "coords": u[:, :k] * d[:k],
        "loadings": vt[:k].T,
        "variance": variance[:k],
        "variance_ratio": variance[:k] / total if total > 0 else np.full(k, np.nan),
        "genes": genes,
    }
