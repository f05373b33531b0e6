"""Batched negative-binomial GLM kernels with edgeR's ``glmFit`` semantics.

edgeR fits its NB GLMs in two ways (``glmFit.default``):

* **one-way layouts** (as many distinct design rows as columns): each group's mean is fitted on
  its own by Fisher scoring (``mglmOneGroup``: tolerance 1e-10 on the step, 50 iterations), the
  coefficients are then solved from the group means (``mglmOneWay``);
* **other designs**: Levenberg-damped Fisher scoring (``mglmLevenberg``): start at the fitted
  value of an intercept-only model (``start.method = "null"``), damping ``lambda`` starting at
  ``1e-6`` times the largest diagonal of ``X^T W X``, accept a step when the deviance does not
  increase, stop when ``dl . dbeta < tol`` (1e-6) or after ``maxit`` iterations.

The deviance is edgeR's unit deviance (``compute_unit_nb_deviance``), including its 1e-8 guard and
its Poisson (``phi < 1e-4``) and gamma (``mu phi > 1e6``) branches. The adjusted profile
likelihood (``adjustedProfileLik``) adds the Cox-Reid term ``-0.5 log det(X^T W X)`` with
``W = mu / (1 + phi mu)``.

Two families of kernels live here:

* **reference kernels** (``levenberg_fit``, ``apl_batch``, ``apl_grid_levenberg``) follow edgeR
  step by step; they are the fallback of the fast kernels and the yardstick of the tests;
* **fast kernels** (``fast_fit``, ``apl_grid_fast``) reach the same maximum-likelihood fits by
  undamped Fisher scoring from good starting values, on blocks of genes so that ``X^T W X`` and
  the scores are BLAS products, with exponentials and logarithms written as loops the compiler
  vectorises; genes they cannot settle are handed to the reference kernels.

The parallel kernels are thin ``prange`` loops over gene chunks or blocks calling serial
functions (which keeps compilation quick). Offsets are per sample (length m), the same for every
gene: that is all edgeR's QL pipeline needs (library sizes, prior-count augmented library sizes,
glmTreat's shifted offsets).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import get_num_threads, njit, prange

from .small_linalg import cholesky_solve

LOW_VALUE = 1e-10
LOG_LOW_VALUE = math.log(LOW_VALUE)
SUPREMELY_LOW = 1e-13
RIDICULOUSLY_LOW = 1e-100


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------


def packed_design(design: np.ndarray) -> np.ndarray:
    """Return ``P`` (m x q), row j holding the lower-triangle products ``X[j, a] X[j, b]`` (b <= a)."""
    m, p = design.shape
    cols = [design[:, a] * design[:, b] for a in range(p) for b in range(a + 1)]
    if not cols:
        return np.zeros((m, 0))
    return np.ascontiguousarray(np.column_stack(cols), dtype=np.float64)


def n_chunks(G: int) -> int:
    """Number of gene chunks for a prange loop: a few per thread, never more than genes."""
    return max(1, min(G, 8 * get_num_threads()))


@njit(cache=True, error_model="numpy")
def _chunk(c, nchunk, G):
    lo = (G * c) // nchunk
    hi = (G * (c + 1)) // nchunk
    return lo, hi


@njit(cache=True, error_model="numpy")
def unit_nb_deviance(y, mu, phi):
    """edgeR's unit deviance of one observation (``compute_unit_nb_deviance``)."""
    y = y + 1e-8
    mu = mu + 1e-8
    if phi < 1e-4:
        resid = y - mu
        # edgeR writes ``2/3*resid`` in C++, an integer division that evaluates to 0.
        return 2.0 * (y * math.log(y / mu) - resid - 0.5 * resid * resid * phi * (1.0 - phi * y))
    product = mu * phi
    if product > 1e6:
        return 2.0 * ((y - mu) / mu - math.log(y / mu)) * mu / (1.0 + product)
    invphi = 1.0 / phi
    return 2.0 * (y * math.log(y / mu) + (y + invphi) * math.log((mu + invphi) / (y + invphi)))


@njit(cache=True, error_model="numpy")
def _gene_deviance(y, mu, phi):
    s = 0.0
    for j in range(y.shape[0]):
        s += unit_nb_deviance(y[j], mu[j], phi)
    return s


@njit(cache=True, error_model="numpy")
def _autofill(X, beta, offset, mu):
    m, p = X.shape
    for j in range(m):
        e = offset[j]
        for a in range(p):
            e += X[j, a] * beta[a]
        mu[j] = math.exp(e)


@njit(cache=True, error_model="numpy")
def _xtwx(P, X, w, d, p, acc, A, dl):
    """``A <- X^T diag(w) X`` (from the packed products) and ``dl <- X^T d``."""
    m = X.shape[0]
    q = P.shape[1]
    for k in range(q):
        acc[k] = 0.0
    for a in range(p):
        dl[a] = 0.0
    for j in range(m):
        wj = w[j]
        for k in range(q):
            acc[k] += P[j, k] * wj
        dj = d[j]
        for a in range(p):
            dl[a] += X[j, a] * dj
    k = 0
    for a in range(p):
        for b in range(a + 1):
            A[a, b] = acc[k]
            A[b, a] = acc[k]
            k += 1


@njit(cache=True, error_model="numpy")
def _chol(A, L, lam):
    """Cholesky factor of ``A + lam I`` into L; False when not positive definite."""
    p = A.shape[0]
    for i in range(p):
        for j in range(i + 1):
            s = A[i, j]
            if i == j:
                s += lam
            for k in range(j):
                s -= L[i, k] * L[j, k]
            if i == j:
                if not s > 0.0:
                    return False
                L[i, i] = math.sqrt(s)
            else:
                L[i, j] = s / L[j, j]
    return True


@njit(cache=True, error_model="numpy")
def _half_logdet_floor(A, Lw):
    """``0.5 * sum(log D)`` of ``A = L D L^T`` with edgeR's floor: pivots below 1e-10 count as 1e-10."""
    p = A.shape[0]
    # LDL^T without pivoting; Lw holds the unit lower factor, D on its diagonal.
    res = 0.0
    for j in range(p):
        dj = A[j, j]
        for k in range(j):
            dj -= Lw[j, k] * Lw[j, k] * Lw[k, k]
        Lw[j, j] = dj
        for i in range(j + 1, p):
            s = A[i, j]
            for k in range(j):
                s -= Lw[i, k] * Lw[j, k] * Lw[k, k]
            Lw[i, j] = s / dj if dj != 0.0 else 0.0
        if dj < LOW_VALUE or not math.isfinite(dj):
            res += LOG_LOW_VALUE
        else:
            res += math.log(dj)
    return 0.5 * res


