"""Adjusted residual deviances and degrees of freedom of edgeR 4's quasi-likelihood method.

edgeR 4 (``glmQLFit(legacy = FALSE)``, Chen, Chen & Smyth 2024) replaces each gene's residual
deviance and residual df by versions that stay unbiased for small counts. Every observation's
unit deviance ``d_j`` is treated as a scaled chi-square, ``d_j / s_j ~ chi2(k_j)``, whose scale and
df match the mean and variance of the unit deviance of an NB count:

    alpha = 2 E[d] / Var[d] = 1 / s,     kappa = 2 E[d]^2 / Var[d],

and the gene's adjusted deviance and df are ``sum_j alpha_j d_j`` and ``sum_j (1 - h_j) kappa_j``
with ``h_j`` the leverages of the working-weighted design (``sqrt(W) X``, ``W = mu / (1 + mu phi /
q)``); observations of leverage within 1e-4 of one contribute nothing. ``q`` is the average QL
dispersion: the moments are those of a count of mean ``mu / q`` and dispersion ``phi``, and the
unit deviance is taken at the working dispersion ``phi / q``.

edgeR evaluates ``alpha`` and ``kappa`` by piecewise Chebyshev approximations (``ql_weights.c``);
here they are the exact moments, summed over the NB probabilities (:func:`deviance_moments`), for
one dispersion at a time on a grid of ``log mu`` (:func:`moment_table`, cubic interpolation,
error < 1e-9) that ends at ``mu = 1000``; beyond it a cubic in ``1 / mu`` runs to the exact
``mu -> inf`` limit, the moments of the gamma deviance ``2 r (Z - 1 - log Z)``, ``Z ~ Gamma(r, 1/r)``,
``r = 1 / phi``: ``E = 2 r (log r - digamma r)``, ``Var = 4 r^2 (trigamma r - 1 / r)``. edgeR's
approximations differ from the exact values by 1e-6 to 1e-3 (more for ``phi >= 4``, where edgeR
truncates the sum at 50 terms), which bounds how closely the adjusted deviances can agree.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .edger_glm import _chunk, n_chunks
from .special import digamma

__all__ = ["adjusted_deviance_df", "deviance_moments", "moment_table"]

MU_LO = 1e-3
MU_HI = 1e3
STEP = 0.01  # grid step in log(mu)
TINY_MU = 1e-32  # below this the observation carries no information (as in edgeR)
LEVERAGE_TOL = 1e-4  # 1 - h below this: the observation is dropped (as in edgeR)


@njit(cache=True, error_model="numpy")
def _unit_deviance_exact(y, mu, size, poisson):
    """Unit NB deviance of count y at mean mu, size r = 1/phi (Poisson when ``poisson``)."""
    t = y * math.log(y / mu) if y > 0.0 else 0.0
    if poisson:
        return 2.0 * (t - (y - mu))
    return 2.0 * (t - (y + size) * math.log1p((y - mu) / (mu + size)))


@njit(cache=True, error_model="numpy")
def deviance_moments(mu, phi):
    """``(alpha, kappa) = (2 E d / Var d, 2 (E d)^2 / Var d)`` of the unit deviance of y ~ NB(mu, phi).

    Exact sums over the probabilities from the mode outwards until they fall below 1e-17 of the
    largest; ``(0, 0)`` for ``mu < 1e-32``.
    """
    if mu < TINY_MU:
        return 0.0, 0.0
    poisson = phi <= 0.0
    size = 1.0 / phi if not poisson else 0.0
    mode = math.floor(mu)
    if poisson:
        logp = mode * math.log(mu) - mu - math.lgamma(mode + 1.0)
        ratio_up = 0.0
    else:
        logp = (math.lgamma(mode + size) - math.lgamma(size) - math.lgamma(mode + 1.0)
                + size * math.log(size / (size + mu)) + mode * math.log(mu / (size + mu)))
        ratio_up = mu / (size + mu)
    p0 = math.exp(logp)
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    # upwards from the mode
    p = p0
    y = mode
    while True:
        d = _unit_deviance_exact(y, mu, size, poisson)
        s0 += p
        s1 += p * d
        s2 += p * d * d
        if poisson:
            p *= mu / (y + 1.0)
        else:
            p *= (y + size) / (y + 1.0) * ratio_up
        y += 1.0
        if p < 1e-17 * p0 and y > mu:
            break
    # downwards
    p = p0
    y = mode
    while y > 0.0:
        if poisson:
            p *= y / mu
        else:
            p *= y / ((y - 1.0 + size) * ratio_up)
        y -= 1.0
        d = _unit_deviance_exact(y, mu, size, poisson)
        s0 += p
        s1 += p * d
        s2 += p * d * d
        if p < 1e-17 * p0:
            break
    e = s1 / s0
    v = s2 / s0 - e * e
    if not v > 0.0:
        return 0.0, 0.0
    return 2.0 * e / v, 2.0 * e * e / v


@njit(cache=True, error_model="numpy")
def _trigamma(x):
    result = 0.0
    while x < 10.0:
        result += 1.0 / (x * x)
        x += 1.0
    f = 1.0 / (x * x)
    series = 1.0 + 1.0 / (2.0 * x) + f * (1.0 / 6 + f * (-1.0 / 30 + f * (1.0 / 42 + f * (-1.0 / 30 + f * (5.0 / 66)))))
    return result + series / x


@njit(cache=True, error_model="numpy")
def _gamma_limit(phi):
    """alpha and kappa as mu -> inf (the gamma deviance; chi-square(1) when phi = 0)."""
    if phi <= 1e-8:
        return 1.0, 1.0
    r = 1.0 / phi
    e = 2.0 * r * (math.log(r) - digamma(r))
    v = 4.0 * r * r * (_trigamma(r) - 1.0 / r)
    return 2.0 * e / v, 2.0 * e * e / v


@njit(parallel=True, cache=True, error_model="numpy")
def _fill_table(logmu, phi, A, K):
    for i in prange(logmu.size):
        A[i], K[i] = deviance_moments(math.exp(logmu[i]), phi)


def moment_table(phi: float) -> np.ndarray:
    """``(3, N)`` table: ``log mu`` grid on [1e-3, 1e3], alpha and kappa, for dispersion ``phi``."""
    n = int(round(math.log(MU_HI / MU_LO) / STEP)) + 1
    logmu = math.log(MU_LO) + STEP * np.arange(n)
    A = np.empty(n)
    K = np.empty(n)
    _fill_table(logmu, float(phi), A, K)
    return np.ascontiguousarray(np.vstack([logmu, A, K]))


@njit(cache=True, error_model="numpy")
def _cubic(t, f0, f1, f2, f3):
    """Lagrange cubic through f at -1, 0, 1, 2, evaluated at t in [0, 1]."""
    return (-t * (t - 1.0) * (t - 2.0) * f0 / 6.0 + (t + 1.0) * (t - 1.0) * (t - 2.0) * f1 / 2.0
            - (t + 1.0) * t * (t - 2.0) * f2 / 2.0 + (t + 1.0) * t * (t - 1.0) * f3 / 6.0)


@njit(cache=True, error_model="numpy")
def moments_at(mu, phi, table, lim_a, lim_k):
    """alpha and kappa at mean ``mu`` from the table of :func:`moment_table` (exact below its range)."""
    logmu = table[0]
    n = logmu.size
    if mu < MU_LO:
        return deviance_moments(mu, phi)
    if mu >= MU_HI:
        # cubic in s = 1/mu through s = 0 (the limit) and the table at mu = MU_HI, MU_HI/2, MU_HI/4
        s = 1.0 / mu
        idx = (n - 1, n - 1 - int(round(math.log(2.0) / STEP)), n - 1 - int(round(math.log(4.0) / STEP)))
        nodes = (0.0, math.exp(-logmu[idx[0]]), math.exp(-logmu[idx[1]]), math.exp(-logmu[idx[2]]))
        a = 0.0
        k = 0.0
        for i in range(4):
            li = 1.0
            for j in range(4):
                if j != i:
                    li *= (s - nodes[j]) / (nodes[i] - nodes[j])
            if i == 0:
                a += li * lim_a
                k += li * lim_k
            else:
                a += li * table[1, idx[i - 1]]
                k += li * table[2, idx[i - 1]]
        return a, k
    u = (math.log(mu) - logmu[0]) / STEP
    i = int(u)
    if i < 1:
        i = 1
    if i > n - 3:
        i = n - 3
    t = u - i
    a = _cubic(t, table[1, i - 1], table[1, i], table[1, i + 1], table[1, i + 2])
    k = _cubic(t, table[2, i - 1], table[2, i], table[2, i + 1], table[2, i + 2])
    return a, k


@njit(cache=True, error_model="numpy")
def _unit_deviance_edger(y, mu, phi):
    """edgeR 4's ``compute_unit_nb_deviance`` (1e-8 guard, Poisson and gamma branches, floored at 0)."""
    y = y + 1e-8
    mu = mu + 1e-8
    if phi < 1e-4:
        resid = y - mu
        out = 2.0 * (y * math.log(y / mu) - resid - 0.5 * resid * resid * phi * (1.0 - phi * y))
    elif mu * phi > 1e6:
        out = 2.0 * ((y - mu) / mu - math.log(y / mu)) * mu / (1.0 + mu * phi)
    else:
        invphi = 1.0 / phi
        out = 2.0 * (y * math.log(y / mu) + (y + invphi) * math.log((mu + invphi) / (y + invphi)))
    return max(out, 0.0)


