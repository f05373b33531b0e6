"""limma's ``plotMDS``: classical multidimensional scaling of leading log-fold-change distances.

The squared distance of samples i and j is the mean of the ``top`` largest squared differences
``(x_gi - x_gj)^2`` over genes ("pairwise": chosen per pair), or the mean over the ``top`` genes
of largest variance around their means ("common": the same genes for every pair, making the
result a PCA of those genes). The double-centred matrix ``-D / 2`` is decomposed; a sample's
coordinate on dimension k is ``eigenvector_k * sqrt(max(lambda_k, 0))``, and the variance
explained ``max(lambda_k, 0) / sum max(lambda, 0)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .selection import select

__all__ = ["mds"]


@njit(parallel=True, cache=True, error_model="numpy")
def _pairwise_top(xt, top, out):
    """``out[i, j]``: mean of the ``top`` largest squared differences of rows i and j of ``xt``
    (samples x genes), for every i > j."""
    m, G = xt.shape
    n_pairs = m * (m - 1) // 2
    for p in prange(n_pairs):
        i = int((1.0 + np.sqrt(1.0 + 8.0 * p)) / 2.0)
        while i * (i - 1) // 2 > p:
            i -= 1
        while (i + 1) * i // 2 <= p:
            i += 1
        j = p - i * (i - 1) // 2
        buf = np.empty(G)
        for g in range(G):
            d = xt[i, g] - xt[j, g]
            buf[g] = d * d
        k = G - top
        if k > 0:
            select(buf, 0, G, k)
        s = 0.0
        for g in range(k, G):
            s += buf[g]
        out[i, j] = s / top


def mds(x: np.ndarray, top: int = 500, gene_selection: str = "pairwise") -> dict:
    """MDS of the samples (columns) of a genes x samples matrix, as ``plotMDS(x, top, gene.selection)``.

    Returns
    -------
    dict with ``coords`` (m x m; column k is dimension k + 1), ``eigenvalues`` (m,, decreasing),
    ``var_explained`` (m,), ``distances`` (m x m squared leading log-fold-change distances) and
    ``top`` (the number of genes used, at most the number of genes).
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    G, m = x.shape
    top = min(int(top), G)
    dd = np.zeros((m, m))
    if gene_selection == "pairwise":
        _pairwise_top(np.ascontiguousarray(x.T), top, dd)
    elif gene_selection == "common":
        if G > top:
            s = ((x - x.mean(axis=1, keepdims=True)) ** 2).mean(axis=1)
            x = x[np.argsort(-s, kind="stable")[:top]]
        for i in range(1, m):
            dd[i, :i] = ((x[:, [i]] - x[:, :i]) ** 2).mean(axis=0)
    else:
        raise ValueError(f"gene_selection={gene_selection!r} is not 'pairwise' or 'common'.")
    dist = dd + dd.T
    rm = dist.mean(axis=1)
    centred = dist - rm[:, None] - (rm - rm.mean())[None, :]
    lam, vec = np.linalg.eigh(-centred / 2)
    lam, vec = lam[::-1], vec[:, ::-1]
    pos = np.maximum(lam, 0.0)
    total = pos.sum()
    # a deterministic sign: the largest entry of each eigenvector positive
    flip = np.sign(vec[np.argmax(np.abs(vec), axis=0), np.arange(m)])
    flip[flip == 0] = 1.0
    vec = vec * flip
    return {"coords": vec * np.sqrt(pos), "eigenvalues": lam, "var_explained": pos / total if total > 0 else pos,
            "distances": dist, "top": top}
