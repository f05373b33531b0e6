"""Batched apeglm posterior modes: NB likelihood, Cauchy prior on one coefficient, one gene per ``prange`` step.

apeglm 1.29 (``method = "nbinomCR"``, the one DESeq2's ``lfcShrink(type = "apeglm")`` uses) minimises,
per gene, the scaled negative log posterior (natural-log coefficients ``b``, ``eta = X b``)

    f(b) = [ -sum_j ( y_j eta_j - (y_j + r) log(r + exp(eta_j + o_j)) )
             + sum_{k not shrunk} b_k^2 / (2 sigma^2) + sum_{k shrunk} log(1 + b_k^2 / S^2) ] / c + 10

with ``r = 1 / dispersion``, offsets ``o`` (log size factors), ``sigma = 15`` (a wide normal on the
coefficients left alone), ``S`` the Cauchy scale and ``c`` a per-gene constant (``f`` at ``b = 0``,
floored at 1) that keeps the objective of order one. The optimiser is LBFGSpp's L-BFGS as
RcppNumerical 0.7 calls it (``optim_lbfgs(maxit = 300, eps_f = 1e-8, eps_g = 1e-8)``: memory 6,
Nocedal-Wright strong-Wolfe line search with ``ftol = 1e-4``, ``wolfe = 0.9``, at most 100 trials;
stop when ``||g|| <= 1e-8 max(1, ||b||)`` or when ``f`` changed by at most ``1e-8 max(|f|, 1)`` in
the last iteration). It is reproduced step by step here, so the modes agree with R's to rounding:
apeglm's stopping rule is loose on flat posteriors, and the exact optimum is not what R reports.

The posterior covariance is apeglm's Laplace approximation through R's ``optimHess``: central
differences (step 1e-3) of the analytic gradient of the unscaled objective, symmetrised, inverted.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .small_linalg import lu_inverse

_MEMORY = 6
_FTOL = 1e-4
_WOLFE = 0.9
_MAX_LINESEARCH = 100
_NDEPS = 1e-3
_EPS = 2.220446049250313e-16


@njit(cache=True, error_model="numpy")
def _objective(b, X, y, off, size, shrink, sigma2, S2, cnst, eta, grad):
    """Scaled negative log posterior at ``b`` (returned) and its gradient (into ``grad``)."""
    m, p = X.shape
    for j in range(m):
        s = 0.0
        for k in range(p):
            s += X[j, k] * b[k]
        eta[j] = s
    for k in range(p):
        grad[k] = 0.0
    lik = 0.0
    for j in range(m):
        e = math.exp(eta[j] + off[j])
        a = y[j] + size
        den = e + size
        c = y[j] - a * e / den
        lik += y[j] * eta[j] - a * math.log(den)
        for k in range(p):
            grad[k] -= X[j, k] * c
    prior = 0.0
    for k in range(p):
        if shrink[k]:
            prior += math.log1p(b[k] * b[k] / S2)
            grad[k] += 2.0 * b[k] / (S2 + b[k] * b[k])
        else:
            prior += b[k] * b[k] / (2.0 * sigma2)
            grad[k] += b[k] / sigma2
    for k in range(p):
        grad[k] /= cnst
    return -lik / cnst + prior / cnst + 10.0


@njit(cache=True, error_model="numpy")
def _dot(a, b):
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i]
    return s


@njit(cache=True, error_model="numpy")
def _quad_interp(step_lo, step_hi, fx_lo, fx_hi, dg_lo):
    """LBFGSpp's NocedalWright interpolation: the quadratic minimiser, or bisection near the ends."""
    fdiff = fx_hi - fx_lo
    sdiff = step_hi - step_lo
    smid = (step_hi + step_lo) / 2.0
    cand = (fdiff * step_lo - smid * sdiff * dg_lo) / (fdiff - sdiff * dg_lo)
    end_dist = min(abs(cand - step_lo), abs(cand - step_hi))
    near_end = end_dist < 0.01 * abs(sdiff)
    if not np.isfinite(cand) or cand <= min(step_lo, step_hi) or cand >= max(step_lo, step_hi) or near_end:
        return smid
    return cand