@njit(cache=True, error_model="numpy")
def _leverages(X, w, Q, h):
    """Leverages of ``sqrt(w) X`` by modified Gram-Schmidt, dropping columns whose remaining norm is
    below 1e-7 of their original one (the rank rule of R's ``dqrdc2``)."""
    m, p = X.shape
    k = 0
    for c in range(p):
        nrm0 = 0.0
        for j in range(m):
            v = math.sqrt(w[j]) * X[j, c]
            Q[j, k] = v
            nrm0 += v * v
        nrm0 = math.sqrt(nrm0)
        for _rep in range(2):
            for i in range(k):
                dot = 0.0
                for j in range(m):
                    dot += Q[j, i] * Q[j, k]
                for j in range(m):
                    Q[j, k] -= dot * Q[j, i]
        nrm = 0.0
        for j in range(m):
            nrm += Q[j, k] * Q[j, k]
        nrm = math.sqrt(nrm)
        if nrm0 == 0.0 or nrm < 1e-7 * nrm0:
            continue
        for j in range(m):
            Q[j, k] /= nrm
        k += 1
    for j in range(m):
        s = 0.0
        for i in range(k):
            s += Q[j, i] * Q[j, i]
        h[j] = s


@njit(cache=True, error_model="numpy")
def _leverages_fast(X, w, A, z, Q, h):
    """Leverages ``w_j x_j' (X' W X)^-1 x_j`` by Cholesky; Gram-Schmidt (:func:`_leverages`) when a
    pivot falls below 1e-10 of its diagonal (a rank-deficient ``sqrt(W) X``, e.g. a group of zero means)."""
    m, p = X.shape
    for a in range(p):
        for b in range(a + 1):
            s = 0.0
            for j in range(m):
                s += w[j] * X[j, a] * X[j, b]
            A[a, b] = s
    for a in range(p):
        d = A[a, a]
        for k in range(a):
            d -= A[a, k] * A[a, k]
        if not d > 1e-10 * A[a, a] or not A[a, a] > 0.0:
            _leverages(X, w, Q, h)
            return
        d = math.sqrt(d)
        A[a, a] = d
        for b in range(a + 1, p):
            s = A[b, a]
            for k in range(a):
                s -= A[b, k] * A[a, k]
            A[b, a] = s / d
    for j in range(m):
        acc = 0.0
        for a in range(p):
            s = X[j, a]
            for k in range(a):
                s -= A[a, k] * z[k]
            z[a] = s / A[a, a]
            acc += z[a] * z[a]
        h[j] = w[j] * acc