# ---------------------------------------------------------------------------------------------
# one group (mglmOneGroup) and the average log-CPM
# ---------------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def one_group_fit(y, libsize, phi, maxit, tol, beta_start):
    """Fit ``log mu_j = beta + log N_j`` for one gene (edgeR's ``glm_one_group``).

    ``libsize`` holds ``N_j = exp(offset_j)``. ``beta_start`` NaN means edgeR's own start
    (log of the mean count per library size). Returns ``(beta, converged)``; an all-zero row
    gives ``-inf``.
    """
    m = y.shape[0]
    nonzero = False
    if math.isnan(beta_start):
        s = 0.0
        for j in range(m):
            if y[j] > LOW_VALUE:
                s += y[j] / libsize[j]
                nonzero = True
        beta = math.log(s / m) if nonzero else 0.0
    else:
        beta = beta_start
        for j in range(m):
            if y[j] > LOW_VALUE:
                nonzero = True
                break
    if not nonzero:
        return -np.inf, True
    for _ in range(maxit):
        eb = math.exp(beta)
        dl = 0.0
        info = 0.0
        for j in range(m):
            mu = eb * libsize[j]
            denom = 1.0 + mu * phi
            dl += (y[j] - mu) / denom
            info += mu / denom
        step = dl / info
        beta += step
        if abs(step) < tol:
            return beta, True
    return beta, False


@njit(cache=True, error_model="numpy")
def _ave_log_cpm_range(Y, prior, adj, disp, maxit, tol, lo, hi, out):
    m = Y.shape[1]
    yy = np.empty(m)
    ln1e6 = math.log(1e6)
    ln2 = math.log(2.0)
    for g in range(lo, hi):
        for j in range(m):
            yy[j] = Y[g, j] + prior[j]
        b, _ = one_group_fit(yy, adj, disp[g], maxit, tol, np.nan)
        out[g] = (b + ln1e6) / ln2


@njit(parallel=True, cache=True, error_model="numpy")
def ave_log_cpm_kernel(Y, libsize, prior_count, disp, maxit, tol, nchunk):
    """edgeR's ``aveLogCPM``: one-group NB fit of ``y + prior`` with offsets ``log(N + 2 prior)``.

    The prior count is scaled per library by ``N_j / mean(N)``. Returns log2 CPM per gene.
    """
    G, m = Y.shape
    ave = 0.0
    for j in range(m):
        ave += libsize[j]
    ave /= m
    prior = np.empty(m)
    adj = np.empty(m)
    for j in range(m):
        prior[j] = prior_count * libsize[j] / ave
        adj[j] = libsize[j] + 2.0 * prior[j]
    out = np.empty(G)
    for c in prange(nchunk):
        lo, hi = _chunk(c, nchunk, G)
        _ave_log_cpm_range(Y, prior, adj, disp, maxit, tol, lo, hi, out)
    return out


# ---------------------------------------------------------------------------------------------
# one-way layouts (mglmOneWay)
# ---------------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def _group_index(group, ngroups):
    """Samples sorted by group (``gidx``) and the group boundaries in it (``gptr``)."""
    m = group.shape[0]
    gptr = np.zeros(ngroups + 1, dtype=np.int64)
    for j in range(m):
        gptr[group[j] + 1] += 1
    for k in range(ngroups):
        gptr[k + 1] += gptr[k]
    fill = gptr[:ngroups].copy()
    gidx = np.empty(m, dtype=np.int64)
    for j in range(m):
        gidx[fill[group[j]]] = j
        fill[group[j]] += 1
    return gidx, gptr


@njit(cache=True, error_model="numpy")
def _one_group_idx(y, libsize, idx, lo, hi, phi, maxit, tol, beta_start):
    """:func:`one_group_fit` on the samples ``idx[lo:hi]`` (one exponential per iteration)."""
    n = hi - lo
    nonzero = False
    if math.isnan(beta_start):
        s = 0.0
        for t in range(lo, hi):
            j = idx[t]
            if y[j] > LOW_VALUE:
                s += y[j] / libsize[j]
                nonzero = True
        beta = math.log(s / n) if nonzero else 0.0
    else:
        beta = beta_start
        for t in range(lo, hi):
            if y[idx[t]] > LOW_VALUE:
                nonzero = True
                break
    if not nonzero:
        return -np.inf
    for _ in range(maxit):
        eb = math.exp(beta)
        dl = 0.0
        info = 0.0
        for t in range(lo, hi):
            j = idx[t]
            mu = eb * libsize[j]
            inv = 1.0 / (1.0 + mu * phi)
            dl += (y[j] - mu) * inv
            info += mu * inv
        step = dl / info
        beta += step
        if abs(step) < tol:
            break
    return beta


@njit(cache=True, error_model="numpy")
def _one_way_gene(y, libsize, phi, gidx, gptr, beta_g, has_start, maxit, tol, mu):
    """Group means of one gene in place (``beta_g``, natural log), fitted values into ``mu``."""
    ngroups = gptr.shape[0] - 1
    for k in range(ngroups):
        start = beta_g[k] if has_start else np.nan
        if not start > -30.0:  # no usable start (a zero group, NaN): edgeR's own
            start = np.nan
        b = _one_group_idx(y, libsize, gidx, gptr[k], gptr[k + 1], phi, maxit, tol, start)
        beta_g[k] = max(b, -1e8)
        eb = math.exp(beta_g[k])
        for t in range(gptr[k], gptr[k + 1]):
            j = gidx[t]
            mu[j] = eb * libsize[j]


@njit(cache=True, error_model="numpy")
def _one_way_range(Y, libsize, disp, group, ngroups, beta_start, has_start, maxit, tol, lo, hi, beta, mu, dev):
    m = Y.shape[1]
    gidx, gptr = _group_index(group, ngroups)
    bg = np.empty(ngroups)
    t1 = np.empty(m)
    t2 = np.empty(m)
    t3 = np.empty(m)
    t4 = np.empty(m)
    ibuf = np.empty(m, dtype=np.int64)
    ebuf = np.empty(m)
    for g in range(lo, hi):
        if has_start:
            for k in range(ngroups):
                bg[k] = beta_start[g, k]
        _one_way_gene(Y[g], libsize, disp[g], gidx, gptr, bg, has_start, maxit, tol, mu[g])
        for k in range(ngroups):
            beta[g, k] = bg[k]
        dev[g] = _vec_deviance(Y[g], mu[g], disp[g], t1, t2, t3, t4, ibuf, ebuf)


@njit(parallel=True, cache=True, error_model="numpy")
def one_way_fit(Y, libsize, disp, group, ngroups, beta_start, has_start, maxit, tol, nchunk):
    """edgeR's ``mglmOneWay`` for every gene: group means (natural log), fitted values, deviance."""
    G, m = Y.shape
    beta = np.empty((G, ngroups))
    mu = np.empty((G, m))
    dev = np.empty(G)
    for c in prange(nchunk):
        lo, hi = _chunk(c, nchunk, G)
        _one_way_range(Y, libsize, disp, group, ngroups, beta_start, has_start, maxit, tol, lo, hi, beta, mu, dev)
    return beta, mu, dev


