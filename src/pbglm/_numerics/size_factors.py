"""DESeq2 size factors: median-of-ratios ("ratio") and the positive-counts variant ("poscounts")."""

from __future__ import annotations

import logging

import numpy as np
from numba import njit, prange

logger = logging.getLogger("pbglm")


@njit(parallel=True, cache=True, error_model="numpy")
def _median_ratio_kernel(logc, log_geo_means, usable, sf):
    G, m = logc.shape
    for j in prange(m):
        buf = np.empty(usable.shape[0])
        n = 0
        for g in usable:
            v = logc[g, j]
            if np.isfinite(v):
                buf[n] = v - log_geo_means[g]
                n += 1
        sf[j] = np.exp(np.median(buf[:n])) if n > 0 else np.nan


def _median_ratio(logc: np.ndarray, log_geo_means: np.ndarray) -> np.ndarray:
    """Per sample: exp(median over usable genes of log(count) - log geometric mean)."""
    usable = np.nonzero(np.isfinite(log_geo_means))[0]
    sf = np.empty(logc.shape[1])
    _median_ratio_kernel(np.ascontiguousarray(logc), log_geo_means, usable, sf)
    return sf


def size_factors_ratio(counts: np.ndarray) -> np.ndarray:
    """DESeq2 ``estimateSizeFactorsForMatrix(type="ratio")`` for a (genes x samples) matrix.

    Raises
    ------
    ValueError
        When every gene has at least one zero (use ``poscounts``).
    """
    with np.errstate(divide="ignore"):
        logc = np.log(counts)
    log_geo_means = logc.mean(axis=1)
    if not np.isfinite(log_geo_means).any():
        raise ValueError(
            "Every gene has at least one zero count, so the median-of-ratios size factors are undefined. "
            "Use size_factors='poscounts'."
        )
    return _median_ratio(logc, log_geo_means)


def size_factors_poscounts(counts: np.ndarray) -> np.ndarray:
    """DESeq2 ``type="poscounts"``: geometric means over positive counts, rescaled to geometric mean 1."""
    m = counts.shape[1]
    with np.errstate(divide="ignore"):
        logc = np.log(counts)
    log_geo_means = np.where(np.isfinite(logc), logc, 0.0).sum(axis=1) / m
    # geoMeanNZ gives 0 for all-zero genes; log(0) = -Inf drops them as in DESeq2
    log_geo_means[counts.sum(axis=1) == 0] = -np.inf
    sf = _median_ratio(logc, log_geo_means)
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
