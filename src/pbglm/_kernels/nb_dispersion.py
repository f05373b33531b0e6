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
Every evaluation computes ``lp`` and its derivative together in one vectorised pass over the
samples (the derivative is needed at each accepted step, i.e. at most proposals); the
lgamma/digamma terms come from :mod:`.special`, the logarithms from :mod:`.vector_math`.
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
def _sample_terms(y, mu, alpha, r, w, w1, ll, lr):
    """Per-sample terms at ``alpha`` (a loop the compiler vectorises; no sums here).

    ``ll[j] = -(y + r) log(1 + mu alpha)`` and ``lr[j] = (mu - y) / (mu + r) - log(1 + mu alpha)``:
    the per-sample likelihood ``lgamma(y + r) - lgamma(r) - y log(mu + r) - r log(1 + mu alpha)``
    without its lgamma difference and ``- y log r``, and its derivative in r without the digamma
    difference. ``log(1 + mu alpha)`` is formed as DESeq2 forms it (not as log1p), and
    ``1 / (mu + r) = alpha / (1 + mu alpha)`` shares one division with the weight.
    """
    for j in range(y.shape[0]):
        yj = y[j]
        mj = mu[j]
        u = 1.0 + mj * alpha
        l1p = fast_log(u)
        inv_u = 1.0 / u
        wj = mj * inv_u
        w[j] = wj
        w1[j] = -alpha * wj * wj
        ll[j] = -(yj + r) * l1p
        lr[j] = (mj - yj) * alpha * inv_u - l1p


@njit(cache=True, error_model="numpy")
def _large_count_terms(values, freq, n, r, lgamma_r, digamma_r, t_lg, t_dg):
    """``t_lg[k] = f_k (lgamma(v_k + r) - lgamma(r))`` and ``t_dg[k] = f_k (digamma(v_k + r) - digamma(r))``
    (0 below DIGAMMA_TABLE, whose digamma differences come from the histogram) over the distinct
    large counts (a vectorised loop)."""
    for k in range(n):
        v = values[k]
        z = v + r
        log_z = fast_log(z)
        inv_z = 1.0 / z
        t_lg[k] = freq[k] * lgamma_diff_large(v, z, log_z, inv_z, lgamma_r)
        t_dg[k] = freq[k] * digamma_diff_large(v, log_z, inv_z, digamma_r)


@njit(cache=True, error_model="numpy")
def _gene(y, mu, n_rows, p):
    """Everything the likelihood of one gene needs besides ``a``: counts, means, the histogram of the
    small counts and the largest of them, the total count, the distinct large counts with their
    multiplicities; and its work arrays (per-sample terms, p x p matrices, scratch)."""
    m = y.shape[0]
    hist = np.empty(DIGAMMA_TABLE)
    top = small_count_histogram(y, hist)
    values = np.empty(m)
    freq = np.empty(m)
    n_large = large_count_values(y, values, freq)
    data = (y, mu, hist, top, total(y), values, freq, n_large)
    work = (np.empty(m), np.empty(m), np.empty(m), np.empty(m), np.empty((p, p)), np.empty((p, p)),
            np.empty((p, p)), np.empty((p, p)), np.empty((2, n_rows)), np.empty((2, m)))
    return data, work


@njit(cache=True, error_model="numpy")
def _log_post(a, gene, work, rows, entry, prior_mean, prior_var, use_prior):
    """Cox-Reid adjusted log posterior ``lp`` at ``a = log alpha`` and its derivative ``dlp / da``.

    With ``log(mu + r) = log r + log(1 + mu alpha)`` the likelihood part is
    ``sum_j ll[j] - sum(y) log r``; the derivative is ``-r sum_j lr[j] - tr((X^T W X)^-1 X^T W' X) / 2``.
    Returns (lp, dlp); NaN for both if ``X^T W X`` is not positive definite.
    """
    y, mu, hist, top, sum_y, values, freq, n_large = gene
    w, w1, ll, lr, A, A1, L, Linv, gwork, large = work
    p = A.shape[0]
    alpha = math.exp(a)
    r = 1.0 / alpha
    lg_small, dg_small = small_count_sums(r, hist, top)
    _sample_terms(y, mu, alpha, r, w, w1, ll, lr)
    t_lg = large[0, :n_large]
    t_dg = large[1, :n_large]
    _large_count_terms(values, freq, n_large, r, lgamma(r), digamma(r), t_lg, t_dg)
    lp = total(ll) + total(t_lg) + lg_small + sum_y * a  # - sum(y) log r = sum(y) a
    dlp = -r * (total(lr) + total(t_dg) + dg_small)
    gram_pair(rows, entry, w, w1, p, A, A1, gwork)
    if not cholesky(A, L):
        return np.nan, np.nan
    logdet = 0.0
    for k in range(p):
        logdet += 2.0 * math.log(L[k, k])
    lower_inverse(L, Linv)
    lp -= 0.5 * logdet
    dlp -= 0.5 * trace_solve(Linv, A1)
    if use_prior:
        d = a - prior_mean
        lp -= 0.5 * d * d / prior_var
        dlp -= d / prior_var
    return lp, dlp


@njit(parallel=True, cache=True, error_model="numpy")
def fit_dispersion(Y, MU, rows, entry, p, log_alpha, prior_mean, prior_var, use_prior, min_log_alpha, kappa_0, tol,
                   maxit, out, iters, initial_lp, last_lp):
    """DESeq2's line-search maximisation of ``lp`` for every gene (see the module docstring).

    Outputs (G,): ``out`` log dispersion, ``iters`` proposals made (``== maxit``: not
    converged), ``initial_lp`` and ``last_lp``.
    """
    G = Y.shape[0]
    for g in prange(G):
        gene, work = _gene(Y[g], MU[g], rows.shape[0], p)
        pm = prior_mean[g]
        a = log_alpha[g]
        lp, dlp = _log_post(a, gene, work, rows, entry, pm, prior_var, use_prior)
        kappa = kappa_0
        initial_lp[g] = lp
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
            lp_new, dlp_new = _log_post(a_new, gene, work, rows, entry, pm, prior_var, use_prior)
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
                dlp = dlp_new
                kappa = min(kappa * 1.1, kappa_0)
                if accepted % 5 == 0:
                    kappa = kappa / 2.0
            else:
                kappa = kappa / 2.0
        out[g] = a
        iters[g] = it
        last_lp[g] = lp


@njit(parallel=True, cache=True, error_model="numpy")
def fit_dispersion_grid(Y, MU, rows, entry, p, grid, prior_mean, prior_var, use_prior, out):
    """DESeq2's ``fitDispGrid``: best of a coarse grid in log dispersion, then of a finer grid
    spanning one coarse step either side."""
    G = Y.shape[0]
    n = grid.shape[0]
    delta = grid[1] - grid[0]
    for g in prange(G):
        gene, work = _gene(Y[g], MU[g], rows.shape[0], p)
        pm = prior_mean[g]
        a_hat = grid[0]
        best = -np.inf
        for t in range(n):
            v, _ = _log_post(grid[t], gene, work, rows, entry, pm, prior_var, use_prior)
            if v > best:
                best = v
                a_hat = grid[t]
        lo = a_hat - delta
        step = 2.0 * delta / (n - 1)
        a_best = lo
        best = -np.inf
        for t in range(n):
            a = lo + t * step
            v, _ = _log_post(a, gene, work, rows, entry, pm, prior_var, use_prior)
            if v > best:
                best = v
                a_best = a
        out[g] = a_best