# ---------------------------------------------------------------------------------------------
# general designs (mglmLevenberg), reference
# ---------------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def null_start(y, libsize, phi, pinv_one, beta):
    """edgeR's ``start.method = "null"``: the intercept-only fit projected on the design."""
    m = y.shape[0]
    se = 0.0
    sw = 0.0
    for j in range(m):
        cw = libsize[j] / (1.0 + phi * libsize[j])
        se += y[j] * cw / libsize[j]
        sw += cw
    cur = math.log(se / sw) if se > 0.0 else -np.inf
    for a in range(beta.shape[0]):
        beta[a] = cur * pinv_one[a] if pinv_one[a] != 0.0 else 0.0


@njit(cache=True, error_model="numpy")
def levenberg_gene(
    y, X, P, offset, phi, beta, mu, mu_ready, tol, maxit, ws_w, ws_d, acc, A, L, dl, dbeta, beta_new, mu_new
):
    """One gene of edgeR's ``glm_levenberg::fit``; ``beta`` and ``mu`` are updated in place.

    ``mu_ready`` says that ``mu`` already holds the means at ``beta`` (saves the exponentials).
    Returns ``(deviance, iterations, failed)``.
    """
    m, p = X.shape
    ymax = 0.0
    for j in range(m):
        if y[j] > ymax:
            ymax = y[j]
    if ymax < LOW_VALUE:
        for a in range(p):
            beta[a] = np.nan
        for j in range(m):
            mu[j] = 0.0
        return 0.0, 0, False
    if not mu_ready:
        _autofill(X, beta, offset, mu)
    dev = _gene_deviance(y, mu, phi)
    if p == 0:
        return dev, 0, False
    max_info = -1.0
    lam = 0.0
    it = 0
    failed = False
    while it < maxit:
        it += 1
        for j in range(m):
            denom = 1.0 + mu[j] * phi
            ws_w[j] = mu[j] / denom
            ws_d[j] = (y[j] - mu[j]) / denom
        _xtwx(P, X, ws_w, ws_d, p, acc, A, dl)
        for a in range(p):
            if A[a, a] > max_info:
                max_info = A[a, a]
        if it == 1:
            lam = max_info * 1e-6
            if lam < SUPREMELY_LOW:
                lam = SUPREMELY_LOW
        lev = 0
        low_dev = False
        while True:
            lev += 1
            while not _chol(A, L, lam):
                lam *= 10.0
                if lam <= 0.0:
                    lam = RIDICULOUSLY_LOW
            cholesky_solve(L, dl, dbeta)
            for a in range(p):
                beta_new[a] = beta[a] + dbeta[a]
            _autofill(X, beta_new, offset, mu_new)
            dev_new = _gene_deviance(y, mu_new, phi)
            if dev_new / ymax < SUPREMELY_LOW:
                low_dev = True
            if dev_new <= dev or low_dev:
                for a in range(p):
                    beta[a] = beta_new[a]
                for j in range(m):
                    mu[j] = mu_new[j]
                dev = dev_new
                break
            lam *= 2.0
            if lam <= 0.0:
                lam = RIDICULOUSLY_LOW
            if lam / max_info > 1.0 / SUPREMELY_LOW:
                failed = True
                break
        if failed or low_dev:
            break
        divergence = 0.0
        for a in range(p):
            divergence += dl[a] * dbeta[a]
        if divergence < tol:
            break
        if lev == 1:
            lam /= 10.0
    return dev, it, failed


@njit(cache=True, error_model="numpy")
def _levenberg_range(
    Y, X, P, offset, disp, beta_start, has_start, pinv_one, tol, maxit, lo, hi, beta, mu, dev, iters, failed
):
    m, p = X.shape
    q = P.shape[1]
    libsize = np.exp(offset)
    ws_w = np.empty(m)
    ws_d = np.empty(m)
    mu_new = np.empty(m)
    acc = np.empty(q)
    A = np.empty((p, p))
    L = np.zeros((p, p))
    dl = np.empty(p)
    dbeta = np.empty(p)
    beta_new = np.empty(p)
    b = np.empty(p)
    for g in range(lo, hi):
        if has_start:
            for a in range(p):
                b[a] = beta_start[g, a]
        else:
            null_start(Y[g], libsize, disp[g], pinv_one, b)
        d, it, f = levenberg_gene(
            Y[g], X, P, offset, disp[g], b, mu[g], False, tol, maxit, ws_w, ws_d, acc, A, L, dl, dbeta, beta_new, mu_new
        )
        for a in range(p):
            beta[g, a] = b[a]
        dev[g] = d
        iters[g] = it
        failed[g] = f


@njit(parallel=True, cache=True, error_model="numpy")
def levenberg_fit(Y, X, P, offset, disp, beta_start, has_start, pinv_one, tol, maxit, nchunk):
    """edgeR's ``mglmLevenberg`` for every gene (the reference kernel).

    Returns ``beta`` (G x p, natural log), ``mu`` (G x m), ``deviance``, ``iterations``, ``failed``.
    """
    G, m = Y.shape
    p = X.shape[1]
    beta = np.empty((G, p))
    mu = np.empty((G, m))
    dev = np.empty(G)
    iters = np.empty(G, dtype=np.int64)
    failed = np.empty(G, dtype=np.bool_)
    for c in prange(nchunk):
        lo, hi = _chunk(c, nchunk, G)
        _levenberg_range(
            Y, X, P, offset, disp, beta_start, has_start, pinv_one, tol, maxit, lo, hi, beta, mu, dev, iters, failed
        )
    return beta, mu, dev, iters, failed


@njit(parallel=True, cache=True, error_model="numpy")
def nb_deviance(Y, mu, disp):
    """Row sums of edgeR's unit deviances."""
    G = Y.shape[0]
    out = np.empty(G)
    for g in prange(G):
        out[g] = _gene_deviance(Y[g], mu[g], disp[g])
    return out


# ---------------------------------------------------------------------------------------------
# adjusted profile likelihood, reference
# ---------------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def _loglik_const1(yj, r, rlogr, lgr):
    """``lgamma(y + r) - lgamma(r) - lgamma(y + 1) + r log r``: the mu-free NB log-likelihood terms."""
    if yj == 0.0:
        return rlogr
    if yj <= 32.0 and yj == math.floor(yj):
        # a finite sum for small integer counts (cheaper than three lgamma calls, no cancellation)
        t = 0.0
        k = 0.0
        while k < yj:
            t += math.log((r + k) / (k + 1.0))
            k += 1.0
        return t + rlogr
    return math.lgamma(yj + r) - lgr - math.lgamma(yj + 1.0) + rlogr


