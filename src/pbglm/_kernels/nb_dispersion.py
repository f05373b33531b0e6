"""Batched Cox-Reid adjusted profile likelihood maximisation for NB dispersions (DESeq2 ``fitDisp``).

For one gene with counts y, fixed means mu and design X, in ``a = log(alpha)`` (``r = 1/alpha``):

    lp(a) = sum_j [lgamma(y_j + r) - lgamma(r) - y_j log(mu_j + r) - r log(1 + mu_j alpha)]
            - 1/2 log det(X^T W X)                       W = diag(mu / (1 + alpha mu))
            [ - (a - a_prior)^2 / (2 s2_prior) ]        (MAP only)

:func:`fit_dispersion` is DESeq2's optimiser, step for step: gradient ascent in ``a`` with an
Armijo backtracking line search (step ``kappa`` starting at ``kappa_0``, halved on rejection,
grown by 1.1 and halved every 5 accepted steps), stopping when an accepted step raises ``lp`` by
less than ``tol``, when ``a`` drops below ``min_log_alpha``, or after ``maxit`` proposals.
Reproducing the optimiser (not just the optimum) matters: DESeq2 keeps the start value when the
search barely moves, and refits genes that hit ``maxit`` on a grid (:func:`fit_dispersion_grid`).
About half of the proposals are rejected, so ``lp`` is evaluated alone (:func:`_log_post`), keeping
the per-sample pieces its derivative reuses (:func:`_dlog_post`, called only at accepted points).
Per-sample loops vectorise (logarithms from :mod:`.vector_math`, lgamma/digamma series from
:mod:`.special`); counts below 25 enter through their histogram and larger counts once per
distinct value.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .small_linalg import cholesky, gram_pair, lower_inverse, trace_solve
from .special import (
    DIGAMMA_TABLE,
    digamma,
    digamma_diff_large,
    large_count_values,
    lgamma,
    lgamma_diff_large,
    small_count_histogram,
    small_count_sums,
)
from .vector_math import fast_log, total

_EPSILON = 1e-4  # Armijo constant


@njit(cache=True, error_model="numpy")
def _gene(y, mu, n_rows, p):
    """Everything the likelihood of one gene needs besides ``a``: counts, means, the histogram of the
    small counts and the largest of them, the total count, the distinct large counts with their
    multiplicities; and its work arrays: per-sample (6, m), per distinct count (4, m), p x p (4, p, p),
    Gram scratch, and two scalars kept from ``lp`` for its derivative."""
    m = y.shape[0]
    hist = np.empty(DIGAMMA_TABLE)
    top = small_count_histogram(y, hist)
    values = np.empty(m)
    freq = np.empty(m)
    n_large = large_count_values(y, values, freq)
    data = (y, mu, hist, top, total(y), values, freq, n_large)
    work = (np.empty((6, m)), np.empty((4, m)), np.empty((4, p, p)), np.empty((2, n_rows)), np.empty(2))
    return data, work


@njit(cache=True, error_model="numpy")
def _lp_sample_terms(y, mu, alpha, r, w, w2, log_u, inv_u, ll):
    """Per sample, with ``u = 1 + mu alpha``: ``w = mu / u``, ``w^2``, ``log u``, ``1 / u`` and
    ``ll = -(y + r) log u`` (the likelihood without its lgamma difference and ``- y log r``).
    ``log u`` is formed as DESeq2 forms it (not as log1p)."""
    for j in range(y.shape[0]):
        u = 1.0 + mu[j] * alpha
        lu = fast_log(u)
        iu = 1.0 / u
        log_u[j] = lu
        inv_u[j] = iu
        wj = mu[j] * iu
        w[j] = wj
        w2[j] = wj * wj
        ll[j] = -(y[j] + r) * lu


@njit(cache=True, error_model="numpy")
def _dlp_sample_terms(y, mu, alpha, log_u, inv_u, lr):
    """Per sample: ``lr``, the derivative in r of the per-sample likelihood without its digamma
    difference: ``(mu - y) / (mu + r) - log u``, with ``1 / (mu + r) = alpha / u``."""
    for j in range(y.shape[0]):
        lr[j] = (mu[j] - y[j]) * alpha * inv_u[j] - log_u[j]


@njit(cache=True, error_model="numpy")
def _large_lgamma_terms(values, freq, n, r, lgamma_r, log_z, inv_z, t):
    """Per distinct large count v (multiplicity f): ``t = f (lgamma(v + r) - lgamma(r))``, keeping
    ``log z`` and ``1 / z`` (z = v + r) for the digamma terms."""
    for k in range(n):
        z = values[k] + r
        lz = fast_log(z)
        iz = 1.0 / z
        log_z[k] = lz
        inv_z[k] = iz
        t[k] = freq[k] * lgamma_diff_large(values[k], z, lz, iz, lgamma_r)


@njit(cache=True, error_model="numpy")
def _large_digamma_terms(values, freq, n, digamma_r, log_z, inv_z, t):
    """Per distinct large count: ``t = f (digamma(v + r) - digamma(r))`` (0 below DIGAMMA_TABLE,
    whose differences come from the histogram)."""
    for k in range(n):
        t[k] = freq[k] * digamma_diff_large(values[k], log_z[k], inv_z[k], digamma_r)


@njit(cache=True, error_model="numpy")
def _log_post(a, gene, work, rows, entry, prior_mean, prior_var, use_prior):
    """Cox-Reid adjusted log posterior ``lp`` at ``a = log alpha`` (NaN if ``X^T W X`` is not positive
    definite). With ``log(mu + r) = log r + log(1 + mu alpha)`` the likelihood is
    ``sum_j ll[j] + lgamma terms - sum(y) log r``. Leaves in ``work`` what :func:`_dlog_post` needs."""
    y, mu, hist, top, sum_y, values, freq, n_large = gene
    per_sample, per_value, mats, gwork, kept = work
    A = mats[0]
    L = mats[2]
    p = A.shape[0]
    alpha = math.exp(a)
    r = 1.0 / alpha
    lg_small, dg_small = small_count_sums(r, hist, top)
    kept[0] = dg_small
    _lp_sample_terms(y, mu, alpha, r, per_sample[0], per_sample[1], per_sample[2], per_sample[3], per_sample[4])
    _large_lgamma_terms(values, freq, n_large, r, lgamma(r), per_value[0], per_value[1], per_value[2])
    lp = total(per_sample[4]) + total(per_value[2, :n_large]) + lg_small + sum_y * a  # -sum(y) log r = sum(y) a
    # X^T W X, and X^T W^2 X for the derivative (X^T W' X = -alpha X^T W^2 X): one pass over the design
    gram_pair(rows, entry, per_sample[0], per_sample[1], p, A, mats[1], gwork)
    if not cholesky(A, L):
        kept[1] = 0.0
        return np.nan
    kept[1] = 1.0
    logdet = 0.0
    for k in range(p):
        logdet += 2.0 * math.log(L[k, k])
    lp -= 0.5 * logdet
    if use_prior:
        d = a - prior_mean
        lp -= 0.5 * d * d / prior_var
    return lp


@njit(cache=True, error_model="numpy")
def _dlog_post(a, gene, work, rows, entry, prior_mean, prior_var, use_prior):
    """``dlp / da`` at the ``a`` of the last :func:`_log_post` call on ``work``:
    ``-r sum_j lr[j] - tr((X^T W X)^-1 X^T W' X) / 2`` (NaN if ``X^T W X`` was not positive definite)."""
    y, mu, hist, top, sum_y, values, freq, n_large = gene
    per_sample, per_value, mats, gwork, kept = work
    if kept[1] == 0.0:
        return np.nan
    W2 = mats[1]
    L = mats[2]
    Linv = mats[3]
    alpha = math.exp(a)
    r = 1.0 / alpha
    _dlp_sample_terms(y, mu, alpha, per_sample[2], per_sample[3], per_sample[5])
    _large_digamma_terms(values, freq, n_large, digamma(r), per_value[0], per_value[1], per_value[3])
    dlp = -r * (total(per_sample[5]) + total(per_value[3, :n_large]) + kept[0])
    lower_inverse(L, Linv)
    dlp += 0.5 * alpha * trace_solve(Linv, W2)
    if use_prior:
        dlp -= (a - prior_mean) / prior_var
    return dlp


@njit(cache=True, error_model="numpy")
def _line_search_gene(y, mu, rows, entry, p, a, prior_mean, prior_var, use_prior, min_log_alpha, kappa_0, tol, maxit):
    """DESeq2's line search for one gene from ``a``; returns (a, proposals, initial lp, last lp)."""
    gene, work = _gene(y, mu, rows.shape[0], p)
    lp = _log_post(a, gene, work, rows, entry, prior_mean, prior_var, use_prior)
    dlp = _dlog_post(a, gene, work, rows, entry, prior_mean, prior_var, use_prior)
    lp0 = lp
    kappa = kappa_0
    it = 0
    accepted = 0
    for _t in range(maxit):
        it += 1
        a_propose = a + kappa * dlp
        if a_propose < -30.0:
            kappa = (-30.0 - a) / dlp
        if a_propose > 10.0:
            kappa = (10.0 - a) / dlp
        a_new = a + kappa * dlp
        lp_new = _log_post(a_new, gene, work, rows, entry, prior_mean, prior_var, use_prior)
        theta_kappa = -lp_new
        theta_hat_kappa = -lp - kappa * _EPSILON * dlp * dlp
        if theta_kappa <= theta_hat_kappa:
            accepted += 1
            a = a_new
            change = lp_new - lp
            lp = lp_new
            if change < tol:
                break
            if a < min_log_alpha:
                break
            dlp = _dlog_post(a, gene, work, rows, entry, prior_mean, prior_var, use_prior)
            kappa = min(kappa * 1.1, kappa_0)
            if accepted % 5 == 0:
                kappa = kappa / 2.0
        else:
            kappa = kappa / 2.0
    return a, it, lp0, lp


@njit(parallel=True, cache=True, error_model="numpy")
def fit_dispersion(Y, MU, rows, entry, p, log_alpha, prior_mean, prior_var, use_prior, min_log_alpha, kappa_0, tol,
                   maxit, out, iters, initial_lp, last_lp):
    """DESeq2's line-search maximisation of ``lp`` for every gene (see the module docstring).

    Outputs (G,): ``out`` log dispersion, ``iters`` proposals made (``== maxit``: not
    converged), ``initial_lp`` and ``last_lp``.
    """
    for g in prange(Y.shape[0]):
        out[g], iters[g], initial_lp[g], last_lp[g] = _line_search_gene(
            Y[g], MU[g], rows, entry, p, log_alpha[g], prior_mean[g], prior_var, use_prior, min_log_alpha, kappa_0,
            tol, maxit)


@njit(cache=True, error_model="numpy")
def _grid_gene(y, mu, rows, entry, p, grid, prior_mean, prior_var, use_prior):
    """DESeq2's ``fitDispGrid`` for one gene: returns the best log dispersion."""
    n = grid.shape[0]
    delta = grid[1] - grid[0]
    gene, work = _gene(y, mu, rows.shape[0], p)
    a_hat = grid[0]
    best = -np.inf
    for t in range(n):
        v = _log_post(grid[t], gene, work, rows, entry, prior_mean, prior_var, use_prior)
        if v > best:
            best = v
            a_hat = grid[t]
    lo = a_hat - delta
    step = 2.0 * delta / (n - 1)
    a_best = lo
    best = -np.inf
    for t in range(n):
        a = lo + t * step
        v = _log_post(a, gene, work, rows, entry, prior_mean, prior_var, use_prior)
        if v > best:
            best = v
            a_best = a
    return a_best


@njit(parallel=True, cache=True, error_model="numpy")
def fit_dispersion_grid(Y, MU, rows, entry, p, grid, prior_mean, prior_var, use_prior, out):
    """DESeq2's ``fitDispGrid``: best of a coarse grid in log dispersion, then of a finer grid
    spanning one coarse step either side."""
    for g in prange(Y.shape[0]):
        out[g] = _grid_gene(Y[g], MU[g], rows, entry, p, grid, prior_mean[g], prior_var, use_prior)
