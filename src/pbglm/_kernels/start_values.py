"""Per-gene starting values of the DESeq2 fits, in one pass over each gene's counts.

For counts y and size factors s (normalised counts ``n = y / s``), with ``P`` the pseudo-inverse
of the design X:

* base mean and variance of n (``rowMeans``, ``rowVars``);
* DESeq2's ``roughDispEstimate``: ``max(0, sum((n - f)^2 - f) / f^2) / (m - p))`` with the least
  squares fit ``f = max(X P n, 1)``;
* the IRLS start ``P log(n + 0.1)`` (``fitNbinomGLMs``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .small_linalg import affine, cross
from .vector_math import fast_log, total


@njit(cache=True, error_model="numpy")
def _normalise(y, sf, norm, log_norm):
    for j in range(y.shape[0]):
        v = y[j] / sf[j]
        norm[j] = v
        log_norm[j] = fast_log(v + 0.1)


@njit(cache=True, error_model="numpy")
def _squared_deviations(norm, mean, out):
    for j in range(norm.shape[0]):
        d = norm[j] - mean
        out[j] = d * d


@njit(cache=True, error_model="numpy")
def _rough_terms(norm, fit, out):
    for j in range(norm.shape[0]):
        f = max(fit[j], 1.0)
        d = norm[j] - f
        out[j] = (d * d - f) / (f * f)


@njit(cache=True, error_model="numpy")
def _start_gene(y, sf, Xt, pinv, zero, beta_init):
    """One gene's starting values: fills ``beta_init``, returns (base mean, base variance, rough)."""
    p, m = Xt.shape
    norm = np.empty(m)
    work = np.empty(m)
    coef = np.empty(p)
    fit = np.empty(m)
    _normalise(y, sf, norm, work)
    cross(pinv, work, beta_init)
    mean = total(norm) / m
    _squared_deviations(norm, mean, work)
    var = total(work) / (m - 1)
    cross(pinv, norm, coef)
    affine(Xt, coef, zero, fit)
    _rough_terms(norm, fit, work)
    return mean, var, max(total(work) / (m - p), 0.0)


@njit(parallel=True, cache=True, error_model="numpy")
def start_values(Y, sf, Xt, pinv, base_mean, base_var, rough, beta_init):
    """Fill (G,) ``base_mean``, ``base_var``, ``rough`` and (G, p) ``beta_init`` for every row of Y.

    ``Xt`` is the design transposed (p x m) and ``pinv`` its pseudo-inverse (p x m).
    """
    zero = np.zeros(Y.shape[1])
    for g in prange(Y.shape[0]):
        base_mean[g], base_var[g], rough[g] = _start_gene(Y[g], sf, Xt, pinv, zero, beta_init[g])