@njit(cache=True, error_model="numpy")
def _line_search(X, y, off, size, shrink, sigma2, S2, cnst, xp, drt, step, fx, grad, x, x_lo, g_lo, eta):
    """Strong-Wolfe line search along ``drt`` from ``xp`` (LBFGSpp's LineSearchNocedalWright).

    Updates ``x``, ``grad`` in place. Returns ``(fx, step, status)``; status -1 where LBFGSpp throws.
    """
    p = xp.shape[0]
    fx_init = fx
    dg_init = _dot(grad, drt)
    if dg_init > 0.0:
        return fx, step, -1
    test_decr = _FTOL * dg_init
    test_curv = -_WOLFE * dg_init
    step_lo = 0.0
    fx_lo = fx_init
    dg_lo = dg_init
    step_hi = 0.0
    fx_hi = 0.0
    for k in range(p):
        x_lo[k] = xp[k]
        g_lo[k] = grad[k]
    it = 0
    while True:
        for k in range(p):
            x[k] = xp[k] + step * drt[k]
        fx = _objective(x, X, y, off, size, shrink, sigma2, S2, cnst, eta, grad)
        dg = _dot(grad, drt)
        if fx - fx_init > step * test_decr or (0.0 < step_lo and fx >= fx_lo):
            step_hi = step
            fx_hi = fx
            break
        if abs(dg) <= test_curv:
            return fx, step, 0
        step_hi = step_lo
        fx_hi = fx_lo
        step_lo = step
        fx_lo = fx
        dg_lo = dg
        for k in range(p):
            x_lo[k] = x[k]
            g_lo[k] = grad[k]
        if dg >= 0.0:
            break
        it += 1
        if it >= _MAX_LINESEARCH:
            return fx, step, 0
        step *= 2.0
    while True:
        step = _quad_interp(step_lo, step_hi, fx_lo, fx_hi, dg_lo)
        for k in range(p):
            x[k] = xp[k] + step * drt[k]
        fx = _objective(x, X, y, off, size, shrink, sigma2, S2, cnst, eta, grad)
        dg = _dot(grad, drt)
        if fx - fx_init > step * test_decr or fx >= fx_lo:
            if step == step_hi:
                return fx, step, -1
            step_hi = step
            fx_hi = fx
        else:
            if abs(dg) <= test_curv:
                return fx, step, 0
            if dg * (step_hi - step_lo) >= 0.0:
                step_hi = step_lo
                fx_hi = fx_lo
            if step == step_lo:
                return fx, step, -1
            step_lo = step
            fx_lo = fx
            dg_lo = dg
            for k in range(p):
                x_lo[k] = x[k]
                g_lo[k] = grad[k]
        it += 1
        if it >= _MAX_LINESEARCH:
            if step_lo <= 0.0:
                return fx, step, -1
            for k in range(p):
                x[k] = x_lo[k]
                grad[k] = g_lo[k]
            return fx_lo, step_lo, 0


