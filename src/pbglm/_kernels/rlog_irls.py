"""Batched IRLS of DESeq2's rlog model, one gene per ``prange`` step, in O(samples) per iteration.

The rlog design is an intercept plus one indicator per sample, ``X = [1 | I]``, so the ridge
system ``(X^T W X + Lambda) b = X^T W z`` is an arrow matrix: with ``d_j = w_j + lambda_j``,

    b_0 = (sum_j wz_j - sum_j w_j wz_j / d_j) / (sum_j w_j + lambda_0 - sum_j w_j^2 / d_j),
    b_j = (wz_j - w_j b_0) / d_j.

The iterations are those of :func:`pbglm._kernels.nb_glm.nb_glm_irls` (DESeq2's ``fitBeta``):
weights ``w = mu / (1 + alpha mu)`` at means floored at ``minmu``, convergence on the relative
change of the deviance, a gene whose coefficients leave ``+-large`` flagged as not converged.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .nb_glm import _iteration_terms, _loglik_const, _start_weights
from .vector_math import total


@njit(cache=True, error_model="numpy")
def _rlog_gene(y, alpha, b, log_sf, lam0, lam, maxit, tol, log_floor, large):
    """IRLS of one gene from ``b`` (length m + 1, updated in place); returns the iterations."""
    m = y.shape[0]
    r = 1.0 / alpha
    eta = np.empty(m)
    mu = np.empty(m)
    w = np.empty(m)
    wz = np.empty(m)
    ll = np.empty(m)
    const = _loglik_const(y, r, ll)
    for j in range(m):
        eta[j] = b[0] + b[j + 1] + log_sf[j]
    _start_weights(y, eta, log_sf, alpha, log_floor, w, wz)
    dev_old = 0.0
    it = 0
    for t in range(maxit):
        it += 1
        num = 0.0
        den = lam0
        for j in range(m):
            dj = w[j] + lam[j]
            num += wz[j] - w[j] * wz[j] / dj
            den += w[j] - w[j] * w[j] / dj
        b0 = num / den
        b[0] = b0
        too_large = not abs(b0) <= large
        for j in range(m):
            bj = (wz[j] - w[j] * b0) / (w[j] + lam[j])
            b[j + 1] = bj
            too_large |= not abs(bj) <= large
            eta[j] = b0 + bj + log_sf[j]
        if too_large:
            return maxit
        _iteration_terms(y, eta, log_sf, alpha, r, log_floor, mu, w, wz, ll)
        d = -2.0 * (const + total(ll))
        conv = abs(d - dev_old) / (abs(d) + 0.1)
        if math.isnan(conv):
            return maxit
        if t > 0 and conv < tol:
            break
        dev_old = d
    return it


@njit(parallel=True, cache=True, error_model="numpy")
def rlog_irls(Y, log_sf, alpha, lam0, lam, beta_init, maxit, tol, minmu, large, beta, iters):
    """Fit every gene (row of ``Y``): ``beta`` (G x (m + 1), natural log: intercept, then one
    coefficient per sample) and ``iters`` (``maxit`` flags no convergence) are written in place."""
    log_floor = math.log(minmu) if minmu > 0.0 else -np.inf
    for g in prange(Y.shape[0]):
        beta[g] = beta_init[g]
        iters[g] = _rlog_gene(Y[g], alpha[g], beta[g], log_sf, lam0, lam, maxit, tol, log_floor, large)
