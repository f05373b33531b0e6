"""edgeR's TMM normalisation (``calcNormFactors(method = "TMM")``).

For every sample against a reference sample (the one whose upper-quartile / library size is
closest to the mean of those), genes are trimmed by the rank of their log-ratio ``M`` (30% each
side) and of their average log-abundance ``A`` (5% each side); the factor is ``2^`` the
precision-weighted mean of the remaining ``M``, weights the inverse asymptotic variances
``(N - y) / (N y) + (Nr - r) / (Nr r)``. The factors are rescaled to a geometric mean of one.
Ranks are R's (ties averaged), so the trimmed sets are exactly edgeR's.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["calc_norm_factors_tmm"]


@njit(cache=True, error_model="numpy")
def _nth(v, k):
    """The k-th smallest value (0-based) of v, partially reordering v in place (Hoare selection)."""
    lo = 0
    hi = v.shape[0] - 1
    while hi > lo:
        a = v[lo]
        b = v[(lo + hi) // 2]
        c = v[hi]
        pivot = max(min(a, b), min(max(a, b), c))
        i = lo
        j = hi
        while i <= j:
            while v[i] < pivot:
                i += 1
            while v[j] > pivot:
                j -= 1
            if i <= j:
                t = v[i]
                v[i] = v[j]
                v[j] = t
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return v[k]
    return v[k]


@njit(cache=True, error_model="numpy")
def _rank_window(v, lo, hi, keep, work):
    """``keep &= lo <= rank(v) <= hi`` with R's average ranks of ties, in O(n) (two selections).

    Average ranks are non-decreasing in the value, so the kept values form an interval: the
    values strictly between the ``lo``-th and ``hi``-th order statistics, plus either bound when
    the average rank of its tie group is inside the window.
    """
    n = v.shape[0]
    for i in range(n):
        work[i] = v[i]
    vlo = _nth(work[:n], lo - 1)
    vhi = _nth(work[:n], hi - 1)
    less_lo = 0
    eq_lo = 0
    less_hi = 0
    eq_hi = 0
    for i in range(n):
        x = v[i]
        if x < vlo:
            less_lo += 1
        elif x == vlo:
            eq_lo += 1
        if x < vhi:
            less_hi += 1
        elif x == vhi:
            eq_hi += 1
    rank_lo = less_lo + (eq_lo + 1) / 2.0
    rank_hi = less_hi + (eq_hi + 1) / 2.0
    keep_lo = rank_lo >= lo and rank_lo <= hi
    keep_hi = rank_hi >= lo and rank_hi <= hi
    for i in range(n):
        x = v[i]
        if x > vlo and x < vhi:
            continue
        if x == vlo and keep_lo:
            continue
        if x == vhi and keep_hi:
            continue
        keep[i] = False


@njit(cache=True, error_model="numpy")
def _tmm_factor(obs, ref, lref, n_o, n_r, logratio_trim, sum_trim, do_weighting, a_cutoff, lr, ae, v):
    """edgeR's ``.calcFactorTMM`` for one sample (``lref = log2(ref / n_r)``; work arrays as long as obs)."""
    G = obs.shape[0]
    n = 0
    maxabs = 0.0
    for g in range(G):
        o = obs[g]
        r = ref[g]
        if o > 0.0 and r > 0.0:
            # the same expressions as edgeR, so that ties (and hence the trimmed sets) are identical
            lrg = math.log2((o / n_o) / (r / n_r))
            aeg = (math.log2(o / n_o) + lref[g]) / 2.0
            if math.isfinite(lrg) and math.isfinite(aeg) and aeg > a_cutoff:
                lr[n] = lrg
                ae[n] = aeg
                v[n] = g  # the variance is only needed for the genes that survive the trimming
                if abs(lrg) > maxabs:
                    maxabs = abs(lrg)
                n += 1
    if n == 0 or maxabs < 1e-6:
        return 1.0
    logR = lr[:n]
    absE = ae[:n]
    loL = int(math.floor(n * logratio_trim)) + 1
    hiL = n + 1 - loL
    loS = int(math.floor(n * sum_trim)) + 1
    hiS = n + 1 - loS
    keep = np.ones(n, dtype=np.bool_)
    work = np.empty(n)
    _rank_window(logR, loL, hiL, keep, work)
    _rank_window(absE, loS, hiS, keep, work)
    num = 0.0
    den = 0.0
    for g in range(n):
        if keep[g]:
            if do_weighting:
                o = obs[np.int64(v[g])]
                r = ref[np.int64(v[g])]
                vg = (n_o - o) / n_o / o + (n_r - r) / n_r / r
                if not math.isnan(vg) and not math.isnan(logR[g]):
                    num += logR[g] / vg
                    den += 1.0 / vg
            else:
                num += logR[g]
                den += 1.0
    f = num / den if den != 0.0 else np.nan
    if math.isnan(f):
        f = 0.0
    return 2.0**f


