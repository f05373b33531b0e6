"""edgeR's ``estimateDisp``: common, trended and tagwise NB dispersions by weighted likelihood.

The Cox-Reid adjusted profile log-likelihood (APL) of every gene is evaluated on a grid of 21
dispersions ``0.1 * 2^seq(-10, 10)``. Then:

* **common**: the maximum of a cubic spline (``maximizeInterpolant``) through the grid sums;
* **trended**: the grid likelihoods are smoothed against the average log-CPM by a local-constant
  ``locfit`` (tricube kernel, nearest-neighbour span ``0.25 + 0.75 sqrt(50 / G)``; locfit's adaptive
  vertex tree with linear interpolation between vertices is reproduced), and each gene's maximum
  of the smoothed curve is its trended dispersion;
* **tagwise**: the maximum of ``l_g + prior.n * m0_g`` (weighted likelihood empirical Bayes),
  with ``prior.n = prior.df / (m - p)`` and ``prior.df`` from ``squeezeVar`` of the deviance
  based variances at the trended dispersion.

Genes with fewer than ``min_row_sum`` counts are left out of the estimation (their trended and
tagwise values are those of the lowest-abundance selected gene). For genes whose fitted values
vanish in some samples (exact zeros), the APL is computed on the remaining samples with the
remaining estimable design columns, as edgeR does.

edgeR refits every gene at every grid point with damped Levenberg iterations. Here the grid is
walked by Newton steps from an extrapolation of the previous solutions (BLAS products over
blocks of genes); the log-likelihoods agree with edgeR's to about 1e-4 and the dispersions to
about 1e-5 (relative). ``apl_grid(..., exact=True)`` runs edgeR's own iterations instead.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from numba import njit, prange

from .._kernels.edger_glm import (
    apl_grid_fast,
    apl_grid_levenberg,
    apl_grid_one_way,
    block_size,
    design_as_factor,
    glm_fit,
    lgamma_table,
    n_chunks,
    packed_design,
    qr_keep_columns,
)
from .ave_log_cpm import ave_log_cpm
from .squeeze_var import squeeze_var

logger = logging.getLogger("pbglm")

__all__ = [
    "apl_grid",
    "estimate_disp",
    "locfit_deg0",
    "maximize_interpolant",
    "residual_df_zeros",
    "wleb",
    "zero_fitted",
    "zero_patterns",
]


# ---------------------------------------------------------------------------------------------
# maximizeInterpolant: cubic (FMM) spline through each row, maximum near the best grid point
# ---------------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def _fmm_spline(x, y, b, c, d):
    """R's ``spline_coef`` (Forsythe, Malcolm and Moler end conditions)."""
    n = x.shape[0]
    if n < 3:
        t = y[1] - y[0]
        b[0] = t / (x[1] - x[0])
        b[1] = b[0]
        c[0] = 0.0
        c[1] = 0.0
        d[0] = 0.0
        d[1] = 0.0
        return
    nm1 = n - 1
    d[0] = x[1] - x[0]
    c[1] = (y[1] - y[0]) / d[0]
    for i in range(1, nm1):
        d[i] = x[i + 1] - x[i]
        b[i] = 2.0 * (d[i - 1] + d[i])
        c[i + 1] = (y[i + 1] - y[i]) / d[i]
        c[i] = c[i + 1] - c[i]
    b[0] = -d[0]
    b[nm1] = -d[n - 2]
    c[0] = 0.0
    c[nm1] = 0.0
    if n > 3:
        c[0] = c[2] / (x[3] - x[1]) - c[1] / (x[2] - x[0])
        c[nm1] = c[n - 2] / (x[nm1] - x[n - 3]) - c[n - 3] / (x[n - 2] - x[n - 4])
        c[0] = c[0] * d[0] * d[0] / (x[3] - x[0])
        c[nm1] = -c[nm1] * d[n - 2] * d[n - 2] / (x[nm1] - x[n - 4])
    for i in range(1, n):
        t = d[i - 1] / b[i - 1]
        b[i] = b[i] - t * d[i - 1]
        c[i] = c[i] - t * c[i - 1]
    c[nm1] = c[nm1] / b[nm1]
    for i in range(n - 2, -1, -1):
        c[i] = (c[i] - d[i] * c[i + 1]) / b[i]
    b[nm1] = (y[nm1] - y[n - 2]) / d[n - 2] + d[n - 2] * (c[n - 2] + 2.0 * c[nm1])
    for i in range(nm1):
        b[i] = (y[i + 1] - y[i]) / d[i] - d[i] * (c[i + 1] + 2.0 * c[i])
        d[i] = (c[i + 1] - c[i]) / d[i]
        c[i] = 3.0 * c[i]
    c[nm1] = 3.0 * c[nm1]
    d[nm1] = d[n - 2]