@njit(cache=True, error_model="numpy")
def _lbfgs(x, X, y, off, size, shrink, sigma2, S2, cnst, maxit, eps_f, eps_g):
    """Minimise the scaled objective from ``x`` (in place) as LBFGSpp does. Returns the status (0 or -1)."""
    p = x.shape[0]
    m = X.shape[0]
    eta = np.empty(m)
    grad = np.empty(p)
    xp = np.empty(p)
    gp = np.empty(p)
    drt = np.empty(p)
    x_lo = np.empty(p)
    g_lo = np.empty(p)
    S = np.zeros((_MEMORY, p))
    Yh = np.zeros((_MEMORY, p))
    ys = np.zeros(_MEMORY)
    alpha = np.zeros(_MEMORY)
    theta = 1.0
    ncorr = 0
    ptr = _MEMORY
    fx = _objective(x, X, y, off, size, shrink, sigma2, S2, cnst, eta, grad)
    gnorm = math.sqrt(_dot(grad, grad))
    if gnorm <= eps_g or gnorm <= eps_g * math.sqrt(_dot(x, x)):
        return 0
    for k in range(p):
        drt[k] = -grad[k]
    step = 1.0 / math.sqrt(_dot(drt, drt))
    f_past = fx
    it = 1
    while True:
        for k in range(p):
            xp[k] = x[k]
            gp[k] = grad[k]
        fx, step, status = _line_search(X, y, off, size, shrink, sigma2, S2, cnst, xp, drt, step, fx, grad, x,
                                        x_lo, g_lo, eta)
        if status != 0:
            return status
        gnorm = math.sqrt(_dot(grad, grad))
        if gnorm <= eps_g or gnorm <= eps_g * math.sqrt(_dot(x, x)):
            return 0
        if abs(f_past - fx) <= eps_f * max(max(abs(fx), abs(f_past)), 1.0):
            return 0
        f_past = fx
        if maxit != 0 and it >= maxit:
            return 0
        # new correction pair (s, y)
        loc = ptr % _MEMORY
        sy = 0.0
        yy = 0.0
        for k in range(p):
            sk = x[k] - xp[k]
            yk = grad[k] - gp[k]
            sy += sk * yk
            yy += yk * yk
        if sy > _EPS * yy:
            for k in range(p):
                S[loc, k] = x[k] - xp[k]
                Yh[loc, k] = grad[k] - gp[k]
            ys[loc] = sy
            theta = yy / sy
            if ncorr < _MEMORY:
                ncorr += 1
            ptr = loc + 1
        # two-loop recursion: drt = -H grad
        for k in range(p):
            drt[k] = -grad[k]
        j = ptr % _MEMORY
        for _ in range(ncorr):
            j = (j + _MEMORY - 1) % _MEMORY
            a = _dot(S[j], drt) / ys[j]
            alpha[j] = a
            for k in range(p):
                drt[k] -= a * Yh[j, k]
        for k in range(p):
            drt[k] /= theta
        for _ in range(ncorr):
            bb = _dot(Yh[j], drt) / ys[j]
            for k in range(p):
                drt[k] += (alpha[j] - bb) * S[j, k]
            j = (j + 1) % _MEMORY
        step = 1.0
        it += 1


@njit(cache=True, error_model="numpy")
def _newton_polish(b, X, y, off, size, shrink, sigma2, S2, eta, grad, H, Hinv, work):
    """Damped Newton steps on the unscaled objective from ``b`` (in place), for genes whose L-BFGS
    runs failed or disagreed (where apeglm refits with R's ``optim``)."""
    p = b.shape[0]
    m = X.shape[0]
    trial = np.empty(p)
    f = _objective(b, X, y, off, size, shrink, sigma2, S2, 1.0, eta, grad)
    for _ in range(100):
        for k in range(p):
            for q in range(p):
                H[k, q] = 0.0
        for j in range(m):
            e = math.exp(eta[j] + off[j])
            den = e + size
            w = (y[j] + size) * e * size / (den * den)
            for k in range(p):
                for q in range(p):
                    H[k, q] += w * X[j, k] * X[j, q]
        for k in range(p):
            if shrink[k]:
                d = S2 + b[k] * b[k]
                H[k, k] += 2.0 * (S2 - b[k] * b[k]) / (d * d)
            else:
                H[k, k] += 1.0 / sigma2
        if not lu_inverse(H, Hinv, work):
            return
        t = 1.0
        gmax = 0.0
        for k in range(p):
            gmax = max(gmax, abs(grad[k]))
        if gmax < 1e-10:
            return
        improved = False
        for _ in range(30):
            for k in range(p):
                s = 0.0
                for q in range(p):
                    s += Hinv[k, q] * grad[q]
                trial[k] = b[k] - t * s
            ft = _objective(trial, X, y, off, size, shrink, sigma2, S2, 1.0, eta, work[0])
            if ft <= f:
                improved = True
                break
            t *= 0.5
        if not improved:
            _objective(b, X, y, off, size, shrink, sigma2, S2, 1.0, eta, grad)
            return
        done = abs(f - ft) <= 1e-12 * max(abs(f), 1.0)
        for k in range(p):
            b[k] = trial[k]
        f = _objective(b, X, y, off, size, shrink, sigma2, S2, 1.0, eta, grad)
        if done:
            return


