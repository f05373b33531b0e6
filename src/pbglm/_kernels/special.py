"""log-gamma and digamma terms of the negative-binomial likelihood, per sample, vectorisable.

The NB log-likelihood of a count y with size r needs ``lgamma(y + r) - lgamma(r)`` and its
derivative ``digamma(y + r) - digamma(r)``. For large y they come from Stirling's series and the
asymptotic digamma series (absolute error < 1e-14 from y >= 10 and y >= 25 respectively); for
small y from exact finite sums ``sum_{i<y} log(r + i)`` and ``sum_{i<y} 1 / (r + i)``, which are
free of the cancellation that the difference suffers when r >> y. Small counts are handled through
a per-gene histogram of the counts below :data:`DIGAMMA_TABLE` (:func:`small_count_histogram`):
their summed terms are a short dot product with the finite sums (:func:`small_count_sums`), so the
per-sample loops only evaluate the series, masked without branches, and vectorise.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .vector_math import fast_log

LGAMMA_TABLE = 10  # y below this: lgamma(y + r) - lgamma(r) from the table of log sums
DIGAMMA_TABLE = 25  # y below this: digamma(y + r) - digamma(r) from the table of reciprocal sums
_HALF_LOG_2PI = 0.9189385332046727
# log(y!) for y < LGAMMA_TABLE
LOG_FACTORIAL = np.array([math.lgamma(k + 1.0) for k in range(LGAMMA_TABLE)])


@njit(cache=True, error_model="numpy")
def stirling_lgamma(z, log_z, inv_z):
    """log Gamma(z) for z >= 10 from z, log z and 1/z (relative error < 1e-15)."""
    f = inv_z * inv_z
    series = (1.0 / 12 + f * (-1.0 / 360 + f * (1.0 / 1260 + f * (-1.0 / 1680 + f * (1.0 / 1188))))) * inv_z
    return (z - 0.5) * log_z - z + _HALF_LOG_2PI + series


@njit(cache=True, error_model="numpy")
def asymptotic_digamma(log_z, inv_z):
    """digamma(z) for z >= 10 from log z and 1/z (absolute error < 1e-16)."""
    f = inv_z * inv_z
    series = f * (
        -1.0 / 12
        + f * (1.0 / 120 + f * (-1.0 / 252 + f * (1.0 / 240 + f * (-1.0 / 132 + f * (691.0 / 32760 - f / 12)))))
    )
    return log_z - 0.5 * inv_z + series


@njit(cache=True, error_model="numpy")
def lgamma(x):
    """log Gamma(x) for x > 0 (Stirling from 10 on, libm below)."""
    if x < 10.0:
        return math.lgamma(x)
    return stirling_lgamma(x, math.log(x), 1.0 / x)


@njit(cache=True, error_model="numpy")
def digamma(x):
    """Digamma function for x > 0 (recurrence up to 10, then the asymptotic series)."""
    result = 0.0
    while x < 10.0:
        result -= 1.0 / x
        x += 1.0
    return result + asymptotic_digamma(math.log(x), 1.0 / x)


@njit(cache=True, error_model="numpy")
def small_count_histogram(y, hist):
    """``hist[k]`` = number of samples with count k, for k < DIGAMMA_TABLE; returns the largest such k
    present (-1 if none)."""
    hist[:] = 0.0
    top = -1
    for j in range(y.shape[0]):
        if y[j] < DIGAMMA_TABLE:
            k = int(y[j])
            hist[k] += 1.0
            top = max(top, k)
    return top


@njit(cache=True, error_model="numpy")
def small_count_sums(r, hist, top):
    """``sum_j lgamma(y_j + r) - lgamma(r)`` over samples with y_j < LGAMMA_TABLE and
    ``sum_j digamma(y_j + r) - digamma(r)`` over samples with y_j < DIGAMMA_TABLE, as finite sums."""
    lg = 0.0
    dg = 0.0
    lg_k = 0.0  # sum_{i<k} log(r + i)
    dg_k = 0.0  # sum_{i<k} 1 / (r + i)
    for k in range(1, top + 1):
        t = r + (k - 1)
        if k < LGAMMA_TABLE:
            lg_k += math.log(t)
            lg += hist[k] * lg_k
        dg_k += 1.0 / t
        dg += hist[k] * dg_k
    return lg, dg


@njit(cache=True, error_model="numpy")
def large_count_values(y, values, freq):
    """The distinct counts ``>= LGAMMA_TABLE`` of y into ``values`` with their multiplicities in
    ``freq``; returns how many there are. Counts spanning a range below the number of
    samples are tallied exactly (a gene's likelihood then evaluates each distinct count once);
    wider ranges are listed per sample with multiplicity 1."""
    m = y.shape[0]
    lo = np.inf
    hi = -np.inf
    for j in range(m):
        if y[j] >= LGAMMA_TABLE:
            lo = min(lo, y[j])
            hi = max(hi, y[j])
    if hi < lo:
        return 0
    n = 0
    if hi - lo < m:
        tally = np.zeros(int(hi - lo) + 1, dtype=np.int64)
        for j in range(m):
            if y[j] >= LGAMMA_TABLE:
                tally[int(y[j] - lo)] += 1
        for k in range(tally.shape[0]):
            if tally[k] > 0:
                values[n] = lo + k
                freq[n] = tally[k]
                n += 1
        return n
    for j in range(m):
        if y[j] >= LGAMMA_TABLE:
            values[n] = y[j]
            freq[n] = 1.0
            n += 1
    return n


@njit(cache=True, error_model="numpy")
def lgamma_diff_large(y, z, log_z, inv_z, lgamma_r):
    """``lgamma(y + r) - lgamma(r)`` (``z = y + r``) when y >= LGAMMA_TABLE, else 0."""
    v = stirling_lgamma(z, log_z, inv_z) - lgamma_r
    return v if y >= LGAMMA_TABLE else 0.0


@njit(cache=True, error_model="numpy")
def digamma_diff_large(y, log_z, inv_z, digamma_r):
    """``digamma(y + r) - digamma(r)`` (``z = y + r``) when y >= DIGAMMA_TABLE, else 0."""
    v = asymptotic_digamma(log_z, inv_z) - digamma_r
    return v if y >= DIGAMMA_TABLE else 0.0


@njit(cache=True, error_model="numpy")
def log_factorial_large(y):
    """``log(y!)`` when y >= LGAMMA_TABLE, else 0."""
    z = y + 1.0
    v = stirling_lgamma(z, fast_log(z), 1.0 / z)
    return v if y >= LGAMMA_TABLE else 0.0


@njit(cache=True, error_model="numpy")
def log_factorial_small(hist):
    """``sum_j log(y_j!)`` over samples with y_j < LGAMMA_TABLE, from the count histogram."""
    s = 0.0
    for k in range(LGAMMA_TABLE):
        s += hist[k] * LOG_FACTORIAL[k]
    return s
