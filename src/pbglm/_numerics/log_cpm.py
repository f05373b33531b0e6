"""edgeR's ``cpm(y, log = TRUE, prior.count = )``: log2 counts per million with a scaled prior count.

For a sample with effective library size ``N_j`` (library size times normalisation factor) the
prior count is ``prior_count * N_j / mean(N)``, added to every count, and the library grows by
twice that: ``log2((y_gj + prior_j) / (N_j + 2 prior_j) * 1e6)``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .._kernels.vector_math import fast_log

__all__ = ["log_cpm"]


@njit(parallel=True, cache=True, error_model="numpy")
def _log_cpm_kernel(counts, prior, log_lib, out):
    """``out[j, g]`` (samples x genes) from ``counts[g, j]``, by blocks of 64 genes; the log is
    :func:`fast_log` (the loop vectorises), -inf for a zero count with a zero prior as R's ``log2(0)``."""
    G, m = counts.shape
    inv_ln2 = 1.0 / math.log(2.0)
    bs = 64
    for b in prange((G + bs - 1) // bs):
        lo = b * bs
        hi = min(G, lo + bs)
        for j in range(m):
            p = prior[j]
            ll = log_lib[j]
            for g in range(lo, hi):
                v = counts[g, j] + p
                out[j, g] = (fast_log(v) - ll) * inv_ln2 if v > 0.0 else -np.inf


def log_cpm(counts: np.ndarray, lib_size: np.ndarray, prior_count: float = 2.0) -> np.ndarray:
    """log2 CPM of a ``(G, m)`` count matrix, as edgeR's ``cpm(..., log = TRUE)``.

    Parameters
    ----------
    counts
        ``(G, m)`` counts, genes in rows.
    lib_size
        ``(m,)`` effective library sizes (library size times normalisation factor).
    prior_count
        Average count added to every observation (scaled per library).

    Returns
    -------
    ``(m, G)`` log2 counts per million: samples in rows, as an AnnData layer holds them.
    """
    Y = np.ascontiguousarray(counts, dtype=np.float64)
    lib = np.asarray(lib_size, dtype=np.float64)
    if lib.shape != (Y.shape[1],):
        raise ValueError(f"lib_size must have one entry per sample ({Y.shape[1]}), got shape {lib.shape}.")
    if not np.all(np.isfinite(lib)) or np.any(lib <= 0):
        raise ValueError("Library sizes must be finite and positive (a sample with no counts has none).")
    if not np.isfinite(prior_count) or prior_count < 0:
        raise ValueError(f"prior_count must be a non-negative number, got {prior_count!r}.")
    prior = prior_count * lib / lib.mean()
    log_lib = np.log((lib + 2.0 * prior) * 1e-6)
    out = np.empty((Y.shape[1], Y.shape[0]))
    _log_cpm_kernel(Y, prior, log_lib, out)
    return out