@njit(cache=True, error_model="numpy")
def _transpose_block(X, XT, b, bs):
    G, m = X.shape
    lo = b * bs
    hi = min(G, lo + bs)
    for i in range(m):
        for g in range(lo, hi):
            XT[i, g] = X[g, i]


@njit(parallel=True, cache=True, error_model="numpy")
def _transpose(X):
    """``X.T`` as a C-contiguous copy, by blocks of genes (cache friendly)."""
    G, m = X.shape
    XT = np.empty((m, G))
    bs = 64
    nb = (G + bs - 1) // bs
    for b in prange(nb):
        _transpose_block(X, XT, b, bs)
    return XT


@njit(cache=True, error_model="numpy")
def _tmm_sample(i, XT, lref, lib, ref_col, logratio_trim, sum_trim, do_weighting, a_cutoff, f):
    G = XT.shape[1]
    lr = np.empty(G)
    ae = np.empty(G)
    v = np.empty(G)
    f[i] = _tmm_factor(
        XT[i], XT[ref_col], lref, lib[i], lib[ref_col], logratio_trim, sum_trim, do_weighting, a_cutoff, lr, ae, v
    )


@njit(parallel=True, cache=True, error_model="numpy")
def _tmm_all(XT, lib, ref_col, logratio_trim, sum_trim, do_weighting, a_cutoff):
    """TMM factor of every sample (rows of ``XT``, samples x genes) against sample ``ref_col``."""
    m, G = XT.shape
    f = np.empty(m)
    lref = np.empty(G)
    nr = lib[ref_col]
    for g in range(G):
        lref[g] = math.log2(XT[ref_col, g] / nr)
    for i in prange(m):
        _tmm_sample(i, XT, lref, lib, ref_col, logratio_trim, sum_trim, do_weighting, a_cutoff, f)
    return f


@njit(cache=True, error_model="numpy")
def _quantile_row(i, XT, prob, out):
    G = XT.shape[1]
    row = XT[i].copy()
    h = (G - 1) * prob
    lo = int(math.floor(h))
    hi = min(lo + 1, G - 1)
    vlo = _nth(row, lo)
    vhi = _nth(row, hi)
    out[i] = vlo + (h - lo) * (vhi - vlo)


@njit(parallel=True, cache=True, error_model="numpy")
def _row_quantile(XT, prob):
    """``quantile(x, prob)`` (R's type 7) of every row of ``XT`` (samples x genes)."""
    m = XT.shape[0]
    out = np.empty(m)
    for i in prange(m):
        _quantile_row(i, XT, prob, out)
    return out


def calc_norm_factors_tmm(
    counts: np.ndarray,
    lib_size: np.ndarray | None = None,
    *,
    ref_column: int | None = None,
    logratio_trim: float = 0.3,
    sum_trim: float = 0.05,
    do_weighting: bool = True,
    a_cutoff: float = -1e10,
) -> np.ndarray:
    """TMM normalisation factors, as edgeR's ``calcNormFactors(counts, lib.size, method = "TMM")``.

    Parameters
    ----------
    counts
        ``(G, m)`` counts (genes in rows).
    lib_size
        ``(m,)`` library sizes; column sums by default.
    ref_column
        Reference sample (0-based); by default the sample whose upper-quartile / library size is
        closest to the mean of those (or, when most upper quartiles are zero, the sample with the
        largest sum of square-root counts).
    logratio_trim, sum_trim
        Proportions trimmed from each end of the log-ratios (M) and of the abundances (A).
    do_weighting
        Precision-weighted mean of the kept M values (else plain mean).
    a_cutoff
        Genes with an average log-abundance below this are left out.

    Returns
    -------
    ``(m,)`` factors with geometric mean 1. Effective library size = ``lib_size * factors``.
    """
    x = np.asarray(counts, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError("counts must be a 2-D (genes x samples) array.")
    if np.isnan(x).any():
        raise ValueError("NA counts are not permitted; remove or fill them first.")
    m = x.shape[1]
    lib = x.sum(axis=0) if lib_size is None else np.asarray(lib_size, dtype=np.float64)
    if lib.shape != (m,):
        raise ValueError(f"lib_size must have one entry per sample ({m}), got shape {lib.shape}.")
    if np.isnan(lib).any():
        raise ValueError("NA library sizes are not permitted.")
    x = x[x.max(axis=1) > 0]
    if x.shape[0] == 0 or m == 1:
        return np.ones(m)
    xt = _transpose(np.ascontiguousarray(x))
    if ref_column is None:
        f75 = _row_quantile(xt, 0.75) / lib
        if np.median(f75) < 1e-20:
            ref_column = int(np.argmax(np.sqrt(xt).sum(axis=1)))
        else:
            ref_column = int(np.argmin(np.abs(f75 - f75.mean())))
    f = _tmm_all(
        xt,
        np.ascontiguousarray(lib),
        int(ref_column),
        float(logratio_trim),
        float(sum_trim),
        bool(do_weighting),
        float(a_cutoff),
    )
    return f / np.exp(np.mean(np.log(f)))