@njit(cache=True, error_model="numpy")
def _adjust_range(Y, MU, X, phi, prior, table, lim_a, lim_k, lo, hi, dev, df):
    m, p = X.shape
    w = np.empty(m)
    h = np.empty(m)
    Q = np.empty((m, p))
    A = np.empty((p, p))
    z = np.empty(p)
    phi_work = phi / prior
    for g in range(lo, hi):
        for j in range(m):
            u = MU[g, j]
            w[j] = u / (1.0 + u * phi_work)
        _leverages_fast(X, w, A, z, Q, h)
        dsum = 0.0
        fsum = 0.0
        for j in range(m):
            a, k = moments_at(MU[g, j] / prior, phi, table, lim_a, lim_k)
            hd = 1.0 - h[j]
            if hd < LEVERAGE_TOL:
                continue
            dsum += _unit_deviance_edger(Y[g, j], MU[g, j], phi_work) * a
            fsum += hd * k
        dev[g] = dsum
        df[g] = fsum


@njit(parallel=True, cache=True, error_model="numpy")
def _adjust_all(Y, MU, X, phi, prior, table, lim_a, lim_k, nchunk, dev, df):
    G = Y.shape[0]
    for c in prange(nchunk):
        lo, hi = _chunk(c, nchunk, G)
        _adjust_range(Y, MU, X, phi, prior, table, lim_a, lim_k, lo, hi, dev, df)


def adjusted_deviance_df(counts: np.ndarray, mu: np.ndarray, design: np.ndarray, phi: float, prior: float,
                         table: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adjusted deviance, adjusted df and QL dispersion ``s2 = dev / df`` (0 where df < 1e-4) per gene.

    Parameters
    ----------
    counts, mu
        ``(G, m)`` counts and fitted means.
    design
        ``(m, p)`` design.
    phi
        The NB dispersion (one value for all genes, as edgeR 4's QL fit uses).
    prior
        The average QL dispersion ``q`` (1 for the first pass).
    table
        :func:`moment_table` of ``phi``, when it is already at hand.
    """
    Y = np.ascontiguousarray(counts, dtype=np.float64)
    MU = np.ascontiguousarray(mu, dtype=np.float64)
    X = np.ascontiguousarray(design, dtype=np.float64)
    if table is None:
        table = moment_table(phi)
    lim_a, lim_k = _gamma_limit(float(phi))
    G = Y.shape[0]
    dev = np.zeros(G)
    df = np.zeros(G)
    if G:
        _adjust_all(Y, MU, X, float(phi), float(prior), table, lim_a, lim_k, n_chunks(G), dev, df)
    s2 = np.where(df < LEVERAGE_TOL, 0.0, dev / np.where(df < LEVERAGE_TOL, 1.0, df))
    return dev, df, s2