@njit(cache=True, error_model="numpy")
def apl_gene(y, mu, phi, X, P, acc, A, Lw, w, dl, adjust):
    """edgeR's ``compute_apl`` for one gene: NB log-likelihood minus the Cox-Reid term.

    Observations with a zero mean are skipped, as in edgeR. ``w`` receives the working weights.
    """
    m, p = X.shape
    ll = 0.0
    if phi > 0.0:
        r = 1.0 / phi
        rlogr = r * math.log(r)
        lgr = math.lgamma(r)
        for j in range(m):
            mj = mu[j]
            if mj == 0.0:
                w[j] = 0.0
                continue
            logmur = math.log(mj + r)
            ll += y[j] * (math.log(mj) - logmur) - r * logmur + _loglik_const1(y[j], r, rlogr, lgr)
            w[j] = mj / (1.0 + phi * mj)
    else:
        for j in range(m):
            mj = mu[j]
            if mj == 0.0:
                w[j] = 0.0
                continue
            ll += y[j] * math.log(mj) - mj - math.lgamma(y[j] + 1.0)
            w[j] = mj
    if not adjust:
        return ll
    if p == 1:
        s = 0.0
        for j in range(m):
            s += w[j]  # edgeR sums the working weights, whatever the single column holds
        return ll - 0.5 * math.log(abs(s))
    _xtwx(P, X, w, w, p, acc, A, dl)
    return ll - _half_logdet_floor(A, Lw)


@njit(cache=True, error_model="numpy")
def _apl_batch_range(Y, mu, disp, X, P, adjust, lo, hi, out):
    m, p = X.shape
    q = P.shape[1]
    acc = np.empty(q)
    A = np.empty((p, p))
    Lw = np.zeros((p, p))
    w = np.empty(m)
    dl = np.empty(p)
    for g in range(lo, hi):
        out[g] = apl_gene(Y[g], mu[g], disp[g], X, P, acc, A, Lw, w, dl, adjust)


@njit(parallel=True, cache=True, error_model="numpy")
def apl_batch(Y, mu, disp, X, P, adjust, nchunk):
    """``adjustedProfileLik`` at given fitted values, one value per gene."""
    G = Y.shape[0]
    out = np.empty(G)
    for c in prange(nchunk):
        lo, hi = _chunk(c, nchunk, G)
        _apl_batch_range(Y, mu, disp, X, P, adjust, lo, hi, out)
    return out


@njit(cache=True, error_model="numpy")
def _apl_lev_range(Y, X, P, offset, grid_disp, pinv_one, tol, maxit, lo, hi, l0):
    m, p = X.shape
    q = P.shape[1]
    K = grid_disp.shape[0]
    libsize = np.exp(offset)
    ws_w = np.empty(m)
    ws_d = np.empty(m)
    mu = np.empty(m)
    mu_new = np.empty(m)
    acc = np.empty(q)
    A = np.empty((p, p))
    L = np.zeros((p, p))
    Lw = np.zeros((p, p))
    dl = np.empty(p)
    dbeta = np.empty(p)
    beta_new = np.empty(p)
    b = np.empty(p)
    for g in range(lo, hi):
        y = Y[g]
        null_start(y, libsize, grid_disp[0], pinv_one, b)
        ready = False
        for k in range(K):
            phi = grid_disp[k]
            levenberg_gene(
                y, X, P, offset, phi, b, mu, ready, tol, maxit, ws_w, ws_d, acc, A, L, dl, dbeta, beta_new, mu_new
            )
            ready = True
            l0[g, k] = apl_gene(y, mu, phi, X, P, acc, A, Lw, ws_w, dl, True)


@njit(parallel=True, cache=True, error_model="numpy")
def apl_grid_levenberg(Y, X, P, offset, grid_disp, pinv_one, tol, maxit, nchunk):
    """Adjusted profile log-likelihoods of every gene at every grid dispersion (reference).

    As edgeR's ``estimateDisp``: the grid is walked from the smallest dispersion up, the first fit
    from the null start, each next one from the previous coefficients, every fit by edgeR's
    Levenberg iterations.
    """
    G = Y.shape[0]
    l0 = np.empty((G, grid_disp.shape[0]))
    for c in prange(nchunk):
        lo, hi = _chunk(c, nchunk, G)
        _apl_lev_range(Y, X, P, offset, grid_disp, pinv_one, tol, maxit, lo, hi, l0)
    return l0


# ---------------------------------------------------------------------------------------------
# fast path: vectorisable exp / log, lgamma tables, Newton passes with BLAS products
# ---------------------------------------------------------------------------------------------
#
# The reference kernels follow edgeR step by step (Levenberg damping, a deviance at every trial
# step). The fast kernels reach the same maximum-likelihood fits by undamped Fisher scoring from
# good starting values (the null start, or along the dispersion grid an extrapolation of the
# previous solutions), spending one exponential per observation and iteration and no
# logarithms until the end; the Gram matrices ``X^T W X`` and scores are BLAS products over a
# block of genes. A gene whose scoring does not converge (or meets a non-positive-definite
# information matrix) is handed to the reference kernel by the Python drivers.

_LOG2E = 1.4426950408889634
_LN2_HI = 0.6931471803691238
_LN2_LO = 1.9082149292705877e-10
_LN2 = 0.6931471805599453
_ROUND_MAGIC = 6755399441055744.0  # 1.5 * 2^52: adding and subtracting it rounds to an integer


@njit(cache=True, error_model="numpy")
def vexp(x, out, ibuf):
    """``out <- exp(x)`` in a loop the compiler vectorises (relative error ~2e-16).

    Arguments are clamped to [-708, 709]; ``ibuf`` is an int64 work array as long as x.
    """
    n = x.shape[0]
    for j in range(n):
        t = min(max(x[j], -708.0), 709.0)
        k = (t * _LOG2E + _ROUND_MAGIC) - _ROUND_MAGIC
        r = t - k * _LN2_HI - k * _LN2_LO
        out[j] = 1.0 + r * (
            1.0
            + r
            * (
                0.5
                + r
                * (
                    1.0 / 6
                    + r
                    * (
                        1.0 / 24
                        + r
                        * (
                            1.0 / 120
                            + r
                            * (
                                1.0 / 720
                                + r
                                * (
                                    1.0 / 5040
                                    + r
                                    * (
                                        1.0 / 40320
                                        + r
                                        * (
                                            1.0 / 362880
                                            + r * (1.0 / 3628800 + r * (1.0 / 39916800 + r * (1.0 / 479001600)))
                                        )
                                    )
                                )
                            )
                        )
                    )
                )
            )
        )
        ibuf[j] = (np.int64(k) + 1023) << 52
    scale = ibuf.view(np.float64)
    for j in range(n):
        out[j] *= scale[j]


