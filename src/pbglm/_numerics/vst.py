"""DESeq2's variance-stabilising transformations of normalised counts (``getVarianceStabilizedData``).

For a dispersion trend ``alpha(q)`` the transform is the integral of ``1 / sqrt(q + alpha(q) q^2)``
(on the log2 scale):

parametric (``alpha = a0 + a1 / q``)
    ``log2((1 + a1 + 2 a0 q + 2 sqrt(a0 q (1 + a1 + a0 q))) / (4 a0))``;
mean (``alpha`` constant)
    ``(2 asinh(sqrt(alpha q)) - log(alpha) - log(4)) / log(2)``;
local (any trend function)
    the trapezoidal integral of ``1 / sqrt(alpha(x) x^2 + mean(1/s) x)`` on an asinh-spaced grid,
    interpolated by a cubic spline in ``asinh(q)``, scaled so that it matches log2 between the 95%
    and 99.9% quantiles of the gene means.

Also the gene subset that ``vst()`` fits its trend on (:func:`vst_subset`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .._kernels.vector_math import fast_log

__all__ = ["vst_local", "vst_mean", "vst_parametric", "vst_subset"]


@njit(parallel=True, cache=True, error_model="numpy")
def _parametric_kernel(counts, inv_sf, a0, a1, out):
    """``out[j, g]`` (samples x genes) from ``counts[g, j]``, by blocks of 64 genes (the block's rows
    stay in cache while every sample is written); the log is :func:`fast_log`, so the loop vectorises."""
    G, m = counts.shape
    c = 1.0 + a1
    log_denom = math.log(4.0 * a0)
    inv_ln2 = 1.0 / math.log(2.0)
    bs = 64
    for b in prange((G + bs - 1) // bs):
        lo = b * bs
        hi = min(G, lo + bs)
        for j in range(m):
            s = inv_sf[j]
            for g in range(lo, hi):
                aq = a0 * counts[g, j] * s
                out[j, g] = (fast_log(c + 2.0 * aq + 2.0 * math.sqrt(aq * (c + aq))) - log_denom) * inv_ln2


def vst_parametric(counts: np.ndarray, size_factors: np.ndarray, a0: float, a1: float) -> np.ndarray:
    """The closed-form transform of ``counts / size_factors`` for the trend ``a0 + a1 / mean``.

    Parameters
    ----------
    counts
        ``(G, m)`` counts.
    size_factors
        ``(m,)`` size factors.
    a0, a1
        DESeq2's ``asymptDisp`` and ``extraPois`` (both positive).

    Returns
    -------
    ``(m, G)`` transformed values (log2 scale), samples in rows as an AnnData layer holds them.
    """
    Y = np.ascontiguousarray(counts, dtype=np.float64)
    out = np.empty((Y.shape[1], Y.shape[0]))
    _parametric_kernel(Y, 1.0 / np.asarray(size_factors, dtype=np.float64), float(a0), float(a1), out)
    return out


def vst_mean(counts: np.ndarray, size_factors: np.ndarray, alpha: float) -> np.ndarray:
    """The transform for a constant dispersion ``alpha`` (``fitType = "mean"``); ``(m, G)``."""
    q = np.asarray(counts, dtype=np.float64).T / np.asarray(size_factors, dtype=np.float64)[:, None]
    return np.ascontiguousarray((2.0 * np.arcsinh(np.sqrt(alpha * q)) - np.log(alpha) - np.log(4.0)) / np.log(2.0))


def vst_local(counts: np.ndarray, size_factors: np.ndarray, trend) -> np.ndarray:
    """The numerically integrated transform for a dispersion trend function ``trend(mean)``; ``(m, G)``."""
    from scipy.interpolate import CubicSpline

    sf = np.asarray(size_factors, dtype=np.float64)
    q = np.asarray(counts, dtype=np.float64) / sf[None, :]
    xg = np.sinh(np.linspace(0.0, np.arcsinh(q.max()), 1000))[1:]
    base_var = trend(xg) * xg**2 + np.mean(1.0 / sf) * xg
    integrand = 1.0 / np.sqrt(base_var)
    knots = np.arcsinh((xg[1:] + xg[:-1]) / 2)
    spline = CubicSpline(knots, np.cumsum((xg[1:] - xg[:-1]) * (integrand[1:] + integrand[:-1]) / 2))
    means = q.mean(axis=1)
    h1, h2 = np.quantile(means, 0.95), np.quantile(means, 0.999)
    eta = (np.log2(h2) - np.log2(h1)) / (spline(np.arcsinh(h2)) - spline(np.arcsinh(h1)))
    xi = np.log2(h1) - eta * spline(np.arcsinh(h1))
    return np.ascontiguousarray((eta * spline(np.arcsinh(q)) + xi).T)


def vst_subset(base_mean: np.ndarray, nsub: int, min_mean: float = 5.0) -> np.ndarray | None:
    """Indices of the ``nsub`` genes ``vst()`` fits its trend on, or ``None`` when there are too few.

    Of the genes with mean normalised count above ``min_mean``, ordered by that mean (ties in gene
    order), those at the evenly spaced ranks ``round(seq(1, n, length = nsub))`` (R's ``seq`` and
    its rounding half to even), as DESeq2 selects them.
    """
    above = np.nonzero(base_mean > min_mean)[0]
    n = above.size
    if n < nsub or base_mean.size < nsub:
        return None
    order = above[np.argsort(base_mean[above], kind="stable")]
    if nsub == 1:
        ranks = np.array([1.0])
    else:
        n1 = nsub - 1
        ranks = np.concatenate([[1.0], 1.0 + np.arange(1, n1) * ((n - 1.0) / n1), [float(n)]])
    return order[np.round(ranks).astype(np.int64) - 1]
