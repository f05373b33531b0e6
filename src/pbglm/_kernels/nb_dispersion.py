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
The likelihood terms that depend only on the count value are summed once per distinct count.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .small_linalg import cholesky, cholesky_inverse, gram
from .special import SMALL_Y, SMALL_Y_LGAMMA, digamma, digamma_diff, lgamma, lgamma_diff

_EPSILON = 1e-4  # Armijo constant


@njit(cache=True)
def _count_table(y, values, freq):
    """Distinct values of y and their multiplicities; returns how many there are."""
    s = np.sort(y)
    n = 0
    for j in range(s.shape[0]):
        if n > 0 and s[j] == values[n - 1]:
            freq[n - 1] += 1.0
        else:
            values[n] = s[j]
            freq[n] = 1.0
            n += 1
    return n




@njit(cache=True)
def _log_post(a, y, mu, values, freq, nv, Pt, p, prior_mean, prior_var, use_prior, A, L, w):
    alpha = math.exp(a)
    r = 1.0 / alpha
    ll = 0.0
    n_big = 0.0
    for k in range(nv):
        if values[k] <= SMALL_Y_LGAMMA:
            ll += freq[k] * lgamma_diff(values[k], r)
        else:
            ll += freq[k] * lgamma(values[k] + r)
            n_big += freq[k]
    if n_big > 0.0:
        ll -= n_big * lgamma(r)
    # y log(mu + r) + r log(1 + mu alpha) = (y + r) log(mu + r) - r log(r)
    ll += y.shape[0] * r * math.log(r)
    for j in range(y.shape[0]):
        ll -= (y[j] + r) * math.log(mu[j] + r)
        w[j] = 1.0 / (1.0 / mu[j] + alpha)
    gram(Pt, w, p, A)
    if cholesky(A, L):
        logdet = 0.0
        for k in range(p):
            logdet += 2.0 * math.log(L[k, k])
    else:
        logdet = np.nan
    lp = ll - 0.5 * logdet
    if use_prior:
        d = a - prior_mean
        lp -= 0.5 * d * d / prior_var
    return lp


@njit(cache=True)
def _dlog_post(a, y, mu, values, freq, nv, Pt, p, prior_mean, prior_var, use_prior, A, A1, L, B, work, w, w1):
    alpha = math.exp(a)
    r = 1.0 / alpha
    lr = 0.0
    n_big = 0.0
    for k in range(nv):
        if values[k] <= SMALL_Y:
            lr += freq[k] * digamma_diff(values[k], r)
        else:
            lr += freq[k] * digamma(values[k] + r)
            n_big += freq[k]
    if n_big > 0.0:
        lr -= n_big * digamma(r)
    for j in range(y.shape[0]):
        lr += (mu[j] - y[j]) / (mu[j] + r) - math.log1p(mu[j] * alpha)
        wj = 1.0 / (1.0 / mu[j] + alpha)
        w[j] = wj
        w1[j] = -alpha * wj * wj
    g = -r * lr
    gram(Pt, w, p, A)
    if cholesky(A, L):
        cholesky_inverse(L, B, work)
        gram(Pt, w1, p, A1)
        t = 0.0
        for i in range(p):
            for k in range(p):
                t += B[i, k] * A1[i, k]
        g -= 0.5 * t
    else:
        g = np.nan
    if use_prior:
        g -= (a - prior_mean) / prior_var
    return g


@njit(parallel=True, cache=True)
def fit_dispersion(Y, MU, Pt, p, log_alpha, prior_mean, prior_var, use_prior, min_log_alpha, kappa_0, tol, maxit,
                   out, iters, initial_lp, last_lp):
    """DESeq2's line-search maximisation of ``lp`` for every gene (see the module docstring).

    Outputs (G,): ``out`` log dispersion, ``iters`` proposals made (``== maxit``: not
    converged), ``initial_lp`` and ``last_lp``.
    """
    G, m = Y.shape
    for g in prange(G):
        y = Y[g]
        mu = MU[g]
        values = np.empty(m)
        freq = np.empty(m)
        nv = _count_table(y, values, freq)
        A = np.empty((p, p))
        A1 = np.empty((p, p))
        L = np.empty((p, p))
        B = np.empty((p, p))
        work = np.empty(p)
        w = np.empty(m)
        w1 = np.empty(m)
        pm = prior_mean[g]
        a = log_alpha[g]
        lp = _log_post(a, y, mu, values, freq, nv, Pt, p, pm, prior_var, use_prior, A, L, w)
        dlp = _dlog_post(a, y, mu, values, freq, nv, Pt, p, pm, prior_var, use_prior, A, A1, L, B, work, w, w1)
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
            theta_kappa = -_log_post(a + kappa * dlp, y, mu, values, freq, nv, Pt, p, pm, prior_var, use_prior, A,
                                     L, w)
            theta_hat_kappa = -lp - kappa * _EPSILON * dlp * dlp
            if theta_kappa <= theta_hat_kappa:
                accepted += 1
                a = a + kappa * dlp
                lpnew = -theta_kappa  # lp at the accepted point, just computed
                change = lpnew - lp
                if change < tol:
                    lp = lpnew
                    break
                if a < min_log_alpha:
                    break
                lp = lpnew
                dlp = _dlog_post(a, y, mu, values, freq, nv, Pt, p, pm, prior_var, use_prior, A, A1, L, B, work,
                                 w, w1)
                kappa = min(kappa * 1.1, kappa_0)
                if accepted % 5 == 0:
                    kappa = kappa / 2.0
            else:
                kappa = kappa / 2.0
        out[g] = a
        iters[g] = it
        last_lp[g] = lp


@njit(parallel=True, cache=True)
def fit_dispersion_grid(Y, MU, Pt, p, grid, prior_mean, prior_var, use_prior, out):
    """DESeq2's ``fitDispGrid``: best of a coarse grid in log dispersion, then of a finer grid
    spanning one coarse step either side."""
    G, m = Y.shape
    n = grid.shape[0]
    delta = grid[1] - grid[0]
    for g in prange(G):
        y = Y[g]
        mu = MU[g]
        values = np.empty(m)
        freq = np.empty(m)
        nv = _count_table(y, values, freq)
        A = np.empty((p, p))
        L = np.empty((p, p))
        w = np.empty(m)
        best = -np.inf
        a_hat = grid[0]
        for t in range(n):
            v = _log_post(grid[t], y, mu, values, freq, nv, Pt, p, prior_mean[g], prior_var, use_prior, A, L, w)
            if v > best:
                best = v
                a_hat = grid[t]
        lo = a_hat - delta
        step = 2.0 * delta / (n - 1)
        best = -np.inf
        a_fine = lo
        for t in range(n):
            a = lo + t * step
            v = _log_post(a, y, mu, values, freq, nv, Pt, p, prior_mean[g], prior_var, use_prior, A, L, w)
            if v > best:
                best = v
                a_fine = a
        out[g] = a_fine
