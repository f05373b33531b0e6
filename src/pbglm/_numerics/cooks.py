"""Cook's distances, DESeq2's robust dispersion for them, and outlier replacement."""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from scipy import stats

from .selection import trimmed_mean


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


@njit(parallel=True, cache=True, error_model="numpy")
def _robust_variance(counts, size_factors, members, starts, cuts, scales, variance, mean):
    """Per gene, for the normalised counts x: the largest over cells of ``scale * trimmed mean of
    (x - trimmed mean of x)^2``, and the mean of x."""
    G, m = counts.shape
    n_cells = starts.shape[0] - 1
    for g in prange(G):
        x = np.empty(m)
        for j in range(m):
            x[j] = counts[g, j] / size_factors[j]
        mean[g] = x.sum() / m
        buf = np.empty(members.shape[0])
        best = -np.inf
        for c in range(n_cells):
            n = starts[c + 1] - starts[c]
            for t in range(n):
                buf[t] = x[members[starts[c] + t]]
            centre = trimmed_mean(buf, n, cuts[c])
            for t in range(n):
                d = x[members[starts[c] + t]] - centre
                buf[t] = d * d
            best = max(best, scales[c] * trimmed_mean(buf, n, cuts[c]))
        variance[g] = best


def robust_dispersion(counts: np.ndarray, size_factors: np.ndarray, design: np.ndarray) -> np.ndarray:
    """DESeq2's ``robustMethodOfMomentsDisp`` of the normalised counts ``counts / size_factors``:
    trimmed within-cell variances, floored at 0.04.

    Cells are the groups of samples with identical design rows; with no cell of 3 or more samples,
    all samples form one. R's ``mean(x, trim=)`` drops ``floor(n * trim)`` values at each end.
    """
    reps = replicates_in_cell(design)
    trim_ratio = (1 / 3, 1 / 4, 1 / 8)
    scale_c = (2.04, 1.86, 1.51)
    if np.any(reps >= 3):
        idx = np.nonzero(reps >= 3)[0]
        lab = cells(design[idx])
        groups = [idx[lab == c] for c in np.unique(lab)]
        bins = [_trim_bin(len(gr)) for gr in groups]
    else:  # all samples together, with R's trim 1/8 and scale 1.51 whatever their number
        groups = [np.arange(design.shape[0])]
        bins = [2]
    members = np.concatenate(groups).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum([len(gr) for gr in groups])]).astype(np.int64)
    cuts = np.array([int(np.floor(len(gr) * trim_ratio[k])) for gr, k in zip(groups, bins, strict=True)],
                    dtype=np.int64)
    scales = np.array([scale_c[k] for k in bins])
    v = np.empty(counts.shape[0])
    mean = np.empty(counts.shape[0])
    _robust_variance(np.ascontiguousarray(counts, dtype=np.float64), np.asarray(size_factors, dtype=np.float64),
                     members, starts, cuts, scales, v, mean)
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


def cooks_distance(counts, mu, hat, dispersion_robust, n_coefs, out=None) -> np.ndarray:
    """``(y - mu)^2 / (mu + a mu^2) / p * h / (1 - h)^2`` per gene and sample (into ``out``, which
    may be ``hat`` itself)."""
    out = np.empty(counts.shape) if out is None else out
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
