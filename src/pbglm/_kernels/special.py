"""Special functions for numba kernels: digamma, trigamma and differences of them.

``math.lgamma`` is available in numba; digamma and trigamma are not, so they are written here
(recurrence up to x >= 6, then the asymptotic series; absolute error below 1e-14 for x > 0).
The differences ``f(y + r) - f(r)`` for integer y use exact finite sums when y is small, which
is both faster and free of the cancellation that the direct difference suffers when r >> y.
"""

from __future__ import annotations

import math

from numba import njit

SMALL_Y = 24  # below this, digamma/trigamma differences are exact finite sums
SMALL_Y_LGAMMA = 4  # below this, lgamma differences are sums of logs
_HALF_LOG_2PI = 0.9189385332046727


@njit(cache=True)
def lgamma(x: float) -> float:
    """log Gamma(x) for x > 0: Stirling's series for x >= 10 (relative error < 1e-15), libm below."""
    if x < 10.0:
        return math.lgamma(x)
    f = 1.0 / (x * x)
    series = (1.0 / 12 + f * (-1.0 / 360 + f * (1.0 / 1260 + f * (-1.0 / 1680 + f * (1.0 / 1188))))) / x
    return (x - 0.5) * math.log(x) - x + _HALF_LOG_2PI + series


@njit(cache=True)
def digamma(x: float) -> float:
    """Digamma function for x > 0."""
    result = 0.0
    while x < 6.0:
        result -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    series = f * (
        -1.0 / 12
        + f * (1.0 / 120 + f * (-1.0 / 252 + f * (1.0 / 240 + f * (-1.0 / 132 + f * (691.0 / 32760 - f / 12)))))
    )
    return result + math.log(x) - 0.5 / x + series


@njit(cache=True)
def trigamma(x: float) -> float:
    """Trigamma function for x > 0."""
    result = 0.0
    while x < 6.0:
        result += 1.0 / (x * x)
        x += 1.0
    f = 1.0 / (x * x)
    series = (
        1.0 / x
        + f / 2.0
        + f / x * (1.0 / 6 + f * (-1.0 / 30 + f * (1.0 / 42 + f * (-1.0 / 30 + f * (5.0 / 66 + f * (-691.0 / 2730))))))
    )
    return result + series


@njit(cache=True)
def lgamma_diff(y: float, r: float) -> float:
    """``lgamma(y + r) - lgamma(r)`` for a non-negative integer-valued y."""
    if y == 0.0:
        return 0.0
    if y <= SMALL_Y_LGAMMA:
        s = 0.0
        k = 0.0
        while k < y:
            s += math.log(r + k)
            k += 1.0
        return s
    return lgamma(y + r) - lgamma(r)


@njit(cache=True)
def digamma_diff(y: float, r: float) -> float:
    """``digamma(y + r) - digamma(r)`` for a non-negative integer-valued y."""
    if y == 0.0:
        return 0.0
    if y <= SMALL_Y:
        s = 0.0
        k = 0.0
        while k < y:
            s += 1.0 / (r + k)
            k += 1.0
        return s
    return digamma(y + r) - digamma(r)


@njit(cache=True)
def trigamma_diff(y: float, r: float) -> float:
    """``trigamma(y + r) - trigamma(r)`` for a non-negative integer-valued y (a negative number)."""
    if y == 0.0:
        return 0.0
    if y <= SMALL_Y:
        s = 0.0
        k = 0.0
        while k < y:
            t = r + k
            s -= 1.0 / (t * t)
            k += 1.0
        return s
    return trigamma(y + r) - trigamma(r)
