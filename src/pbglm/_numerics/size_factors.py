"""DESeq2 size factors: median-of-ratios ("ratio") and the positive-counts variant ("poscounts")."""

from __future__ import annotations

import logging
import math

import numpy as np
from numba import njit, prange

from .selection import median

logger = logging.getLogger("pbglm")


@njit(parallel=True, cache=True, error_model="numpy")
def _log_geo_means(counts, positive_only, out):
    """Mean of log counts per gene: over all samples (-inf if any count is 0), or over the positive
    counts divided by the number of samples (DESeq2's poscounts; -inf for an all-zero gene)."""
    G, m = counts.shape
    for g in prange(G):
        s = 0.0
        any_positive = False
        any_zero = False
        for j in range(m):
            v = counts[g, j]
            if v > 0.0:
                s += math.log(v)
                any_positive = True
            else:
                any_zero = True
        if positive_only:
            out[g] = s / m if any_positive else -np.inf
        else:
            out[g] = -np.inf if any_zero else s / m


@njit(parallel=True, cache=True, error_model="numpy")
def _median_ratio_kernel(counts, log_geo_means, usable, sf):
    m = counts.shape[1]
    for j in prange(m):
        buf = np.empty(usable.shape[0])
        n = 0
        for g in usable:
            v = counts[g, j]
            if v > 0.0:
                buf[n] = math.log(v) - log_geo_means[g]
                n += 1
        sf[j] = np.exp(median(buf, n)) if n > 0 else np.nan


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
        if not np.all(counts > 0, axis=1).any():
            logger.info("every gene contains at least one zero: using size_factors='poscounts'")
            return size_factors_poscounts(counts), "poscounts"
        return size_factors_ratio(counts), "ratio"
    if kind == "poscounts":
        return size_factors_poscounts(counts), "poscounts"
    raise ValueError(f"Unknown size factor method {kind!r}; use 'ratio', 'poscounts' or pass an array.")
