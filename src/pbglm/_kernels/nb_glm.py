"""Batched negative-binomial GLM fits (log link, offsets, ridge), one gene per ``prange`` step.

This is DESeq2's ``fitBeta``: IRLS with ``w = mu / (1 + alpha mu)``, working response
``z = log(mu / s) + (y - mu) / mu``, a ridge ``Lambda`` on the natural-log scale, fitted means
floored at ``minmu`` inside the iterations, convergence on the relative change of the deviance.
Genes that do not converge are refit by DESeq2's optim fallback
(:mod:`pbglm._methods.deseq2_optim`).

Each iteration is one vectorised pass over the samples (fitted means with :func:`fast_exp`, the
deviance with :func:`fast_log1p`, the next weights) and one pass over the packed design products
for ``X^T W X`` and ``X^T W z``. With ``log(mu + r) = log r + log(1 + mu alpha)`` the deviance is

    -2 [ sum_j lgamma(y_j + r) - lgamma(r) - log(y_j!) + y_j (log mu_j + log alpha)
         - (y_j + r) log(1 + mu_j alpha) ]
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .small_linalg import affine, cholesky, cholesky_inverse, cholesky_solve, cross, gram, hat_values
from .special import (
    DIGAMMA_TABLE,
    lgamma,
    lgamma_diff_large,
    log_factorial_large,
    log_factorial_small,
    small_count_histogram,
    small_count_sums,
)
from .vector_math import fast_exp, fast_log, total


@njit(cache=True, error_model="numpy")
def _loglik_const(y, r, work):
    """``sum_j lgamma(y_j + r) - lgamma(r) - log(y_j!)``: the mu-free part of the log-likelihood."""
    hist = np.empty(DIGAMMA_TABLE)
    top = small_count_histogram(y, hist)
    lgamma_r = lgamma(r)
    for j in range(y.shape[0]):
        z = y[j] + r
        work[j] = lgamma_diff_large(y[j], z, fast_log(z), 1.0 / z, lgamma_r) - log_factorial_large(y[j])
    return total(work) + small_count_sums(r, hist, top)[0] - log_factorial_small(hist)


@njit(cache=True, error_model="numpy")
def _iteration_terms(y, eta, log_sf, alpha, r, log_floor, mu, w, wz, ll):
    """At ``eta``: means ``exp(max(eta, log_floor))``, their log-likelihood terms (``ll``), IRLS weights
    ``w = mu / (1 + alpha mu)`` and weighted working responses ``wz = w (log(mu / s) + (y - mu) / mu)``
    (a vectorised loop; ``w / mu = 1 / (1 + alpha mu)`` also serves ``log1p``'s correction).
    Returns how many means were floored."""
    log_alpha = math.log(alpha)
    floored = 0
    for j in range(y.shape[0]):
        floored += eta[j] < log_floor
        e = max(eta[j], log_floor)
        mj = fast_exp(e)
        x = mj * alpha
        mu[j] = mj
        u = 1.0 + x
        inv_u = 1.0 / u
        wj = mj * inv_u
        w[j] = wj
        wz[j] = wj * (e - log_sf[j]) + (y[j] - mj) * inv_u
        log1p_x = fast_log(u) + (x - (u - 1.0)) * inv_u
        ll[j] = y[j] * (e + log_alpha) - (y[j] + r) * log1p_x
    return floored


@njit(cache=True, error_model="numpy")
def _start_weights(y, eta, log_sf, alpha, log_floor, w, wz):
    """IRLS weights and weighted working responses at the starting coefficients (as
    :func:`_iteration_terms`, without the log-likelihood, which the first step does not need)."""
    for j in range(y.shape[0]):
        e = max(eta[j], log_floor)
        mj = fast_exp(e)
        inv_u = 1.0 / (1.0 + mj * alpha)
        wj = mj * inv_u
        w[j] = wj
        wz[j] = wj * (e - log_sf[j]) + (y[j] - mj) * inv_u


@njit(cache=True, error_model="numpy")
def _sandwich(rows, entry, w, lam, A, L, Ainv, cov, work, gwork, want_hat, hat_row):
    """Covariance ``(A + Lambda)^-1 A (A + Lambda)^-1`` and (optionally) hat values
    ``h_j = w_j x_j^T (A + Lambda)^-1 x_j``, A = X^T W X.
    """
    p = A.shape[0]
    gram(rows, entry, w, p, A, gwork)
    for k in range(p):
        A[k, k] += lam[k]
    if not cholesky(A, L):
        cov[:, :] = np.nan
        hat_row[:] = np.nan
        return
    cholesky_inverse(L, Ainv, work)
    for k in range(p):
        A[k, k] -= lam[k]
    half = L  # reuse: half = A Ainv
    for a in range(p):
        for b in range(p):
            s = 0.0
            for c in range(p):
                s += A[a, c] * Ainv[c, b]
            half[a, b] = s
    for a in range(p):
        for b in range(p):
            s = 0.0
            for c in range(p):
                s += Ainv[a, c] * half[c, b]
            cov[a, b] = s
    if want_hat:
        hat_values(rows, entry, Ainv, w, p, hat_row, gwork)


@njit(cache=True, error_model="numpy")
def _irls_gene(y, alpha, b, Xt, log_sf, rows, entry, lam, maxit, tol, log_floor, large, want_hat, mu_out, hat_row,
               cov):
    """IRLS of one gene from the coefficients ``b`` (updated in place); fills ``mu_out``, ``hat_row``
    (when ``want_hat``) and ``cov``; returns (iterations, deviance). See :func:`nb_glm_irls`."""
    p, m = Xt.shape
    r = 1.0 / alpha
    eta = np.empty(m)
    mu = np.empty(m)
    w = np.empty(m)
    wz = np.empty(m)
    ll = np.empty(m)
    A = np.empty((p, p))
    L = np.empty((p, p))
    Ainv = np.empty((p, p))
    rhs = np.empty(p)
    work = np.empty((2, p))
    gwork = np.empty(rows.shape[0])
    const = _loglik_const(y, r, ll)
    affine(Xt, b, log_sf, eta)
    _start_weights(y, eta, log_sf, alpha, log_floor, w, wz)
    floored = 0
    d = np.nan
    dev_old = 0.0
    it = 0
    fresh = True  # w holds the weights at the current b
    for t in range(maxit):
        it += 1
        gram(rows, entry, w, p, A, gwork)
        cross(Xt, wz, rhs)
        for k in range(p):
            A[k, k] += lam[k]
        if not cholesky(A, L):
            b[:] = np.nan
            it = maxit
            break
        cholesky_solve(L, rhs, b)
        too_large = False
        for k in range(p):
            if not abs(b[k]) <= large:
                too_large = True
        if too_large:
            it = maxit
            fresh = False
            break
        affine(Xt, b, log_sf, eta)
        floored = _iteration_terms(y, eta, log_sf, alpha, r, log_floor, mu, w, wz, ll)
        d = -2.0 * (const + total(ll))
        conv = abs(d - dev_old) / (abs(d) + 0.1)
        if math.isnan(conv):
            it = maxit
            break
        if t > 0 and conv < tol:
            break
        dev_old = d
    if np.isnan(b[0]):
        mu_out[:] = np.nan
        hat_row[:] = np.nan
        cov[:, :] = np.nan
        return it, np.nan
    if not fresh:
        affine(Xt, b, log_sf, eta)
        floored = _iteration_terms(y, eta, log_sf, alpha, r, log_floor, mu, w, wz, ll)
        d = -2.0 * (const + total(ll))
    _sandwich(rows, entry, w, lam, A, L, Ainv, cov, work, gwork, want_hat, hat_row)
    if floored > 0:  # the reported means and deviance are unfloored
        _iteration_terms(y, eta, log_sf, alpha, r, -np.inf, mu, w, wz, ll)
        d = -2.0 * (const + total(ll))
    mu_out[:] = mu
    return it, d


@njit(parallel=True, cache=True, error_model="numpy")
def nb_glm_irls(Y, log_sf, X, rows, entry, alpha, lam, beta_init, maxit, tol, minmu, large, want_hat, beta, mu_out, dev,
                iters, hat, cov):
    """IRLS for every gene (row of Y). Outputs are written into the passed arrays.

    ``beta`` is on the natural-log scale; ``mu_out`` is the unfloored fitted mean (as DESeq2
    reports it); ``dev`` the deviance ``-2 log L`` at ``mu_out``; ``iters == maxit`` flags a gene
    that did not converge (or whose coefficients exceeded ``large``); ``hat`` (only filled when
    ``want_hat``) and ``cov`` use the floored means of the last iteration.
    """
    Xt = np.ascontiguousarray(X.T)
    log_floor = math.log(minmu) if minmu > 0.0 else -np.inf
    for g in prange(Y.shape[0]):
        beta[g] = beta_init[g]
        iters[g], dev[g] = _irls_gene(Y[g], alpha[g], beta[g], Xt, log_sf, rows, entry, lam, maxit, tol, log_floor,
                                      large, want_hat, mu_out[g], hat[g], cov[g])