@njit(cache=True, error_model="numpy")
def _laplace_cov(b, X, y, off, size, shrink, sigma2, S2, eta, cov, H, work):
    """R ``optimHess``: central differences (step 1e-3) of the unscaled gradient, symmetrised, then
    inverted into ``cov``. Returns False where the Hessian is singular."""
    p = b.shape[0]
    bb = b.copy()
    g1 = np.empty(p)
    g2 = np.empty(p)
    for i in range(p):
        bb[i] = b[i] + _NDEPS
        _objective(bb, X, y, off, size, shrink, sigma2, S2, 1.0, eta, g1)
        bb[i] = b[i] - _NDEPS
        _objective(bb, X, y, off, size, shrink, sigma2, S2, 1.0, eta, g2)
        bb[i] = b[i]
        for j in range(p):
            H[i, j] = (g1[j] - g2[j]) / (2.0 * _NDEPS)
    for i in range(p):
        for j in range(i):
            s = 0.5 * (H[i, j] + H[j, i])
            H[i, j] = s
            H[j, i] = s
    return lu_inverse(H, cov, work)


@njit(parallel=True, cache=True, error_model="numpy")
def apeglm_map(Y, X, offset, dispersion, shrink, sigma2, S2, init1, init2, maxit, eps_f, eps_g, beta, cov, status):
    """Posterior modes and Laplace covariances of every gene (natural-log scale).

    Parameters
    ----------
    Y : (G, m) counts; genes with all-zero counts get NaN.
    X : (m, p) design.
    offset : (G, m) or (1, m) natural-log offsets (log size factors, or log effective library sizes).
    dispersion : (G,) NB dispersions (Var = mu + dispersion mu^2).
    shrink : (p,) bool, the coefficients with the Cauchy prior (scale ``sqrt(S2)``); the others get
        N(0, sigma2).
    init1, init2 : (p,) the two L-BFGS starts (apeglm: (.1, -.1, ...) and (-.1, .1, ...)).
    beta, cov, status : outputs, (G, p), (G, p, p), (G,). status: 0 converged; -1 an L-BFGS run failed
        or the two runs' modes differ by more than 0.01 (then the mode is refined by Newton steps, as
        apeglm refits such genes with ``optim``); -2 the Laplace covariance is not positive (SE NaN).
    """
    G, m = Y.shape
    p = X.shape[1]
    shared_offset = offset.shape[0] == 1
    for g in prange(G):
        y = Y[g]
        total = 0.0
        for j in range(m):
            total += y[j]
        if total <= 0.0 or not dispersion[g] > 0.0:
            for k in range(p):
                beta[g, k] = np.nan
                for q in range(p):
                    cov[g, k, q] = np.nan
            status[g] = 0 if total <= 0.0 else -2
            continue
        off = offset[0] if shared_offset else offset[g]
        size = 1.0 / dispersion[g]
        # apeglm's scale constant: the unscaled objective at b = 0, floored at 1
        cn = 0.0
        for j in range(m):
            cn += (y[j] + size) * math.log(size + math.exp(off[j]))
        cn = max(cn, 1.0)
        b1 = init1.copy()
        s1 = _lbfgs(b1, X, y, off, size, shrink, sigma2, S2, cn, maxit, eps_f, eps_g)
        b2 = init2.copy()
        s2 = _lbfgs(b2, X, y, off, size, shrink, sigma2, S2, cn, maxit, eps_f, eps_g)
        delta = 0.0
        for k in range(p):
            delta = max(delta, abs(b1[k] - b2[k]))
        eta = np.empty(m)
        grad = np.empty(p)
        H = np.empty((p, p))
        Hinv = np.empty((p, p))
        work = np.empty((2, p))
        st = 0
        if s1 != 0 or s2 != 0 or delta > 0.01:
            st = -1
            _newton_polish(b1, X, y, off, size, shrink, sigma2, S2, eta, grad, H, Hinv, work)
        for k in range(p):
            beta[g, k] = b1[k]
        ok = _laplace_cov(b1, X, y, off, size, shrink, sigma2, S2, eta, Hinv, H, work)
        positive = ok
        for k in range(p):
            if not Hinv[k, k] > 0.0:
                positive = False
        for k in range(p):
            for q in range(p):
                cov[g, k, q] = Hinv[k, q] if positive else np.nan
        status[g] = st if positive else -2