@njit(cache=True, error_model="numpy")
def _quad_sol1(a, b, c):
    """Smaller-branch root of ``a t^2 + b t + c`` as edgeR's ``quad_solver`` picks it."""
    if a == 0.0 and b == 0.0:
        return 0.0, False
    if a == 0.0:
        return -c / b, True
    back = b * b - 4.0 * a * c
    if back < 0.0:
        return 0.0, False
    front = -b / (2.0 * a)
    back = math.sqrt(back) / (2.0 * a)
    return front - back, True


@njit(cache=True, error_model="numpy")
def _find_max(x, y, b, c, d):
    n = x.shape[0]
    maxed_at = 0
    maxed = y[0]
    for i in range(1, n):
        if y[i] > maxed:
            maxed = y[i]
            maxed_at = i
    x_max = x[maxed_at]
    _fmm_spline(x, y, b, c, d)
    if maxed_at > 0:
        i = maxed_at - 1
        s, ok = _quad_sol1(3.0 * d[i], 2.0 * c[i], b[i])
        if ok and s > 0.0 and s < x[maxed_at] - x[i]:
            temp = ((d[i] * s + c[i]) * s + b[i]) * s + y[i]
            if temp > maxed:
                maxed = temp
                x_max = s + x[i]
    if maxed_at < n - 1:
        i = maxed_at
        s, ok = _quad_sol1(3.0 * d[i], 2.0 * c[i], b[i])
        if ok and s > 0.0 and s < x[i + 1] - x[i]:
            temp = ((d[i] * s + c[i]) * s + b[i]) * s + y[i]
            if temp > maxed:
                maxed = temp
                x_max = s + x[i]
    return x_max


@njit(cache=True, error_model="numpy")
def _maximize_range(x, Y, lo, hi, out):
    K = Y.shape[1]
    b = np.empty(K)
    c = np.empty(K)
    d = np.empty(K)
    y = np.empty(K)
    for g in range(lo, hi):
        for k in range(K):
            y[k] = Y[g, k]
        out[g] = _find_max(x, y, b, c, d)


@njit(parallel=True, cache=True, error_model="numpy")
def _maximize_interpolant(x, Y, nchunk):
    G = Y.shape[0]
    out = np.empty(G)
    for c in prange(nchunk):
        lo = (G * c) // nchunk
        hi = (G * (c + 1)) // nchunk
        _maximize_range(x, Y, lo, hi, out)
    return out


