"""Batched negative-binomial GLM fits (log link, offsets, ridge), one gene per ``prange`` step.

This is DESeq2's ``fitBeta``: IRLS with ``w = mu / (1 + alpha mu)``, working response
``z = log(mu / s) + (y - mu) / mu``, a ridge ``Lambda`` on the natural-log scale, fitted means
floored at ``minmu`` inside the iterations, convergence on the relative change of the deviance.
Genes that do not converge are refit by DESeq2's optim fallback
(:mod:`pbglm._methods.deseq2_optim`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .small_linalg import cholesky, cholesky_inverse, cholesky_solve, gram
from .special import lgamma_diff


@njit(cache=True)
def nb_loglik_const(y, r):
    """The mu-free part of the NB log-likelihood of one gene: sum of lgamma terms."""
    s = 0.0
    for j in range(y.shape[0]):
        s += lgamma_diff(y[j], r) - math.lgamma(y[j] + 1.0)
    return s


@njit(cache=True)
def nb_loglik_mu(y, r, mu, log_mu):
    """The mu-dependent part of the NB log-likelihood of one gene (``size = r``).

    ``y log(mu / (mu + r)) + r log(r / (mu + r))``, written with one logarithm per sample.
    """
    s = y.shape[0] * r * math.log(r)
    for j in range(y.shape[0]):
        s += y[j] * log_mu[j] - (y[j] + r) * math.log(mu[j] + r)
    return s


@njit(cache=True)
def _means(X, b, log_sf, minmu, mu, log_mu):
    """Fitted means ``exp(X b + log s)`` floored at ``minmu``, and their logarithms."""
    m, p = X.shape
    log_floor = math.log(minmu) if minmu > 0.0 else -np.inf
    for j in range(m):
        eta = log_sf[j]
        for k in range(p):
            eta += X[j, k] * b[k]
        if eta < log_floor:
            eta = log_floor
        log_mu[j] = eta
        mu[j] = math.exp(eta)


@njit(cache=True)
def _sandwich(Pt, X, w, lam, A, L, Ainv, cov, work, hat_row):
    """Covariance ``(A + Lambda)^-1 A (A + Lambda)^-1`` and hat values, A = X^T W X.

    ``h_j = w_j x_j^T (A + Lambda)^-1 x_j`` is a weighted sum of the packed outer products.
    """
    m, p = X.shape
    gram(Pt, w, p, A)
    for k in range(p):
        A[k, k] += lam[k]
    if not cholesky(A, L):
        cov[:, :] = np.nan
        hat_row[:] = np.nan
        return False
    cholesky_inverse(L, Ainv, work)
    for k in range(p):
        A[k, k] -= lam[k]
    for a in range(p):
        for b in range(p):
            s = 0.0
            for c in range(p):
                for d in range(p):
                    s += Ainv[a, c] * A[c, d] * Ainv[d, b]
            cov[a, b] = s
    hat_row[:] = 0.0
    k = 0
    for a in range(p):
        for b in range(a + 1):
            coef = Ainv[a, b] if a == b else 2.0 * Ainv[a, b]
            row = Pt[k]
            for j in range(m):
                hat_row[j] += coef * row[j]
            k += 1
    for j in range(m):
        hat_row[j] *= w[j]
    return True


@njit(parallel=True, cache=True)
def nb_glm_irls(Y, log_sf, X, Pt, alpha, lam, beta_init, maxit, tol, minmu, large, beta, mu_out, dev, iters, hat, cov):
    """IRLS for every gene (row of Y). Outputs are written into the passed arrays.

    ``beta`` is on the natural-log scale; ``mu_out`` is the unfloored fitted mean (as DESeq2
    reports it); ``dev`` the deviance ``-2 log L`` at ``mu_out``; ``iters == maxit`` flags a gene
    that did not converge (or whose coefficients exceeded ``large``); ``hat`` and ``cov`` use the
    floored means of the last iteration.
    """
    Xt = np.ascontiguousarray(X.T)
    G, m = Y.shape
    p = X.shape[1]
    for g in prange(G):
        y = Y[g]
        r = 1.0 / alpha[g]
        b = beta_init[g].copy()
        mu = np.empty(m)
        log_mu = np.empty(m)
        w = np.empty(m)
        wz = np.empty(m)
        A = np.empty((p, p))
        L = np.empty((p, p))
        Ainv = np.empty((p, p))
        rhs = np.empty(p)
        work = np.empty(p)
        const = nb_loglik_const(y, r)
        _means(X, b, log_sf, minmu, mu, log_mu)
        dev_old = 0.0
        it = 0
        for t in range(maxit):
            it += 1
            for j in range(m):
                w[j] = mu[j] / (1.0 + alpha[g] * mu[j])
                wz[j] = w[j] * (log_mu[j] - log_sf[j] + (y[j] - mu[j]) / mu[j])
            gram(Pt, w, p, A)
            for k in range(p):
                A[k, k] += lam[k]
                s = 0.0
                xk = Xt[k]
                for j in range(m):
                    s += xk[j] * wz[j]
                rhs[k] = s
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
                break
            _means(X, b, log_sf, minmu, mu, log_mu)
            d = -2.0 * (const + nb_loglik_mu(y, r, mu, log_mu))
            conv = abs(d - dev_old) / (abs(d) + 0.1)
            if math.isnan(conv):
                it = maxit
                break
            if t > 0 and conv < tol:
                break
            dev_old = d
        iters[g] = it
        for k in range(p):
            beta[g, k] = b[k]
        if np.isnan(b[0]):
            mu_out[g, :] = np.nan
            dev[g] = np.nan
            hat[g, :] = np.nan
            cov[g, :, :] = np.nan
            continue
        _means(X, b, log_sf, minmu, mu, log_mu)
        for j in range(m):
            w[j] = mu[j] / (1.0 + alpha[g] * mu[j])
        _sandwich(Pt, X, w, lam, A, L, Ainv, cov[g], work, hat[g])
        _means(X, b, log_sf, 0.0, mu, log_mu)
        for j in range(m):
            mu_out[g, j] = mu[j]
        dev[g] = -2.0 * (const + nb_loglik_mu(y, r, mu, log_mu))
