"""DESeq2 size factors: median-of-ratios ("ratio") and the positive-counts variant ("poscounts")."""

from __future__ import annotations

import logging

import numpy as np
from numba import njit, prange

from .._kernels.vector_math import fast_log, total
from .selection import median

logger = logging.getLogger("pbglm")


@njit(cache=True, error_model="numpy")
def _logs(row, out):
    """``out[j] = log(row[j])`` for positive values, 0 elsewhere (a loop that vectorises); returns
    the number of positive values."""
    n_pos = 0
    for j in range(row.shape[0]):
        v = row[j]
        pos = v > 0.0
        out[j] = fast_log(v if pos else 1.0)
        n_pos += pos
    return n_pos


@njit(parallel=True, cache=True, error_model="numpy")
def _log_geo_means(counts, positive_only, out):
    """Mean of log counts per gene: over all samples (-inf if any count is 0), or over the positive
    counts divided by the number of samples (DESeq2's poscounts; -inf for an all-zero gene)."""
    G, m = counts.shape
    n_tasks = min(G, 64)
    for t in prange(n_tasks):
        buf = np.empty(m)
        for g in range(t * G // n_tasks, (t + 1) * G // n_tasks):
            n_pos = _logs(counts[g], buf)
            s = total(buf)
            if positive_only:
                out[g] = s / m if n_pos > 0 else -np.inf
            else:
                out[g] = -np.inf if n_pos < m else s / m


_BLOCK = 32  # samples per task of the ratio kernel (measured fastest of 8-64 on 20,000 x 400)


@njit(parallel=True, cache=True, error_model="numpy")
def _median_ratio_kernel(counts, log_geo_means, usable, sf):
    """Per block of samples: the log ratios of the usable genes (each gene's row segment read once
    per block and its logs taken as one vector; zero counts marked +inf), then per sample the
    finite ones packed to the front and their median."""
    m = counts.shape[1]
    nu = usable.shape[0]
    for b in prange((m + _BLOCK - 1) // _BLOCK):
        lo = b * _BLOCK
        w = min(m, lo + _BLOCK) - lo
        buf = np.empty((w, nu))
        logs = np.empty(w)
        for i in range(nu):
            g = usable[i]
            lg = log_geo_means[g]
            for k in range(w):
                v = counts[g, lo + k]
                logs[k] = fast_log(v) - lg if v > 0.0 else np.inf
            for k in range(w):
                buf[k, i] = logs[k]
        for k in range(w):
            row = buf[k]
            n = 0
            for i in range(nu):
                if row[i] < np.inf:
                    row[n] = row[i]
                    n += 1
            sf[lo + k] = np.exp(median(row, n)) if n > 0 else np.nan


def _median_ratio(counts: np.ndarray, log_geo_means: np.ndarray) -> np.ndarray:
    """Per sample: exp(median over usable genes (finite log geometric mean) and positive counts of
    log(count) - log geometric mean)."""
    usable = np.nonzero(np.isfinite(log_geo_means))[0]
    sf = np.empty(counts.shape[1])
    _median_ratio_kernel(counts, log_geo_means, usable, sf)
    return sf


def _geo_means(counts: np.ndarray, positive_only: bool) -> np.ndarray:
    out = np.empty(counts.shape[0])
    _log_geo_means(np.ascontiguousarray(counts, dtype=np.float64), positive_only, out)
    return out


def size_factors_ratio(counts: np.ndarray) -> np.ndarray:
    """DESeq2 ``estimateSizeFactorsForMatrix(type="ratio")`` for a (genes x samples) matrix.

    Raises
    ------
    ValueError
        When every gene has at least one zero (use ``poscounts``).
    """
    counts = np.ascontiguousarray(counts, dtype=np.float64)
    log_geo_means = _geo_means(counts, False)
    if not np.isfinite(log_geo_means).any():
        raise ValueError(
            "Every gene has at least one zero count, so the median-of-ratios size factors are undefined. "
            "Use size_factors='poscounts'."
        )
    return _median_ratio(counts, log_geo_means)


def size_factors_poscounts(counts: np.ndarray) -> np.ndarray:
    """DESeq2 ``type="poscounts"``: geometric means over positive counts, rescaled to geometric mean 1."""
    counts = np.ascontiguousarray(counts, dtype=np.float64)
    sf = _median_ratio(counts, _geo_means(counts, True))
    return sf / np.exp(np.mean(np.log(sf)))


def estimate_size_factors(counts: np.ndarray, kind: str = "ratio") -> tuple[np.ndarray, str]:
    """Size factors of the kind asked for; ``"ratio"`` falls back to ``"poscounts"`` with a log message.

    Returns the factors and the kind actually used.
    """
    if kind == "ratio":
        counts = np.ascontiguousarray(counts, dtype=np.float64)
        log_geo_means = _geo_means(counts, False)  # -inf for a gene with a zero: no count-sized mask
        if not np.isfinite(log_geo_means).any():
            logger.info("every gene contains at least one zero: using size_factors='poscounts'")
            return size_factors_poscounts(counts), "poscounts"
        return _median_ratio(counts, log_geo_means), "ratio"
    if kind == "poscounts":
        return size_factors_poscounts(counts), "poscounts"
    raise ValueError(f"Unknown size factor method {kind!r}; use 'ratio', 'poscounts' or pass an array.")
