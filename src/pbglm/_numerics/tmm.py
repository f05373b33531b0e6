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
def _average_ranks(v):
    """Ranks 1..n with ties averaged (R's ``rank``)."""
    n = v.shape[0]
    o = np.argsort(v, kind="mergesort")
    r = np.empty(n)
    i = 0
    while i < n:
        j = i
        while j + 1 < n and v[o[j + 1]] == v[o[i]]:
            j += 1
        avg = 0.5 * (i + j) + 1.0
        for k in range(i, j + 1):
            r[o[k]] = avg
        i = j + 1
    return r


@njit(cache=True, error_model="numpy")
def _tmm_factor(obs, ref, n_o, n_r, logratio_trim, sum_trim, do_weighting, a_cutoff):
    """edgeR's ``.calcFactorTMM`` for one sample."""
    G = obs.shape[0]
    logR = np.empty(G)
    absE = np.empty(G)
    v = np.empty(G)
    n = 0
    maxabs = 0.0
    for g in range(G):
        o = obs[g]
        r = ref[g]
        lr = np.log2((o / n_o) / (r / n_r))
        ae = (np.log2(o / n_o) + np.log2(r / n_r)) / 2.0
        if math.isfinite(lr) and math.isfinite(ae) and ae > a_cutoff:
            logR[n] = lr
            absE[n] = ae
            v[n] = (n_o - o) / n_o / o + (n_r - r) / n_r / r
            if abs(lr) > maxabs:
                maxabs = abs(lr)
            n += 1
    if n == 0 or maxabs < 1e-6:
        return 1.0
    logR = logR[:n]
    absE = absE[:n]
    v = v[:n]
    loL = math.floor(n * logratio_trim) + 1
    hiL = n + 1 - loL
    loS = math.floor(n * sum_trim) + 1
    hiS = n + 1 - loS
    rl = _average_ranks(logR)
    ra = _average_ranks(absE)
    num = 0.0
    den = 0.0
    cnt = 0
    for g in range(n):
        if rl[g] >= loL and rl[g] <= hiL and ra[g] >= loS and ra[g] <= hiS:
            if do_weighting:
                if not math.isnan(v[g]) and not math.isnan(logR[g]):
                    num += logR[g] / v[g]
                    den += 1.0 / v[g]
            else:
                num += logR[g]
                den += 1.0
            cnt += 1
    f = num / den if den != 0.0 else np.nan
    if math.isnan(f):
        f = 0.0
    return 2.0**f


@njit(parallel=True, cache=True, error_model="numpy")
def _tmm_all(X, lib, ref_col, logratio_trim, sum_trim, do_weighting, a_cutoff):
    m = X.shape[1]
    f = np.empty(m)
    ref = np.ascontiguousarray(X[:, ref_col])
    for i in prange(m):
        f[i] = _tmm_factor(np.ascontiguousarray(X[:, i]), ref, lib[i], lib[ref_col], logratio_trim, sum_trim,
                           do_weighting, a_cutoff)
    return f


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
    x = x[(x > 0).any(axis=1)]
    if x.shape[0] == 0 or m == 1:
        return np.ones(m)
    if ref_column is None:
        f75 = np.quantile(x, 0.75, axis=0, method="linear") / lib
        if np.median(f75) < 1e-20:
            ref_column = int(np.argmax(np.sqrt(x).sum(axis=0)))
        else:
            ref_column = int(np.argmin(np.abs(f75 - f75.mean())))
    X = np.ascontiguousarray(x)
    f = _tmm_all(X, np.ascontiguousarray(lib), int(ref_column), float(logratio_trim), float(sum_trim),
                 bool(do_weighting), float(a_cutoff))
    return f / np.exp(np.mean(np.log(f)))
