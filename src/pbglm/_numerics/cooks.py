"""Cook's distances, DESeq2's robust dispersion for them, and outlier replacement."""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from scipy import stats


def trimmed_row_means(x: np.ndarray, trim: float) -> np.ndarray:
    """Row means with R's ``mean(x, trim=)`` rule (drop ``floor(n * trim)`` values at each end)."""
    n = x.shape[1]
    lo = int(np.floor(n * trim))
    s = np.sort(x, axis=1)
    return s[:, lo : n - lo].mean(axis=1)


def replicates_in_cell(design: np.ndarray) -> np.ndarray:
    """For each sample, the number of samples with an identical design row (its replicates)."""
    _, inverse, counts = np.unique(design, axis=0, return_inverse=True, return_counts=True)
    return counts[inverse.ravel()]


def cells(design: np.ndarray) -> np.ndarray:
    """Integer label of each sample's design cell (identical rows share a label)."""
    _, inverse = np.unique(design, axis=0, return_inverse=True)
    return inverse.ravel()


def _trim_bin(n: int) -> int:
    return 0 if n <= 3.5 else (1 if n <= 23.5 else 2)


def robust_dispersion(norm_counts: np.ndarray, design: np.ndarray) -> np.ndarray:
    """DESeq2's ``robustMethodOfMomentsDisp``: trimmed within-cell variances, floored at 0.04."""
    reps = replicates_in_cell(design)
    trim_ratio = (1 / 3, 1 / 4, 1 / 8)
    scale_c = (2.04, 1.86, 1.51)
    if np.any(reps >= 3):
        idx = reps >= 3
        sub = norm_counts[:, idx]
        lab = cells(design[idx])
        var_est = []
        for c in np.unique(lab):
            cols = sub[:, lab == c]
            k = _trim_bin(cols.shape[1])
            cm = trimmed_row_means(cols, trim_ratio[k])
            sq = (cols - cm[:, None]) ** 2
            var_est.append(scale_c[k] * trimmed_row_means(sq, trim_ratio[k]))
        v = np.max(np.column_stack(var_est), axis=1)
    else:
        rm = trimmed_row_means(norm_counts, 1 / 8)
        v = 1.51 * trimmed_row_means((norm_counts - rm[:, None]) ** 2, 1 / 8)
    mean = norm_counts.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = (v - mean) / mean**2
    return np.maximum(alpha, 0.04)


@njit(parallel=True, cache=True, error_model="numpy")
def _cooks_kernel(counts, mu, hat, dispersion_robust, n_coefs, out):
    G, m = counts.shape
    for g in prange(G):
        a = dispersion_robust[g]
        for j in range(m):
            u = mu[g, j]
            h = hat[g, j]
            d = counts[g, j] - u
            out[g, j] = d * d / (u + a * u * u) / n_coefs * h / ((1.0 - h) * (1.0 - h))


def cooks_distance(counts, mu, hat, dispersion_robust, n_coefs) -> np.ndarray:
    """``(y - mu)^2 / (mu + a mu^2) / p * h / (1 - h)^2`` per gene and sample."""
    out = np.empty(counts.shape)
    _cooks_kernel(counts, mu, hat, dispersion_robust, float(n_coefs), out)
    return out


@njit(parallel=True, cache=True, error_model="numpy")
def _counts_above_outlier(counts, cooks, out):
    G, m = counts.shape
    for g in prange(G):
        at = 0
        best = -np.inf
        for j in range(m):
            c = cooks[g, j]
            if c > best:  # NaN never wins
                best = c
                at = j
        n = 0
        for j in range(m):
            if counts[g, j] > counts[g, at]:
                n += 1
        out[g] = n


def counts_above_outlier(counts: np.ndarray, cooks: np.ndarray) -> np.ndarray:
    """Per gene: how many samples have a larger count than the sample with the largest Cook's distance
    (NaN distances ignored; the first sample when all are NaN).

    DESeq2 keeps the p-value of a Cook's outlier gene when 3 or more counts are larger than the
    outlying one (a low-count outlier), for designs with a single two-level factor.
    """
    out = np.empty(counts.shape[0], dtype=np.int64)
    _counts_above_outlier(np.ascontiguousarray(counts, dtype=np.float64), np.ascontiguousarray(cooks), out)
    return out


def cooks_cutoff(n_samples: int, n_coefs: int) -> float:
    """DESeq2's default cutoff: the 0.99 quantile of F(p, m - p)."""
    return float(stats.f.ppf(0.99, n_coefs, n_samples - n_coefs))


def max_cooks(cooks: np.ndarray, design: np.ndarray) -> np.ndarray:
    """Maximum Cook's distance over samples in design cells with >= 3 replicates (NaN if none)."""
    m, p = design.shape
    use = replicates_in_cell(design) >= 3
    if m > p and use.any():
        return np.max(cooks[:, use], axis=1)
    return np.full(cooks.shape[0], np.nan)


def replacement_counts(counts, size_factors, cooks, cutoff, replaceable, trim: float = 0.2):
    """DESeq2's ``replaceOutliers``: counts with Cook's distance above ``cutoff`` in replaceable
    samples become ``as.integer(trimmed mean of normalised counts * size factor)``.

    Returns the new count matrix and the per-gene flag ``replace`` (any Cook's above the cutoff).
    """
    norm = counts / size_factors[None, :]
    trim_mean = trimmed_row_means(norm, trim)
    replacement = np.trunc(trim_mean[:, None] * size_factors[None, :])
    outlier = cooks > cutoff
    replace = np.any(outlier, axis=1)
    new = counts.copy()
    sel = outlier & replaceable[None, :]
    new[sel] = replacement[sel]
    return new, replace