@njit(cache=True, error_model="numpy")
def vlog(x, out, ibuf, ebuf):
    """``out <- log(x)`` for positive normal numbers, vectorisable (absolute error ~1e-15)."""
    n = x.shape[0]
    xi = x.view(np.int64)
    for j in range(n):
        b = xi[j]
        ebuf[j] = np.float64((b >> 52) - 1023)
        ibuf[j] = (b & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000
    mant = ibuf.view(np.float64)
    for j in range(n):
        m = mant[j]
        e = ebuf[j]
        big = m > 1.4142135623730951
        m = m * 0.5 if big else m
        e = e + 1.0 if big else e
        f = (m - 1.0) / (m + 1.0)
        s = f * f
        poly = 1.0 + s * (
            1.0 / 3
            + s
            * (
                1.0 / 5
                + s
                * (1.0 / 7 + s * (1.0 / 9 + s * (1.0 / 11 + s * (1.0 / 13 + s * (1.0 / 15 + s * (1.0 / 17 + s / 19))))))
            )
        )
        out[j] = e * _LN2 + 2.0 * f * poly


def lgamma_table(r: np.ndarray, ymax: int) -> np.ndarray:
    """``T[y, k] = lgamma(y + r_k) - lgamma(r_k) - lgamma(y + 1) + r_k log r_k`` for y < ymax."""
    from scipy.special import gammaln

    y = np.arange(ymax, dtype=np.float64)[:, None]
    r = np.asarray(r, dtype=np.float64)[None, :]
    return np.ascontiguousarray(gammaln(y + r) - gammaln(r) - gammaln(y + 1.0) + r * np.log(r))


@njit(cache=True, error_model="numpy")
def _grid_constants(y, r, table, out):
    """``out[k] = sum_j T(y_j, r_k)``: the mu-free NB log-likelihood of one gene at every grid r."""
    K = r.shape[0]
    ymax = table.shape[0]
    for k in range(K):
        out[k] = 0.0
    for j in range(y.shape[0]):
        yj = y[j]
        if yj < ymax and yj == math.floor(yj):
            row = table[np.int64(yj)]
            for k in range(K):
                out[k] += row[k]
        else:
            ly1 = math.lgamma(yj + 1.0)
            for k in range(K):
                rk = r[k]
                out[k] += math.lgamma(yj + rk) - math.lgamma(rk) - ly1 + rk * math.log(rk)


@njit(cache=True, error_model="numpy")
def _newton_step(Apk, s, A, L, dbeta):
    """Solve ``A dbeta = s`` (A unpacked from Apk). Returns ``(divergence s.dbeta, ok)``."""
    p = A.shape[0]
    k = 0
    for a in range(p):
        for b in range(a + 1):
            A[a, b] = Apk[k]
            A[b, a] = Apk[k]
            k += 1
    if not _chol(A, L, 0.0):
        return 0.0, False
    cholesky_solve(L, s, dbeta)
    div = 0.0
    for a in range(p):
        div += s[a] * dbeta[a]
    if not math.isfinite(div):
        return div, False
    return div, True


@njit(cache=True, error_model="numpy")
def _vec_deviance(y, mu, phi, t1, t2, t3, t4, ibuf, ebuf):
    """edgeR's total unit deviance of one gene with vectorised logarithms (same branches)."""
    m = y.shape[0]
    for j in range(m):
        t1[j] = y[j] + 1e-8
        t2[j] = mu[j] + 1e-8
    vlog(t1, t3, ibuf, ebuf)
    vlog(t2, t4, ibuf, ebuf)  # t3 = log y', t4 = log mu'
    dev = 0.0
    if phi < 1e-4:
        for j in range(m):
            yy = t1[j]
            resid = yy - t2[j]
            dev += 2.0 * (yy * (t3[j] - t4[j]) - resid - 0.5 * resid * resid * phi * (1.0 - phi * yy))
        return dev
    r = 1.0 / phi
    for j in range(m):
        t1[j] += r
        t2[j] += r
    vlog(t1, t1, ibuf, ebuf)  # log(y' + r)
    vlog(t2, t2, ibuf, ebuf)  # log(mu' + r)
    for j in range(m):
        yy = y[j] + 1e-8
        mm = mu[j] + 1e-8
        lyr = t3[j] - t4[j]
        if mm * phi > 1e6:
            dev += 2.0 * ((yy - mm) / mm - lyr) * mm / (1.0 + mm * phi)
        else:
            dev += 2.0 * (yy * lyr + (yy + r) * (t2[j] - t1[j]))
    return dev


@njit(cache=True, error_model="numpy")
def _packed_rows(X):
    m, p = X.shape
    q = p * (p + 1) // 2
    P = np.empty((m, q))
    for j in range(m):
        k = 0
        for a in range(p):
            for b in range(a + 1):
                P[j, k] = X[j, a] * X[j, b]
                k += 1
    return P


@njit(cache=True, error_model="numpy")
def _half_logdet_packed(Apk, A, Lw):
    p = A.shape[0]
    k = 0
    for a in range(p):
        for b in range(a + 1):
            A[a, b] = Apk[k]
            A[b, a] = Apk[k]
            k += 1
    return _half_logdet_floor(A, Lw)


@njit(cache=True, error_model="numpy")
def _apl_oneway_range(Y, X, P, offset, grid_disp, table, group, ngroups, du, maxit, tol, lo, hi, l0):
    m, p = X.shape
    q = P.shape[1]
    K = grid_disp.shape[0]
    libsize = np.exp(offset)
    rs = 1.0 / grid_disp
    gidx, gptr = _group_index(group, ngroups)
    mu = np.empty(m)
    lt = np.empty(m)
    w = np.empty(m)
    ibuf = np.empty(m, dtype=np.int64)
    ebuf = np.empty(m)
    bg = np.empty(ngroups)
    wg = np.empty(ngroups)
    consts = np.empty(K)
    acc = np.empty(q)
    A = np.empty((p, p))
    Lw = np.zeros((p, p))
    dl = np.empty(p)
    for g in range(lo, hi):
        y = Y[g]
        _grid_constants(y, rs, table, consts)
        for k in range(K):
            phi = grid_disp[k]
            r = rs[k]
            _one_way_gene(y, libsize, phi, gidx, gptr, bg, k > 0, maxit, tol, mu)
            anyzero = False
            for j in range(m):
                if mu[j] == 0.0:
                    anyzero = True
            if anyzero:
                # edgeR skips zero means: the per-observation reference path
                l0[g, k] = apl_gene(y, mu, phi, X, P, acc, A, Lw, w, dl, True)
                continue
            for j in range(m):
                lt[j] = mu[j] + r
            vlog(lt, lt, ibuf, ebuf)
            ll = consts[k]
            for i in range(ngroups):
                wg[i] = 0.0
            for j in range(m):
                ll += y[j] * (bg[group[j]] + offset[j] - lt[j]) - r * lt[j]
                wg[group[j]] += mu[j] / (1.0 + phi * mu[j])
            if p == 1:
                s = 0.0
                for i in range(ngroups):
                    s += wg[i]
                l0[g, k] = ll - 0.5 * math.log(abs(s))
                continue
            for a in range(p):
                for b in range(a + 1):
                    s = 0.0
                    for i in range(ngroups):
                        s += wg[i] * du[i, a] * du[i, b]
                    A[a, b] = s
                    A[b, a] = s
            l0[g, k] = ll - _half_logdet_floor(A, Lw)


@njit(parallel=True, cache=True, error_model="numpy")
def apl_grid_one_way(Y, X, P, offset, grid_disp, table, group, ngroups, du, maxit, tol, nchunk):
    """Adjusted profile log-likelihoods on the dispersion grid for one-way layouts.

    Group means are fitted one group at a time (``mglmOneWay``), ``X^T W X`` is assembled from the
    group sums of the working weights and the distinct design rows ``du``.
    """
    G = Y.shape[0]
    l0 = np.empty((G, grid_disp.shape[0]))
    for c in prange(nchunk):
        lo, hi = _chunk(c, nchunk, G)
        _apl_oneway_range(Y, X, P, offset, grid_disp, table, group, ngroups, du, maxit, tol, lo, hi, l0)
    return l0


def block_size(m: int, p: int) -> int:
    """Genes per block: BLAS products of about 2e5 multiply-adds (single-threaded in OpenBLAS)."""
    q = p * (p + 1) // 2
    return int(max(4, min(16, 200_000 // max(1, m * max(q, 1)))))


@njit(cache=True, error_model="numpy")
def _exp_small(u):
    """``exp(u)`` for ``|u| <= 0.1`` by its Taylor polynomial (remainder below 3e-17)."""
    return 1.0 + u * (
        1.0
        + u
        * (
            0.5
            + u
            * (
                1.0 / 6
                + u
                * (
                    1.0 / 24
                    + u * (1.0 / 120 + u * (1.0 / 720 + u * (1.0 / 5040 + u * (1.0 / 40320 + u * (1.0 / 362880)))))
                )
            )
        )
    )


@njit(cache=True, error_model="numpy")
def _block_pass(Yb, X, XT, P, offset, phis, Bc, ETA, MU, W, D, APK, S, eta_f, mu_f, ibuf, incremental):
    """Means, working weights, packed ``X^T W X`` and scores for a block of genes (rows).

    With ``incremental``, ``ETA`` and ``MU`` hold the previous pass's values: rows whose linear
    predictor moved by at most 0.1 update their means by a Taylor polynomial of the change
    instead of a full exponential.
    """
    nb, m = ETA.shape
    if incremental:
        # W is free until the weights are computed: use it for the new linear predictor
        np.dot(Bc, XT, W)
        for i in range(nb):
            small = True
            for j in range(m):
                W[i, j] += offset[j]
                if abs(W[i, j] - ETA[i, j]) > 0.1:
                    small = False
            if small:
                for j in range(m):
                    MU[i, j] *= _exp_small(W[i, j] - ETA[i, j])
                    ETA[i, j] = W[i, j]
            else:
                for j in range(m):
                    ETA[i, j] = W[i, j]
                vexp(ETA[i], MU[i], ibuf)
    else:
        np.dot(Bc, XT, ETA)
        for i in range(nb):
            for j in range(m):
                ETA[i, j] += offset[j]
        vexp(eta_f, mu_f, ibuf)
    for i in range(nb):
        phi = phis[i]
        for j in range(m):
            inv = 1.0 / (1.0 + phi * MU[i, j])
            W[i, j] = MU[i, j] * inv
            D[i, j] = (Yb[i, j] - MU[i, j]) * inv
    np.dot(W, P, APK)
    np.dot(D, X, S)


@njit(cache=True, error_model="numpy")
def _fill_block(Y, g0, Yb):
    G = Y.shape[0]
    nb = Yb.shape[0]
    for i in range(nb):
        src = min(g0 + i, G - 1)
        Yb[i, :] = Y[src]


@njit(cache=True, error_model="numpy")
def _fast_fit_block(
    blk, Y, X, XT, P, offset, libsize, disp, beta_start, has_start, pinv_one, tol, maxit, nb, beta, mu_out, dev, ok_out
):
    G, m = Y.shape
    p = X.shape[1]
    q = P.shape[1]
    g0 = blk * nb
    Yb = np.empty((nb, m))
    eta_f = np.empty(nb * m)
    mu_f = np.empty(nb * m)
    ETA = eta_f.reshape((nb, m))
    MU = mu_f.reshape((nb, m))
    W = np.empty((nb, m))
    D = np.empty((nb, m))
    ibuf = np.empty(nb * m, dtype=np.int64)
    APK = np.empty((nb, q))
    S = np.empty((nb, p))
    Bc = np.zeros((nb, p))
    phis = np.empty(nb)
    done = np.zeros(nb, dtype=np.bool_)
    bad = np.zeros(nb, dtype=np.bool_)
    A = np.empty((p, p))
    L = np.zeros((p, p))
    db = np.empty(p)
    t1 = np.empty(m)
    t2 = np.empty(m)
    t3 = np.empty(m)
    t4 = np.empty(m)
    ib1 = np.empty(m, dtype=np.int64)
    eb1 = np.empty(m)
    _fill_block(Y, g0, Yb)
    for i in range(nb):
        g = min(g0 + i, G - 1)
        phis[i] = disp[g]
        ymax = 0.0
        for j in range(m):
            if Yb[i, j] > ymax:
                ymax = Yb[i, j]
        if ymax < LOW_VALUE:
            done[i] = True  # all zero: nothing to fit
            bad[i] = True
            continue
        if has_start:
            for a in range(p):
                Bc[i, a] = beta_start[g, a]
        else:
            null_start(Yb[i], libsize, phis[i], pinv_one, Bc[i])
    for _ in range(maxit):
        _block_pass(Yb, X, XT, P, offset, phis, Bc, ETA, MU, W, D, APK, S, eta_f, mu_f, ibuf, False)
        alldone = True
        for i in range(nb):
            if done[i]:
                continue
            div, okstep = _newton_step(APK[i], S[i], A, L, db)
            if not okstep:
                done[i] = True
                bad[i] = True
                for a in range(p):
                    Bc[i, a] = 0.0
                continue
            for a in range(p):
                Bc[i, a] += db[a]
            if div < tol:
                done[i] = True
            else:
                alldone = False
        if alldone:
            break
    # final means at the last coefficients
    np.dot(Bc, XT, ETA)
    for i in range(nb):
        for j in range(m):
            ETA[i, j] += offset[j]
    vexp(eta_f, mu_f, ibuf)
    for i in range(nb):
        g = g0 + i
        if g >= G:
            break
        y = Yb[i]
        if not done[i] or bad[i]:
            ymax = 0.0
            for j in range(m):
                if y[j] > ymax:
                    ymax = y[j]
            if ymax < LOW_VALUE:
                for a in range(p):
                    beta[g, a] = np.nan
                for j in range(m):
                    mu_out[g, j] = 0.0
                dev[g] = 0.0
                ok_out[g] = True
            else:
                ok_out[g] = False
            continue
        dv = _vec_deviance(y, MU[i], phis[i], t1, t2, t3, t4, ib1, eb1)
        for a in range(p):
            beta[g, a] = Bc[i, a]
        for j in range(m):
            mu_out[g, j] = MU[i, j]
        dev[g] = dv
        ok_out[g] = math.isfinite(dv)


@njit(parallel=True, cache=True, error_model="numpy")
def fast_fit(Y, X, offset, disp, beta_start, has_start, pinv_one, tol, maxit, nb):
    """Fisher scoring to edgeR's convergence rule (step taken, then ``dl . dbeta < tol``).

    Genes are processed in blocks of ``nb`` so that the Gram matrices and scores are BLAS
    matrix products. Returns ``beta``, ``mu``, ``deviance`` and ``ok`` (False: hand the gene to
    the reference Levenberg kernel). All-zero rows get NaN coefficients and zero means, as in
    edgeR.
    """
    G, m = Y.shape
    p = X.shape[1]
    XT = np.ascontiguousarray(X.T)
    P = _packed_rows(X)
    # plain loops and np.empty only outside the prange: array expressions would become parfors
    libsize = np.empty(m)
    for j in range(m):
        libsize[j] = math.exp(offset[j])
    beta = np.empty((G, p))
    mu_out = np.empty((G, m))
    dev = np.empty(G)
    ok_out = np.empty(G, dtype=np.bool_)
    nblocks = (G + nb - 1) // nb
    for blk in prange(nblocks):
        _fast_fit_block(
            blk,
            Y,
            X,
            XT,
            P,
            offset,
            libsize,
            disp,
            beta_start,
            has_start,
            pinv_one,
            tol,
            maxit,
            nb,
            beta,
            mu_out,
            dev,
            ok_out,
        )
    return beta, mu_out, dev, ok_out


@njit(cache=True, error_model="numpy")
def _apl_fast_block(blk, Y, X, XT, P, offset, grid_disp, rs, table, pinv_x, tol_first, tol_grid, maxit, nb, l0, ok_out):
    G, m = Y.shape
    p = X.shape[1]
    q = P.shape[1]
    K = grid_disp.shape[0]
    g0 = blk * nb
    Yb = np.empty((nb, m))
    eta_f = np.empty(nb * m)
    mu_f = np.empty(nb * m)
    lt_f = np.empty(nb * m)
    ETA = eta_f.reshape((nb, m))
    MU = mu_f.reshape((nb, m))
    LT = lt_f.reshape((nb, m))
    W = np.empty((nb, m))
    D = np.empty((nb, m))
    ibuf = np.empty(nb * m, dtype=np.int64)
    ebuf = np.empty(nb * m)
    APK = np.empty((nb, q))
    S = np.empty((nb, p))
    Bc = np.zeros((nb, p))
    DB = np.zeros((nb, p))
    hist = np.zeros((3, nb, p))
    phis = np.empty(nb)
    conv = np.zeros(nb, dtype=np.bool_)
    bad = np.zeros(nb, dtype=np.bool_)
    divs = np.zeros(nb)
    hld = np.zeros(nb)
    consts = np.empty((nb, K))
    A = np.empty((p, p))
    L = np.zeros((p, p))
    Lw = np.zeros((p, p))
    _fill_block(Y, g0, Yb)
    for i in range(nb):
        _grid_constants(Yb[i], rs, table, consts[i])
    for k in range(K):
        phi = grid_disp[k]
        r = rs[k]
        for i in range(nb):
            phis[i] = phi
        if k == 0:
            tol = tol_first
            for i in range(nb):
                for j in range(m):
                    W[i, j] = math.log(Yb[i, j] + 0.5) - offset[j]
            np.dot(W, pinv_x.T, Bc)
        else:
            tol = tol_grid
            for i in range(nb):
                for a in range(p):
                    if k == 1:
                        Bc[i, a] = hist[0, i, a]
                    elif k == 2:
                        Bc[i, a] = 2.0 * hist[0, i, a] - hist[1, i, a]
                    else:
                        Bc[i, a] = 3.0 * hist[0, i, a] - 3.0 * hist[1, i, a] + hist[2, i, a]
        for i in range(nb):
            conv[i] = bad[i]
        for it in range(maxit):
            _block_pass(Yb, X, XT, P, offset, phis, Bc, ETA, MU, W, D, APK, S, eta_f, mu_f, ibuf, k > 0 or it > 0)
            allconv = True
            for i in range(nb):
                if conv[i]:
                    continue
                div, okstep = _newton_step(APK[i], S[i], A, L, DB[i])
                if not okstep:
                    conv[i] = True
                    bad[i] = True
                    for a in range(p):
                        Bc[i, a] = 0.0
                    continue
                if div < tol:
                    conv[i] = True
                    divs[i] = div
                    hld[i] = _half_logdet_packed(APK[i], A, Lw)
                else:
                    allconv = False
                    for a in range(p):
                        Bc[i, a] += DB[i, a]
            if allconv:
                break
        for i in range(nb):
            if not conv[i]:
                bad[i] = True
        for t in range(nb * m):
            lt_f[t] = mu_f[t] + r
        vlog(lt_f, lt_f, ibuf, ebuf)
        for i in range(nb):
            g = g0 + i
            if g >= G or bad[i]:
                continue
            ll = consts[i, k] + 0.5 * divs[i]
            for j in range(m):
                ll += Yb[i, j] * (ETA[i, j] - LT[i, j]) - r * LT[i, j]
            l0[g, k] = ll - hld[i]
        for i in range(nb):
            for a in range(p):
                hist[2, i, a] = hist[1, i, a]
                hist[1, i, a] = hist[0, i, a]
                hist[0, i, a] = Bc[i, a] + DB[i, a]
    for i in range(nb):
        g = g0 + i
        if g < G:
            ok_out[g] = not bad[i]


@njit(parallel=True, cache=True, error_model="numpy")
def apl_grid_fast(Y, X, offset, grid_disp, table, pinv_x, tol_first, tol_grid, maxit, nb):
    """Cox-Reid APL of every gene on the dispersion grid by Newton path following.

    At the first grid point the fit starts from the least-squares fit of ``log(y + 0.5) - offset``
    (``pinv_x`` is the pseudo-inverse of the design) and is iterated to ``tol_first``; at the next
    ones the start is a quadratic extrapolation of the previous solutions and scoring stops as
    soon as the Newton decrement ``dl . dbeta`` is below ``tol_grid``; the log-likelihood is then
    corrected by half the decrement (its value at the maximum to second order) and the Cox-Reid
    term is taken at the last iterate. Genes are processed in blocks of ``nb`` (BLAS products).
    Returns ``l0`` (G x K) and ``ok`` (False: recompute with the reference kernel).
    """
    G, m = Y.shape
    XT = np.ascontiguousarray(X.T)
    P = _packed_rows(X)
    pinv_x = np.ascontiguousarray(pinv_x)
    K = grid_disp.shape[0]
    rs = np.empty(K)
    for k in range(K):
        rs[k] = 1.0 / grid_disp[k]
    l0 = np.empty((G, K))
    ok_out = np.empty(G, dtype=np.bool_)
    nblocks = (G + nb - 1) // nb
    for blk in prange(nblocks):
        _apl_fast_block(
            blk, Y, X, XT, P, offset, grid_disp, rs, table, pinv_x, tol_first, tol_grid, maxit, nb, l0, ok_out
        )
    return l0, ok_out


# ---------------------------------------------------------------------------------------------
# Python-level drivers (glmFit.default, predFC)
# ---------------------------------------------------------------------------------------------


class GlmFit(NamedTuple):
    """What :func:`glm_fit` returns (natural-log coefficients, as edgeR stores them)."""

    coefficients: np.ndarray
    fitted: np.ndarray
    deviance: np.ndarray
    converged: np.ndarray
    method: str


def design_as_factor(design: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group samples by identical design rows (edgeR's ``designAsFactor``).

    Returns the group index of each sample (groups in order of first appearance) and the index
    of the first sample of each group.
    """
    _, first, inv = np.unique(np.round(design, 12), axis=0, return_index=True, return_inverse=True)
    inv = inv.reshape(-1)
    order = np.argsort(first)
    relabel = np.empty_like(order)
    relabel[order] = np.arange(order.size)
    return relabel[inv].astype(np.int64), first[order]


def qr_keep_columns(design: np.ndarray, tol: float = 1e-7) -> np.ndarray:
    """Columns R's ``qr()`` (LINPACK ``dqrdc2``, limited pivoting) keeps: dependent ones move last.

    Returns the indices of the kept columns in their original order; their number is the rank.
    """
    n, p = design.shape
    basis: list[np.ndarray] = []
    keep = []
    for a in range(p):
        v = design[:, a].astype(float).copy()
        norm0 = np.linalg.norm(v)
        for u in basis:
            v -= (u @ v) * u
        nv = np.linalg.norm(v)
        if norm0 > 0 and nv > tol * norm0 and len(basis) < n:
            basis.append(v / nv)
            keep.append(a)
    return np.asarray(keep, dtype=np.int64)


def glm_fit(
    counts: np.ndarray,
    design: np.ndarray,
    offset: np.ndarray,
    dispersion,
    *,
    start: np.ndarray | None = None,
    tol: float = 1e-6,
    maxit: int = 250,
) -> GlmFit:
    """edgeR's ``glmFit.default`` with ``prior.count = 0``: one-way or Levenberg NB GLM fits.

    Parameters
    ----------
    counts
        ``(G, m)`` counts (float64).
    design
        ``(m, p)`` full-rank design.
    offset
        ``(m,)`` log library sizes.
    dispersion
        Scalar or ``(G,)`` NB dispersions.
    start
        Optional ``(G, p)`` starting coefficients (natural log).
    tol, maxit
        Levenberg tolerance and iteration limit (edgeR's glmFit uses 1e-6 and 250).
    """
    Y = np.ascontiguousarray(counts, dtype=np.float64)
    X = np.ascontiguousarray(design, dtype=np.float64)
    G, m = Y.shape
    p = X.shape[1]
    off = np.ascontiguousarray(np.broadcast_to(np.asarray(offset, dtype=np.float64), (m,)))
    disp = np.ascontiguousarray(np.broadcast_to(np.asarray(dispersion, dtype=np.float64), (G,)))
    nch = n_chunks(G)
    group, first = design_as_factor(X)
    if first.size == p:
        du = X[first]
        has_start = start is not None
        bstart = np.ascontiguousarray(start @ du.T) if has_start else np.zeros((G, p))
        bg, mu, dev = one_way_fit(Y, np.exp(off), disp, group, p, bstart, has_start, 50, 1e-10, nch)
        if np.allclose(du, np.eye(p)):
            coef = bg
        else:
            coef = np.linalg.solve(du, bg.T).T
        return GlmFit(coef, mu, dev, np.ones(G, dtype=bool), "oneway")
    pinv_one = np.linalg.lstsq(X, np.ones(m), rcond=None)[0]
    has_start = start is not None
    bstart = np.ascontiguousarray(start, dtype=np.float64) if has_start else np.zeros((G, p))
    if G == 0:
        return GlmFit(np.zeros((0, p)), np.zeros((0, m)), np.zeros(0), np.zeros(0, dtype=bool), "levenberg")
    nb = block_size(m, p)
    beta, mu, dev, ok = fast_fit(Y, X, off, disp, bstart, has_start, pinv_one, tol, 30, nb)
    converged = np.ones(G, dtype=bool)
    if has_start and not ok.all():
        # a poor start: retry from edgeR's own (null) start
        bad = np.flatnonzero(~ok)
        b2, mu2, dev2, ok2 = fast_fit(
            np.ascontiguousarray(Y[bad]),
            X,
            off,
            np.ascontiguousarray(disp[bad]),
            np.zeros((bad.size, p)),
            False,
            pinv_one,
            tol,
            30,
            nb,
        )
        beta[bad], mu[bad], dev[bad], ok[bad] = b2, mu2, dev2, ok2
    if not ok.all():
        # the reference (edgeR's damped Levenberg) for the genes that scoring could not settle
        bad = np.flatnonzero(~ok)
        P = packed_design(X)
        b2, mu2, dev2, _iters, failed = levenberg_fit(
            np.ascontiguousarray(Y[bad]),
            X,
            P,
            off,
            np.ascontiguousarray(disp[bad]),
            np.zeros((bad.size, p)),
            False,
            pinv_one,
            tol,
            maxit,
            n_chunks(bad.size),
        )
        beta[bad] = b2
        mu[bad] = mu2
        dev[bad] = dev2
        converged[bad] = ~failed
    return GlmFit(beta, mu, dev, converged, "levenberg")


def add_prior_count(counts: np.ndarray, lib_size: np.ndarray, prior_count: float):
    """edgeR's ``addPriorCount``: prior scaled by library size, offsets ``log(N + 2 prior)``."""
    lib = np.asarray(lib_size, dtype=np.float64)
    prior = prior_count * lib / lib.mean()
    return np.ascontiguousarray(counts + prior[None, :]), np.log(lib + 2.0 * prior)


def pred_fc(counts, design, lib_size, dispersion, prior_count: float = 0.125, start=None) -> np.ndarray:
    """edgeR's ``predFC``: log2 coefficients of the fit to prior-count augmented counts.

    ``start`` (natural-log coefficients, e.g. the unshrunk fit) only speeds up the iterations.
    """
    y, off = add_prior_count(counts, lib_size, prior_count)
    if start is not None:
        start = np.where(np.isfinite(start), start, 0.0)
    return glm_fit(y, design, off, dispersion, start=start).coefficients / math.log(2.0)