def maximize_interpolant(x: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """edgeR's ``maximizeInterpolant``: per row, the maximiser of the FMM spline through (x, y).

    Only the segments on either side of the largest grid value are searched, as in edgeR.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    Y = np.ascontiguousarray(np.atleast_2d(Y), dtype=np.float64)
    if Y.shape[1] != x.size:
        raise ValueError("The number of columns of Y must equal the number of spline points.")
    if np.any(np.diff(x) <= 0):
        raise ValueError("Spline points must be unique and sorted.")
    return _maximize_interpolant(x, Y, n_chunks(Y.shape[0]))


# ---------------------------------------------------------------------------------------------
# locfit(y ~ x, deg = 0, alpha = span) and its fitted values
# ---------------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def _nn_bandwidth(xs, x0, k):
    """Distance from x0 to its k-th nearest point of the sorted xs (locfit's ``nbhd1``)."""
    n = xs.shape[0]
    # closest point
    lo = np.searchsorted(xs, x0)
    if lo >= n:
        z = n - 1
    elif lo == 0:
        z = 0
    else:
        z = lo if (xs[lo] - x0) < (x0 - xs[lo - 1]) else lo - 1
    left = z
    right = z
    if left == 0:
        right = k - 1
    if right == n - 1:
        left = n - k
    while right - left < k - 1:
        if (x0 - xs[left - 1]) < (xs[right + 1] - x0):
            left -= 1
        else:
            right += 1
        if left == 0:
            right = k - 1
        if right == n - 1:
            left = n - k
    h = x0 - xs[left]
    if h < xs[right] - x0:
        h = xs[right] - x0
    return h


@njit(cache=True, error_model="numpy")
def _local_constant(xs, Ys, x0, h, out):
    """Tricube-weighted means of the columns of Ys around x0 with bandwidth h."""
    n, K = Ys.shape
    for k in range(K):
        out[k] = 0.0
    sw = 0.0
    lo = np.searchsorted(xs, x0 - h)
    for i in range(lo, n):
        u = abs(xs[i] - x0)
        if u >= h:
            if xs[i] > x0:
                break
            continue
        t = u / h
        t = 1.0 - t * t * t
        w = t * t * t
        sw += w
        for k in range(K):
            out[k] += w * Ys[i, k]
    for k in range(K):
        out[k] /= sw


def _locfit_vertices(xs: np.ndarray, k: int, cut: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """locfit's adaptive tree in one dimension: split a cell in half while its length exceeds
    ``cut`` times the smaller nearest-neighbour bandwidth at its ends. Returns sorted vertices
    and their bandwidths."""
    h = {}

    def bw(v):
        if v not in h:
            h[v] = _nn_bandwidth(xs, v, k)
        return h[v]

    lo, hi = float(xs[0]), float(xs[-1])
    verts = {lo, hi}
    stack = [(lo, hi)]
    while stack:
        a, b = stack.pop()
        pos = [v for v in (bw(a), bw(b)) if v > 0]
        if pos:
            score = (b - a) / min(pos)
        else:  # locfit's rule for a cell without a positive bandwidth
            score = 2.0 * (b - a) / (hi - lo)
        if score > cut and len(verts) < 100000:
            mid = (a + b) / 2.0
            verts.add(mid)
            stack.append((a, mid))
            stack.append((mid, b))
    v = np.array(sorted(verts))
    return v, np.array([bw(x) for x in v])


@njit(cache=True, error_model="numpy")
def _fit_vertex(i, xs, Ys, verts, hs, out):
    _local_constant(xs, Ys, verts[i], hs[i], out[i])


@njit(parallel=True, cache=True, error_model="numpy")
def _fit_vertices(xs, Ys, verts, hs):
    nv = verts.shape[0]
    out = np.empty((nv, Ys.shape[1]))
    for i in prange(nv):
        _fit_vertex(i, xs, Ys, verts, hs, out)
    return out


def locfit_deg0(x: np.ndarray, Y: np.ndarray, span: float) -> np.ndarray:
    """Fitted values of ``locfit(Y[, j] ~ x, deg = 0, alpha = span)`` for every column j.

    Reproduces locfit's default evaluation: local-constant (tricube) fits at the vertices of its
    adaptive tree (``ev = "tree"``, ``cut = 0.8``), linearly interpolated at the data points. As
    edgeR's ``locfitByCol``, returns Y unchanged when ``span * n < 2``.
    """
    x = np.asarray(x, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    n = x.size
    if span * n < 2 or n <= 1:
        return Y.copy()
    k = int(n * span)
    k = max(1, min(n, k))
    o = np.argsort(x, kind="stable")
    xs = np.ascontiguousarray(x[o])
    Ys = np.ascontiguousarray(Y[o])
    if xs[-1] == xs[0]:
        return np.broadcast_to(Ys.mean(axis=0), Y.shape).copy()
    verts, hs = _locfit_vertices(xs, k)
    vfit = _fit_vertices(xs, Ys, verts, hs)
    out = np.empty_like(Y)
    idx = np.clip(np.searchsorted(verts, x, side="right") - 1, 0, verts.size - 2)
    t = (x - verts[idx]) / (verts[idx + 1] - verts[idx])
    out[:] = (1.0 - t)[:, None] * vfit[idx] + t[:, None] * vfit[idx + 1]
    return out


# ---------------------------------------------------------------------------------------------
# WLEB
# ---------------------------------------------------------------------------------------------


def default_span(ntags: int) -> float:
    """edgeR's default smoothing span: 1 up to 50 genes, else ``0.25 + 0.75 sqrt(50 / ntags)``."""
    return 1.0 if ntags <= 50 else 0.25 + 0.75 * math.sqrt(50.0 / ntags)


def wleb(
    theta: np.ndarray,
    loglik: np.ndarray,
    covariate: np.ndarray,
    *,
    prior_n=5.0,
    span: float | None = None,
    m0: np.ndarray | None = None,
    trend: bool = True,
    individual: bool = True,
) -> dict:
    """edgeR's ``WLEB`` with ``trend.method = "locfit"`` (no overall estimate).

    Returns a dict with ``span``, ``shared_loglik`` (m0), and when asked ``trend`` and
    ``individual`` (grid-scale maximisers).
    """
    ntags = loglik.shape[0]
    if span is None:
        span = default_span(ntags)
    out: dict = {"span": span}
    if m0 is None:
        m0 = locfit_deg0(covariate, loglik, span)
    out["shared_loglik"] = m0
    if trend:
        out["trend"] = maximize_interpolant(theta, m0)
    if individual:
        pn = np.asarray(prior_n, dtype=float)
        if not np.all(np.isfinite(pn)):
            raise ValueError("prior_n must be finite.")
        l0a = loglik + (pn[:, None] if pn.ndim == 1 else pn) * m0
        out["individual"] = maximize_interpolant(theta, l0a)
    return out


# ---------------------------------------------------------------------------------------------
# zero patterns, residual df
# ---------------------------------------------------------------------------------------------


def zero_patterns(zero: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Group genes by their pattern of exactly-zero fits (edgeR's ``.comboGroups``).

    Returns ``(pattern, gene_indices)`` pairs; ``pattern`` is the boolean zero mask over samples.
    """
    G, m = zero.shape
    if G == 0:
        return []
    any_zero = zero.any(axis=1)
    out = []
    none_idx = np.flatnonzero(~any_zero)
    if none_idx.size:
        out.append((np.zeros(m, dtype=bool), none_idx))
    some = np.flatnonzero(any_zero)
    if some.size:
        packed = np.packbits(zero[some], axis=1)
        keys = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).reshape(-1)
        _, first, inv = np.unique(keys, return_index=True, return_inverse=True)
        inv = inv.reshape(-1)
        order = np.argsort(inv, kind="stable")
        bounds = np.flatnonzero(np.diff(inv[order])) + 1
        for grp, f in zip(np.split(order, bounds), first, strict=True):
            out.append((zero[some[f]].copy(), some[grp]))
    return out


def zero_fitted(counts: np.ndarray, design: np.ndarray, offset: np.ndarray, dispersion) -> np.ndarray:
    """Observations that are zero and fitted as zero (``y < 1e-4 & mu < 1e-4``) at ``dispersion``.

    Only genes with a zero count can have such observations, so only those are fitted.
    """
    zero = np.zeros(counts.shape, dtype=bool)
    has0 = np.flatnonzero((counts < 1e-4).any(axis=1))
    if has0.size:
        disp = np.broadcast_to(np.asarray(dispersion, dtype=np.float64), (counts.shape[0],))
        fit = glm_fit(np.ascontiguousarray(counts[has0]), design, offset, np.ascontiguousarray(disp[has0]))
        zero[has0] = (counts[has0] < 1e-4) & (fit.fitted < 1e-4)
    return zero


def residual_df_zeros(zero: np.ndarray, design: np.ndarray) -> np.ndarray:
    """edgeR's ``.residDF``: residual df after removing samples with exactly-zero fits."""
    G, m = zero.shape
    p = design.shape[1]
    nzero = zero.sum(axis=1)
    df = np.full(G, float(m - p))
    df[nzero == m] = 0.0
    somezero = (nzero > 0) & (nzero < m)
    if somezero.any():
        idx = np.flatnonzero(somezero)
        for pattern, genes in zero_patterns(zero[idx]):
            rank = qr_keep_columns(design[~pattern]).size
            df[idx[genes]] = max(m - pattern.sum() - rank, 0)
    return df


# ---------------------------------------------------------------------------------------------
# APL grid
# ---------------------------------------------------------------------------------------------


def _apl_reference(y, X, off, grid, table) -> np.ndarray:
    """The APL grid as edgeR computes it: group by group for one-way layouts, else by Levenberg."""
    P = packed_design(X)
    group, first = design_as_factor(X)
    nch = n_chunks(y.shape[0])
    if first.size == X.shape[1]:
        du = np.ascontiguousarray(X[first])
        return apl_grid_one_way(y, X, P, off, grid, table, group, first.size, du, 50, 1e-10, nch)
    pinv_one = np.linalg.lstsq(X, np.ones(X.shape[0]), rcond=None)[0]
    return apl_grid_levenberg(y, X, P, off, grid, pinv_one, 1e-6, 250, nch)


def apl_grid(
    counts: np.ndarray,
    design: np.ndarray,
    offset: np.ndarray,
    grid_disp: np.ndarray,
    zero: np.ndarray | None = None,
    *,
    exact: bool = False,
) -> np.ndarray:
    """Cox-Reid APL of every gene at every grid dispersion (the ``l0`` matrix of estimateDisp).

    Genes with exactly-zero fitted values (``zero``, G x m) are evaluated on their non-zero
    samples with the estimable columns of the design; genes left without residual df get 0.
    ``exact=True`` refits every grid point as edgeR does (group by group for one-way layouts,
    damped Levenberg iterations otherwise; slow). The default follows the solution path by
    Newton steps (:func:`~pbglm._kernels.edger_glm.apl_grid_fast`), which agrees to ~1e-4 in the
    log-likelihood and hands the genes it cannot settle to the edgeR-style kernels.
    """
    G, m = counts.shape
    K = grid_disp.size
    l0 = np.zeros((G, K))
    if zero is None:
        zero = np.zeros((G, m), dtype=bool)
    grid = np.ascontiguousarray(grid_disp, dtype=np.float64)
    table = lgamma_table(1.0 / grid, 4096)
    for pattern, genes in zero_patterns(zero):
        nz = ~pattern
        if not nz.any():
            continue
        if nz.all():
            X = design
            y = counts[genes] if genes.size < G else counts
            off = offset
        else:
            X = design[nz][:, qr_keep_columns(design[nz])]
            if X.shape[0] == X.shape[1]:
                continue
            y = counts[np.ix_(genes, np.flatnonzero(nz))]
            off = offset[nz]
        X = np.ascontiguousarray(X, dtype=np.float64)
        y = np.ascontiguousarray(y, dtype=np.float64)
        off = np.ascontiguousarray(off, dtype=np.float64)
        if exact:
            vals = _apl_reference(y, X, off, grid, table)
        else:
            vals, ok = apl_grid_fast(y, X, off, grid, table, np.linalg.pinv(X), 1e-6, 1e-3, 30, block_size(*X.shape))
            if not ok.all():
                bad = np.flatnonzero(~ok)
                vals[bad] = _apl_reference(np.ascontiguousarray(y[bad]), X, off, grid, table)
        l0[genes] = vals
    return l0


# ---------------------------------------------------------------------------------------------
# estimateDisp
# ---------------------------------------------------------------------------------------------


def estimate_disp(
    counts: np.ndarray,
    design: np.ndarray,
    lib_size: np.ndarray,
    *,
    prior_df: float | None = None,
    tagwise: bool = True,
    span: float | None = None,
    min_row_sum: float = 5,
    grid_length: int = 21,
    grid_range: tuple[float, float] = (-10.0, 10.0),
    robust: bool = False,
    winsor_tail_p: tuple[float, float] = (0.05, 0.1),
    ave_log_cpm_values: np.ndarray | None = None,
) -> dict:
    """edgeR's ``estimateDisp(y, design)`` with ``trend.method = "locfit"``.

    Parameters
    ----------
    counts
        ``(G, m)`` counts.
    design
        ``(m, p)`` full-rank design with ``p < m``.
    lib_size
        Effective library sizes (library size times normalisation factor).
    prior_df
        Fix the prior df of the tagwise step instead of estimating it.
    tagwise
        Also estimate tagwise dispersions.
    span
        Smoothing span (default ``0.25 + 0.75 sqrt(50 / G_selected)``).
    min_row_sum
        Genes with fewer counts in total do not take part in the estimation.
    grid_length, grid_range
        The dispersion grid, ``0.1 * 2^seq(grid_range, length = grid_length)``.
    robust
        Robust estimation of the prior df (``squeezeVar(robust = TRUE)``).
    winsor_tail_p
        Tail proportions of the robust fit.
    ave_log_cpm_values
        Average log-CPM at the common dispersion, if already computed (recomputed otherwise).

    Returns
    -------
    dict with ``common`` (float), ``trended``, ``tagwise`` (``(G,)``), ``prior_df`` (float, or
    ``(G,)`` when robust), ``prior_n``, ``span``, ``ave_log_cpm`` (at the common dispersion),
    ``selected`` (the genes used), ``grid_loglik`` (the APL grid) and ``trended_fit`` (the NB fit
    of the selected genes at their trended dispersions, when the prior df was estimated).
    """
    Y = np.ascontiguousarray(counts, dtype=np.float64)
    X = np.ascontiguousarray(design, dtype=np.float64)
    G, m = Y.shape
    p = X.shape[1]
    lib_size = np.asarray(lib_size, dtype=np.float64)
    if p >= m:
        raise ValueError("The design has as many columns as samples or more: no residual df to estimate dispersions.")
    offset = np.log(lib_size)
    sel = Y.sum(axis=1) >= min_row_sum
    sely = np.ascontiguousarray(Y[sel])
    nsel = sely.shape[0]
    if nsel == 0:
        raise ValueError(f"No gene has at least {min_row_sum} counts in total; nothing to estimate dispersions from.")
    spline_pts = np.linspace(grid_range[0], grid_range[1], grid_length)
    spline_disp = 0.1 * 2.0**spline_pts

    zero = zero_fitted(sely, X, offset, 0.05)
    l0 = apl_grid(sely, X, offset, spline_disp, zero)

    overall = maximize_interpolant(spline_pts, l0.sum(axis=0)[None, :])[0]
    common = 0.1 * 2.0**overall

    if ave_log_cpm_values is None:
        alc = ave_log_cpm(Y, lib_size, dispersion=common)
    else:
        alc = np.asarray(ave_log_cpm_values, dtype=np.float64)
    alc_sel = alc[sel]
    out1 = wleb(spline_pts, l0, alc_sel, span=span, individual=False)
    span = out1["span"]
    m0 = out1["shared_loglik"]
    disp_trend = 0.1 * 2.0 ** out1["trend"]
    trended = np.full(G, disp_trend[np.argmin(alc_sel)])
    trended[sel] = disp_trend

    result = {
        "common": float(common),
        "trended": trended,
        "ave_log_cpm": alc,
        "span": float(span),
        "selected": sel,
        "grid_loglik": l0,
        "trended_fit": None,
    }
    if not tagwise:
        return result

    if prior_df is None:
        fit = glm_fit(sely, X, offset, disp_trend)
        result["trended_fit"] = fit
        zero = (sely < 1e-4) & (fit.fitted < 1e-4)
        df_res = residual_df_zeros(zero, X)
        with np.errstate(divide="ignore", invalid="ignore"):
            s2 = fit.deviance / df_res
        s2[df_res == 0] = 0.0
        s2 = np.maximum(s2, 0.0)
        sq = squeeze_var(s2, df_res, covariate=alc_sel, robust=robust, winsor_tail_p=winsor_tail_p)
        prior_df = sq["df_prior"]
    prior_df_arr = np.asarray(prior_df, dtype=float)
    prior_n = prior_df_arr / (m - p)
    tagwise_disp = trended.copy()
    too_large = prior_n > 1e6
    if not np.all(too_large):
        temp_n = np.where(too_large, 1e6, prior_n)
        out2 = wleb(spline_pts, l0, alc_sel, prior_n=temp_n, span=span, m0=m0, trend=False)
        ind = 0.1 * 2.0 ** out2["individual"]
        if not robust:
            tagwise_disp[sel] = ind
        else:
            tsel = tagwise_disp[sel]
            ok = ~np.broadcast_to(too_large, (nsel,))
            tsel[ok] = ind[ok]
            tagwise_disp[sel] = tsel
    if robust:
        pdf = np.full(G, np.inf)
        pdf[sel] = np.broadcast_to(prior_df_arr, (nsel,))
        pn = np.full(G, np.inf)
        pn[sel] = np.broadcast_to(prior_n, (nsel,))
        result["prior_df"] = pdf
        result["prior_n"] = pn
    else:
        result["prior_df"] = float(prior_df_arr) if prior_df_arr.ndim == 0 else prior_df_arr
        result["prior_n"] = float(prior_n) if np.ndim(prior_n) == 0 else prior_n
    result["tagwise"] = tagwise_disp
    return result
