"""The weighted quantile DESeq2 uses (its copy of Hmisc's ``wtd.quantile(type = "quantile", normwt = TRUE)``)."""

from __future__ import annotations

import numpy as np

__all__ = ["weighted_quantile"]


def weighted_quantile(x: np.ndarray, weights: np.ndarray, prob: float) -> float:
    """Quantile ``prob`` of ``x`` with frequency weights normalised to sum to ``len(x)``.

    Zero or missing weights and missing values are dropped; tied values pool their weights; with
    cumulative weights ``W`` over the sorted distinct values, the order statistics at
    ``low = max(floor(1 + (n - 1) prob), 1)`` and ``high = min(low + 1, n)`` are the first values
    whose ``W`` reaches them, linearly combined by the fractional part of ``1 + (n - 1) prob``.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    keep = ~(np.isnan(w) | (w == 0)) & ~np.isnan(x + w)
    x, w = x[keep], w[keep]
    if x.size == 0:
        return np.nan
    w = w * (x.size / w.sum())
    values, inverse = np.unique(x, return_inverse=True)
    cum = np.cumsum(np.bincount(inverse, weights=w))
    n = cum[-1]
    order = 1.0 + (n - 1.0) * prob
    low = max(np.floor(order), 1.0)
    high = min(low + 1.0, n)
    frac = order % 1.0

    def at(v):  # approx(cum, values, v, method = "constant", f = 1, rule = 2)
        i = np.searchsorted(cum, v, side="left")
        return values[min(i, values.size - 1)]

    return float((1.0 - frac) * at(low) + frac * at(high))
